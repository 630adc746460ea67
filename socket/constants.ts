/** Tunables of the socket node that are not operator settings (those live in src/config.ts). */

/**
 * uWS hard-closes the TCP connection (the client sees 1006, no close frame) for frames over its own
 * `maxPayloadLength`. To answer an oversize frame with a proper 1009 the node lets uWS read frames up to
 * this multiple of SOCKET_MAX_PAYLOAD_BYTES and closes with 1009 itself; larger frames are still cut by uWS.
 */
export const OVERSIZE_READ_FACTOR = 2;

/** `retryAfterMs` of a reconnect notice: this floor plus a uniform random share of the jitter below. */
export const RECONNECT_RETRY_MIN_MS = 250;
export const RECONNECT_RETRY_JITTER_MS = 2000;

/** Close reasons (short: a close frame carries at most 123 bytes of reason). */
export const CloseReason = {
  DRAINING: 'draining',
  TOO_BIG: 'message too big',
  BACKPRESSURE: 'backpressure limit exceeded',
  SHUTDOWN: 'shutting down',
} as const;

/** An application's own refusal code (`refuseUpgrade(401, { error })`): a short snake_case token. */
export const REFUSAL_CODE = /^[a-z][a-z0-9_]{0,63}$/;
/** At most this many characters of an application's refusal message are sent. */
export const MAX_REFUSAL_MESSAGE_CHARS = 200;
/** Largest `retryAfterS` of a refusal that becomes a `Retry-After` header (one day). */
export const MAX_RETRY_AFTER_S = 86_400;

/** Handler failures are logged at most once per this interval (with a count of the suppressed ones). */
export const HANDLER_ERROR_LOG_INTERVAL_MS = 10_000;

/** uWS `send()` results. */
export const SendStatus = { BACKPRESSURE: 0, SUCCESS: 1, DROPPED: 2 } as const;
