/** The JSON messages of DESIGN.md ("WebSocket messages"), built as strings and parsed defensively. */
import { ASSIGN_PATH, PLACEMENT_KEY_PARAM, RECONNECT_REASON_DRAINING } from '../src/constants.js';
import { ERRORS, type ErrorName } from '../src/errors.js';

/** A client message that parsed as a JSON object with a string `type`. */
export interface ClientMessage {
  type: string;
  [key: string]: unknown;
}

/** Outcome of parsing a text frame. */
export type Parsed = { ok: true; message: ClientMessage } | { ok: false; error: 'EDGE_ERR_INVALID_JSON' | 'EDGE_ERR_INVALID_MESSAGE' };

/** Parse a text frame; never throws. */
export function parseClientMessage(text: string): Parsed {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, error: 'EDGE_ERR_INVALID_JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value) || typeof (value as { type?: unknown }).type !== 'string') {
    return { ok: false, error: 'EDGE_ERR_INVALID_MESSAGE' };
  }
  return { ok: true, message: value as ClientMessage };
}

/** `{"type":"welcome","podId","sessionId"}`. */
export const welcome = (podId: string, sessionId: string): string => JSON.stringify({ type: 'welcome', podId, sessionId });
/** `{"type":"pong","t"}` with the ping's `t`. */
export const pong = (t: unknown): string => JSON.stringify({ type: 'pong', t });
/** `{"type":"echo","data"}`. */
export const echo = (data: unknown): string => JSON.stringify({ type: 'echo', data });
/** `{"type":"error","error","message"}` for a coded error. */
export const error = (name: ErrorName, message?: string): string =>
  JSON.stringify({ type: 'error', error: ERRORS[name].code, message: message ?? ERRORS[name].message });
/** `{"type":"reconnect","reason":"draining","retryAfterMs","assignUrl":"/ws/assign"}`; a keyed session's `assignUrl` carries its key. */
export const reconnect = (retryAfterMs: number, key?: string, reason: string = RECONNECT_REASON_DRAINING): string =>
  JSON.stringify({ type: 'reconnect', reason, retryAfterMs, assignUrl: key === undefined ? ASSIGN_PATH : `${ASSIGN_PATH}?${PLACEMENT_KEY_PARAM}=${key}` });
