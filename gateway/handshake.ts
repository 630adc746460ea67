/**
 * The handshake head sent to a pod. The request line is always `GET /ws/connect[?query] HTTP/1.1`
 * (never a client-supplied path); end-to-end headers (Sec-WebSocket-*, Origin, Cookie, ...) pass
 * through, hop-by-hop ones are dropped, X-Forwarded-* and X-Request-Id are set. Forwarding headers
 * follow src/forwarded.ts: only a peer in GATEWAY_TRUSTED_PROXIES has its chain extended and its
 * `Forwarded`/`X-Real-IP` passed on; anyone else's are replaced or removed.
 */
import { randomUUID } from 'node:crypto';
import type { CidrMatcher } from '../src/cidr.js';
import { Header, SOCKET_PATH } from '../src/constants.js';
import { forwardedHeaders } from '../src/forwarded.js';
import { MAX_REQUEST_ID_LENGTH } from './constants.js';
import type { Upstream } from './resolvers/resolver.js';

/** Never forwarded: hop-by-hop headers (RFC 9110 §7.6.1), ones the gateway sets itself, and a body framing an upgrade must not have. */
const DROPPED = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'http2-settings',
  'proxy-authorization', 'proxy-authenticate', 'host', 'content-length',
  Header.FORWARDED_FOR, Header.FORWARDED_PROTO, Header.FORWARDED_HOST, Header.REQUEST_ID,
]);
/** Claims about the client that only a trusted proxy may make. */
const FROM_TRUSTED_ONLY = new Set(['forwarded', 'x-real-ip']);
const REQUEST_ID = /^[A-Za-z0-9._:-]+$/;
/** The gateway listens without TLS: the connection's own protocol. */
const CONNECTION_PROTO = 'http';

/** What the handshake reads of a client's request: an `IncomingMessage`, or a head of gateway/request-head.ts with its socket. */
export interface ClientRequest {
  readonly method?: string | undefined;
  readonly url?: string | undefined;
  readonly rawHeaders: readonly string[];
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly socket: { readonly remoteAddress?: string | undefined };
}

/** A header Node may hand over as a list: only a single value counts. */
function single(v: string | string[] | undefined): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** The client's X-Request-Id when it is a short token, else a fresh UUID. */
export function requestIdOf(req: ClientRequest): string {
  const given = req.headers[Header.REQUEST_ID];
  return typeof given === 'string' && given.length <= MAX_REQUEST_ID_LENGTH && REQUEST_ID.test(given) ? given : randomUUID();
}

/** Build the upstream handshake head (latin1; header values were validated by the gateway's or Node's parser). */
export function buildUpstreamRequest(req: ClientRequest, query: string, upstream: Upstream, requestId: string, trusted: CidrMatcher): string {
  const host = upstream.host.includes(':') ? `[${upstream.host}]:${upstream.port}` : `${upstream.host}:${upstream.port}`;
  let out = `GET ${SOCKET_PATH}${query.length > 0 ? `?${query}` : ''} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n`;

  // Headers named in Connection are hop-by-hop too (rare: only parse when there is more than "Upgrade").
  let named: Set<string> | undefined;
  const connection = single(req.headers.connection);
  if (connection !== undefined && connection.length > 'upgrade'.length) {
    named = new Set(connection.toLowerCase().split(',').map((t) => t.trim()));
  }
  const h = req.headers;
  const fwd = forwardedHeaders(req.socket.remoteAddress ?? '', single(h[Header.FORWARDED_FOR]), single(h[Header.FORWARDED_PROTO]), CONNECTION_PROTO, trusted);
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (DROPPED.has(lower) || named?.has(lower) || (!fwd.trusted && FROM_TRUSTED_ONLY.has(lower))) continue;
    out += `${name}: ${raw[i + 1]}\r\n`;
  }

  out += `X-Forwarded-For: ${fwd.forwardedFor}\r\n`;
  out += `X-Forwarded-Proto: ${fwd.forwardedProto}\r\n`;
  const forwardedHost = (fwd.trusted ? single(h[Header.FORWARDED_HOST]) : undefined) ?? single(h.host);
  if (forwardedHost) out += `X-Forwarded-Host: ${forwardedHost}\r\n`;
  out += `X-Request-Id: ${requestId}\r\n\r\n`;
  return out;
}

/** Header lines of a request head built by buildUpstreamRequest (every line but the request line and the blank one). */
export function headerLines(head: string): number {
  let n = -2;
  for (let at = head.indexOf('\r\n'); at !== -1; at = head.indexOf('\r\n', at + 2)) n++;
  return n;
}
