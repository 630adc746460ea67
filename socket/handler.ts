/**
 * The application handler hooks: `onUpgrade` decides who connects (before the 101), then every JSON message
 * type the node does not answer itself and every binary frame goes to a MessageHandler. Operators supply
 * one as a module (SOCKET_HANDLER); the default accepts everyone and echoes.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Logger } from 'pino';
import type { Config } from '../src/config.js';
import type { ClientMessage } from './protocol.js';
import type { Session } from './session.js';

export type { ClientMessage } from './protocol.js';
export type { Session } from './session.js';

/** What `onUpgrade` sees of a WebSocket upgrade request: copied out of uWS, so valid after the hook returns. */
export interface UpgradeRequest {
  /** This node's pod id. */
  readonly podId: string;
  /** Request headers, lower-case names; a repeated header's values are joined with ", ". */
  readonly headers: Readonly<Record<string, string>>;
  /** The connect URL's query string (the gateway forwards it unchanged). */
  readonly query: URLSearchParams;
  /** The client's address: `X-Forwarded-For` is believed only from SOCKET_TRUSTED_PROXIES, else the TCP peer. */
  readonly clientAddress: string;
  /** `?key=` when it is a valid placement key (`[A-Za-z0-9._:-]{1,128}`), else undefined. */
  readonly key: string | undefined;
  /** Aborted when the client goes away or SOCKET_UPGRADE_TIMEOUT_MS passes: stop any work then. */
  readonly signal: AbortSignal;
}

/** The statuses `onUpgrade` may refuse with. */
export type RefusalStatus = 401 | 403 | 429;

/** A refusal returned by `onUpgrade` (see {@link refuseUpgrade}). */
export interface UpgradeRefusal {
  readonly refuse: RefusalStatus;
  /** The JSON `error` code: `[a-z][a-z0-9_]*`, at most 64 characters (default `unauthorized`, `forbidden`, `too_many_requests`). */
  readonly error?: string;
  /** The JSON `message` (at most 200 characters are sent). */
  readonly message?: string;
  /** `Retry-After` in whole seconds. */
  readonly retryAfterS?: number;
}

/** What `onUpgrade` returns: nothing (accept), `{ data }` (accept; `session.data` holds it), or a refusal. */
export type UpgradeResult = void | undefined | { readonly data: unknown } | UpgradeRefusal;

/** Build a refusal for `onUpgrade` to return: `return refuseUpgrade(401, { error: 'token_expired' })`. */
export function refuseUpgrade(status: RefusalStatus, details: Omit<UpgradeRefusal, 'refuse'> = {}): UpgradeRefusal {
  return { refuse: status, ...details };
}

/**
 * Hooks an application implements; all optional (a missing hook keeps the default behaviour). A hook may
 * be async; a throw or rejection sends `{"type":"error","error":"handler_failed"}` and never closes the
 * node. Sends after the connection closed are ignored (`session.open` tells).
 */
export interface MessageHandler {
  /**
   * Before the 101: accept, accept with data for the session, or refuse with 401/403/429 and a JSON body.
   * A throw, a rejection, a bad return value or no answer within SOCKET_UPGRADE_TIMEOUT_MS refuses with 503.
   */
  onUpgrade?(request: UpgradeRequest): UpgradeResult | Promise<UpgradeResult>;
  /** After the welcome message. */
  onOpen?(session: Session): void | Promise<void>;
  /** A JSON object message whose `type` is not `ping` or `echo`. */
  onMessage?(session: Session, message: ClientMessage): void | Promise<void>;
  /** A binary frame (a copy the handler may keep). */
  onBinary?(session: Session, data: Uint8Array): void | Promise<void>;
  /** After the connection closed; the session can no longer send. */
  onClose?(session: Session, code: number): void | Promise<void>;
}

/** What a handler factory (a module's default export that is a function) receives. */
export interface HandlerInit {
  podId: string;
  logger: Logger;
  config: Config;
}

/** A handler module: `export default` a MessageHandler, or a (possibly async) factory returning one. */
export type HandlerModule = MessageHandler | ((init: HandlerInit) => MessageHandler | Promise<MessageHandler>);

/** Default: binary frames are echoed back, other JSON types are answered with `unknown_type`. */
export const defaultHandler: Required<Pick<MessageHandler, 'onMessage' | 'onBinary'>> = {
  onMessage(session, message) {
    session.sendError('EDGE_ERR_UNKNOWN_TYPE', `unknown message type ${JSON.stringify(message.type.slice(0, 64))}`);
  },
  onBinary(session, data) {
    session.send(data, true);
  },
};

const HOOKS = ['onUpgrade', 'onOpen', 'onMessage', 'onBinary', 'onClose'] as const;

/** Check a handler's shape and fill missing hooks from the default. Throws naming what is wrong. */
export function normalizeHandler(candidate: unknown, source = 'handler'): MessageHandler {
  if (typeof candidate !== 'object' || candidate === null) {
    throw new Error(`${source}: expected an object with ${HOOKS.join('/')} functions, got ${candidate === null ? 'null' : typeof candidate}`);
  }
  const h = candidate as Record<string, unknown>;
  const bad = HOOKS.filter((k) => h[k] !== undefined && typeof h[k] !== 'function');
  if (bad.length > 0) throw new Error(`${source}: ${bad.join(', ')} must be functions`);
  if (!HOOKS.some((k) => typeof h[k] === 'function')) throw new Error(`${source}: defines none of ${HOOKS.join(', ')}`);
  const bind = <K extends (typeof HOOKS)[number]>(k: K): MessageHandler[K] | undefined => {
    const fn = h[k];
    return typeof fn === 'function' ? (fn.bind(candidate) as MessageHandler[K]) : undefined;
  };
  const onUpgrade = bind('onUpgrade');
  const onOpen = bind('onOpen');
  const onClose = bind('onClose');
  return {
    ...(onUpgrade ? { onUpgrade } : {}),
    ...(onOpen ? { onOpen } : {}),
    onMessage: bind('onMessage') ?? defaultHandler.onMessage,
    onBinary: bind('onBinary') ?? defaultHandler.onBinary,
    ...(onClose ? { onClose } : {}),
  };
}

/** Resolve a SOCKET_HANDLER value: a file path (relative to the working directory) or a package name. */
export function handlerSpecifier(spec: string, cwd = process.cwd()): string {
  const looksLikePath = spec.startsWith('.') || path.isAbsolute(spec) || /\.(c|m)?(j|t)s$/.test(spec);
  return looksLikePath ? pathToFileURL(path.resolve(cwd, spec)).href : spec;
}

/** Import the operator's handler module and build the handler. Throws a clear error when it cannot. */
export async function loadHandler(spec: string, init: HandlerInit): Promise<MessageHandler> {
  const source = `SOCKET_HANDLER=${spec}`;
  let mod: { default?: unknown; handler?: unknown };
  try {
    mod = (await import(handlerSpecifier(spec))) as typeof mod;
  } catch (err) {
    throw new Error(`${source}: cannot load the module: ${(err as Error).message}`, { cause: err });
  }
  const exported = mod.default ?? mod.handler;
  if (exported === undefined) throw new Error(`${source}: the module has no default export (or named export "handler")`);
  let candidate: unknown = exported;
  if (typeof exported === 'function') {
    try {
      candidate = await (exported as (i: HandlerInit) => unknown)(init);
    } catch (err) {
      throw new Error(`${source}: the handler factory failed: ${(err as Error).message}`, { cause: err });
    }
  }
  return normalizeHandler(candidate, source);
}
