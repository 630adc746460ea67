/** The one log line of every 502 and 504: which pod, which address, why, and the request's X-Request-Id. */
import type { Logger } from 'pino';
import type { EdgeError } from '../src/errors.js';
import type { Upstream } from './resolvers/resolver.js';

/** Why an upgrade could not reach its pod (the `reason` field of the log line). */
export const UpstreamFailure = {
  /** The resolver's answer is not an address the gateway will dial (not an IP literal, port outside 1–65535). */
  BAD_ADDRESS: 'bad_address',
  /** connect() failed (ECONNREFUSED, EHOSTUNREACH, ...; the `code` field says which). */
  CONNECT_ERROR: 'connect_error',
  /** The pod closed the connection before its response head was complete. */
  CLOSED: 'closed_before_response',
  /** The pod's response does not start with an HTTP/1.x status line. */
  INVALID_RESPONSE: 'invalid_response',
  /** The pod's response head is longer than the gateway accepts. */
  RESPONSE_TOO_LARGE: 'response_head_too_large',
  /** No complete response head within GATEWAY_UPSTREAM_TIMEOUT_MS. */
  TIMEOUT: 'timeout',
  /** The resolver could not answer (a failed or slow lookup, or a resolver that threw). */
  RESOLVE_FAILED: 'resolve_failed',
} as const;
export type UpstreamFailure = (typeof UpstreamFailure)[keyof typeof UpstreamFailure];

/** What one failed upgrade was trying to reach. */
export interface FailedUpgrade {
  podId: string;
  /** The address dialled, when the resolver gave one. */
  upstream: Upstream | undefined;
  requestId: string;
  reason: UpstreamFailure;
  err?: unknown;
}

/** Log a 502/504 answer once, at warn (a pod that cannot be reached is an operator's concern, not a client's). */
export function logUpstreamFailure(logger: Logger, answer: EdgeError, f: FailedUpgrade): void {
  const e = f.err as NodeJS.ErrnoException | undefined;
  logger.warn(
    {
      status: answer.status,
      error: answer.code,
      podId: f.podId,
      address: f.upstream ? `${f.upstream.host}:${f.upstream.port}` : null,
      reason: f.reason,
      ...(e?.code ? { code: e.code } : {}),
      ...(e && !e.code && e.message ? { detail: e.message } : {}),
      requestId: f.requestId,
    },
    `upgrade to pod ${f.podId} answered ${answer.status} ${answer.code}: ${f.reason}`,
  );
}
