/**
 * The handshake head sent to a pod. The request line is always `GET /ws/connect[?query] HTTP/1.1`
 * (never a client-supplied path); end-to-end headers (Sec-WebSocket-*, Origin, Cookie, ...) pass
 * through, hop-by-hop ones are dropped, X-Forwarded-* and X-Request-Id are set.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Header, SOCKET_PATH } from '../src/constants.js';
import { MAX_REQUEST_ID_LENGTH } from './constants.js';
import type { Upstream } from './resolvers/resolver.js';

/** Never forwarded: hop-by-hop headers (RFC 9110 §7.6.1), ones the gateway sets itself, and a body framing an upgrade must not have. */
const DROPPED = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'http2-settings',
  'proxy-authorization', 'proxy-authenticate', 'host', 'content-length',
  Header.FORWARDED_FOR, Header.FORWARDED_PROTO, 'x-forwarded-host', Header.REQUEST_ID,
]);
const REQUEST_ID = /^[A-Za-z0-9._:-]+$/;
const IPV4_MAPPED = '::ffff:';

/** The client's X-Request-Id when it is a short token, else a fresh UUID. */
export function requestIdOf(req: IncomingMessage): string {
  const given = req.headers[Header.REQUEST_ID];
  return typeof given === 'string' && given.length <= MAX_REQUEST_ID_LENGTH && REQUEST_ID.test(given) ? given : randomUUID();
}

/** Peer address without the IPv4-mapped IPv6 prefix. */
export function clientAddress(req: IncomingMessage): string {
  const a = req.socket.remoteAddress ?? '';
  return a.startsWith(IPV4_MAPPED) ? a.slice(IPV4_MAPPED.length) : a;
}

/** Build the upstream handshake head (latin1; header values were validated by Node's parser). */
export function buildUpstreamRequest(req: IncomingMessage, query: string, upstream: Upstream, requestId: string): string {
  const host = upstream.host.includes(':') ? `[${upstream.host}]:${upstream.port}` : `${upstream.host}:${upstream.port}`;
  let out = `GET ${SOCKET_PATH}${query.length > 0 ? `?${query}` : ''} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n`;

  // Headers named in Connection are hop-by-hop too (rare: only parse when there is more than "Upgrade").
  let named: Set<string> | undefined;
  const connection = req.headers.connection;
  if (connection !== undefined && connection.length > 'upgrade'.length) {
    named = new Set(connection.toLowerCase().split(',').map((t) => t.trim()));
  }
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (DROPPED.has(lower) || named?.has(lower)) continue;
    out += `${name}: ${raw[i + 1]}\r\n`;
  }

  const peer = clientAddress(req);
  const prior = req.headers[Header.FORWARDED_FOR];
  const proto = req.headers[Header.FORWARDED_PROTO];
  out += `X-Forwarded-For: ${prior ? `${prior}, ${peer}` : peer}\r\n`;
  out += `X-Forwarded-Proto: ${proto === 'https' || proto === 'http' ? proto : 'http'}\r\n`;
  if (req.headers.host) out += `X-Forwarded-Host: ${req.headers.host}\r\n`;
  out += `X-Request-Id: ${requestId}\r\n\r\n`;
  return out;
}
