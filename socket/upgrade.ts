/**
 * The `onUpgrade` hook run: the request handed to it, the timeout, and what its answer turns into (an accept
 * with session data, the application's 401/403/429 JSON refusal, or a 503 for a throw, a bad value or no
 * answer in time). uWS-free, so the rules are testable on their own; socket/server.ts does the uWS part.
 */
import { Header } from '../src/constants.js';
import { ERRORS, type ErrorName } from '../src/errors.js';
import { errorReply, jsonReply, type Reply } from '../src/http.js';
import { MAX_REFUSAL_MESSAGE_CHARS, MAX_RETRY_AFTER_S, REFUSAL_CODE } from './constants.js';
import type { RefusalStatus, UpgradeRequest, UpgradeResult } from './handler.js';

/** The coded error behind each status an application may refuse with (its default code and message). */
const REFUSALS: Record<RefusalStatus, ErrorName> = { 401: 'EDGE_ERR_UNAUTHORIZED', 403: 'EDGE_ERR_FORBIDDEN', 429: 'EDGE_ERR_TOO_MANY_REQUESTS' };

/** How a hook run ended. `code` labels the rejection metric (bounded: never the application's own code). */
export type HookOutcome =
  | { kind: 'accept'; data: unknown }
  | { kind: 'refuse'; reply: Reply; code: string; warning?: string }
  | { kind: 'failed'; reply: Reply; code: string; err: unknown };

const failed = (name: ErrorName, err: unknown): HookOutcome => ({ kind: 'failed', reply: errorReply(name), code: ERRORS[name].code, err });

/** Turn what the hook returned into an outcome. A value outside the contract is the handler's bug: 503. */
export function outcomeOf(result: unknown): HookOutcome {
  if (result === undefined || result === null) return { kind: 'accept', data: undefined };
  if (typeof result !== 'object') return failed('EDGE_ERR_UPGRADE_HOOK_FAILED', new TypeError(`onUpgrade returned ${typeof result}; expected nothing, { data } or refuseUpgrade(...)`));
  const r = result as Record<string, unknown>;
  if (!('refuse' in r)) {
    if ('data' in r) return { kind: 'accept', data: r.data };
    return failed('EDGE_ERR_UPGRADE_HOOK_FAILED', new TypeError('onUpgrade returned an object with neither "data" nor "refuse"'));
  }
  const name = typeof r.refuse === 'number' ? REFUSALS[r.refuse as RefusalStatus] : undefined;
  if (name === undefined) return failed('EDGE_ERR_UPGRADE_HOOK_FAILED', new TypeError(`onUpgrade refused with ${JSON.stringify(r.refuse)}; only 401, 403 and 429 are allowed`));
  const spec = ERRORS[name];
  // A malformed code or message falls back to the default, keeping the refusal: the application meant "no".
  const badCode = r.error !== undefined && !(typeof r.error === 'string' && REFUSAL_CODE.test(r.error));
  const code = typeof r.error === 'string' && !badCode ? r.error : spec.code;
  const message = typeof r.message === 'string' ? r.message.slice(0, MAX_REFUSAL_MESSAGE_CHARS) : spec.message;
  const retry = r.retryAfterS;
  const headers = typeof retry === 'number' && Number.isInteger(retry) && retry > 0 && retry <= MAX_RETRY_AFTER_S ? { [Header.RETRY_AFTER]: String(retry) } : undefined;
  return {
    kind: 'refuse',
    reply: jsonReply(spec.status, { error: code, message }, headers),
    code: spec.code,
    ...(badCode ? { warning: `onUpgrade refusal code ${JSON.stringify(r.error)} is not [a-z][a-z0-9_]{0,63}; sent "${spec.code}"` } : {}),
  };
}

/** A started hook run: `outcome` settles exactly once; `abort()` (the client went away) aborts the request's signal. */
export interface HookRun {
  outcome: Promise<HookOutcome>;
  abort(): void;
}

/** Run `hook` on `fields` with a deadline of `timeoutMs`; never rejects. */
export function runUpgradeHook(hook: (r: UpgradeRequest) => UpgradeResult | Promise<UpgradeResult>, fields: Omit<UpgradeRequest, 'signal'>, timeoutMs: number): HookRun {
  const ac = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const outcome = new Promise<HookOutcome>((resolve) => {
    let settled = false;
    const settle = (o: HookOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(o);
    };
    timer = setTimeout(() => {
      const err = new Error(`onUpgrade did not answer within ${timeoutMs} ms (SOCKET_UPGRADE_TIMEOUT_MS)`);
      ac.abort(err);
      settle(failed('EDGE_ERR_UPGRADE_HOOK_TIMEOUT', err));
    }, timeoutMs);
    let result: UpgradeResult | Promise<UpgradeResult>;
    try {
      result = hook({ ...fields, signal: ac.signal });
    } catch (err) {
      settle(failed('EDGE_ERR_UPGRADE_HOOK_FAILED', err));
      return;
    }
    Promise.resolve(result).then(
      (value) => settle(outcomeOf(value)),
      (err: unknown) => settle(failed('EDGE_ERR_UPGRADE_HOOK_FAILED', err)),
    );
  });
  return {
    outcome,
    abort() {
      clearTimeout(timer);
      ac.abort(new Error('the client closed the connection during onUpgrade'));
    },
  };
}
