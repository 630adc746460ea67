/** The gateway's coded answers, and writing them as raw bytes on the socket for upgrades (plain requests use src/http.ts). */
import { Header, POD_MAX_HEADER_LINES } from '../src/constants.js';
import { edgeError, type EdgeError } from '../src/errors.js';
import { errorReply, rawResponse } from '../src/http.js';
import { RETRY_AFTER_S } from './constants.js';
import type { RelaySocket } from './relay-socket.js';

const retryAfter = { headers: { [Header.RETRY_AFTER]: String(RETRY_AFTER_S) } };

/** Shared, immutable answers of the gateway itself (resolver answers live in resolvers/resolver.ts). */
export const Answer = {
  INVALID_POD_ID: edgeError('EDGE_ERR_INVALID_POD_ID'),
  INVALID_KEY: edgeError('EDGE_ERR_INVALID_KEY'),
  KEY_NOT_FOUND: edgeError('EDGE_ERR_KEY_NOT_FOUND'),
  BAD_QUERY: edgeError('EDGE_ERR_BAD_REQUEST', 'the query string may only contain visible ASCII characters'),
  NOT_WEBSOCKET: edgeError('EDGE_ERR_BAD_REQUEST', 'only WebSocket upgrades are proxied'),
  UPGRADE_ELSEWHERE: edgeError('EDGE_ERR_BAD_REQUEST', 'WebSocket upgrades are only accepted on /ws/<podId>/connect'),
  BAD_REQUEST: edgeError('EDGE_ERR_BAD_REQUEST'),
  MALFORMED_HEAD: edgeError('EDGE_ERR_BAD_REQUEST', 'malformed request head (header names must be tokens, lines end in CRLF, no line folding, no control bytes in values)'),
  BAD_UPGRADE_LINE: edgeError('EDGE_ERR_BAD_REQUEST', 'an upgrade request line must be GET <path> HTTP/1.1'),
  UPGRADE_WITH_BODY: edgeError('EDGE_ERR_BAD_REQUEST', 'an upgrade request has no body: no Transfer-Encoding, no Content-Length but 0'),
  BAD_HOST: edgeError('EDGE_ERR_BAD_REQUEST', 'an upgrade request needs exactly one non-empty Host header'),
  NOT_FOUND: edgeError('EDGE_ERR_NOT_FOUND'),
  METHOD_NOT_ALLOWED: edgeError('EDGE_ERR_METHOD_NOT_ALLOWED'),
  UPGRADE_REQUIRED: edgeError('EDGE_ERR_UPGRADE_REQUIRED', undefined, { headers: { upgrade: 'websocket', connection: 'Upgrade' } }),
  HEADERS_TOO_LARGE: edgeError('EDGE_ERR_HEADERS_TOO_LARGE'),
  HEAD_TOO_LARGE_FOR_POD: edgeError('EDGE_ERR_HEADERS_TOO_LARGE', `request head too large for the socket pod: at most GATEWAY_MAX_HEADER_BYTES and ${POD_MAX_HEADER_LINES} header lines as forwarded`),
  REQUEST_TIMEOUT: edgeError('EDGE_ERR_REQUEST_TIMEOUT'),
  OVERLOADED: edgeError('EDGE_ERR_GATEWAY_OVERLOADED', undefined, retryAfter),
  GATEWAY_DRAINING: edgeError('EDGE_ERR_GATEWAY_DRAINING', undefined, retryAfter),
  NO_PODS: edgeError('EDGE_ERR_NO_PODS_AVAILABLE', undefined, retryAfter),
  WORKER_DOWN: edgeError('EDGE_ERR_GATEWAY_WORKER_DOWN'),
} as const;

const rawCache = new WeakMap<EdgeError, Buffer>();

/** The complete HTTP/1.1 response for `err` (JSON body, `Connection: close`), cached per error instance. */
export function rawErrorResponse(err: EdgeError): Buffer {
  let raw = rawCache.get(err);
  if (!raw) {
    raw = rawResponse(errorReply(err));
    rawCache.set(err, raw);
  }
  return raw;
}

/** Answer `err` on a client's relay socket (upgrade path, refused heads) and half-close it, destroyed after `graceMs`. */
export function writeRawError(socket: RelaySocket, err: EdgeError, graceMs: number): void {
  endGracefully(socket, rawErrorResponse(err), graceMs);
}

/**
 * Send `last` (if any) and a FIN, then keep reading (and discarding) so the client's own FIN is seen and
 * the socket closes; a client that never closes is destroyed after `graceMs`.
 * (Closing with unread input would send a RST that can make the client lose the answer.)
 */
export function endGracefully(socket: RelaySocket, last: Buffer | undefined, graceMs: number): void {
  if (socket.destroyed) return;
  if (socket.writableEnded) {
    socket.destroy();
    return;
  }
  socket.end(last);
  socket.resume();
  socket.closeWithin(graceMs);
}
