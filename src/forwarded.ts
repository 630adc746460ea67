/**
 * Who the client is, from the TCP peer and X-Forwarded-For, trusting the header only as far as the peers
 * in a trusted CIDR list vouch for it (GATEWAY_TRUSTED_PROXIES at the gateway). One rule for the gateway
 * (what it forwards) and for the socket node (what its handler sees).
 */
import net from 'node:net';
import type { CidrMatcher } from './cidr.js';

const IPV4_MAPPED = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;

/** An address as a peer reports it, without the IPv4-mapped IPv6 prefix or a zone index. */
export function normalizeAddress(address: string): string {
  const bare = address.replace(/%.*$/, '');
  const mapped = IPV4_MAPPED.exec(bare)?.[1];
  return mapped ?? bare;
}

/** One X-Forwarded-For entry as an IP literal (`[v6]:port` and `v4:port` forms accepted), or undefined. */
function entryAddress(entry: string): string | undefined {
  let e = entry.trim();
  if (e.startsWith('[')) {
    const close = e.indexOf(']');
    e = close > 0 ? e.slice(1, close) : '';
  } else if (e.indexOf(':') === e.lastIndexOf(':') && e.includes(':')) {
    e = e.slice(0, e.indexOf(':')); // a.b.c.d:port
  }
  const a = normalizeAddress(e);
  return net.isIP(a) !== 0 ? a : undefined;
}

/**
 * The client's address: the peer itself unless it is trusted; otherwise X-Forwarded-For read from the
 * right, skipping trusted hops, to the first untrusted address. An entry that is not an IP literal stops
 * the walk at the last good address (the hop that vouched for it), so the answer is always an address
 * some trusted hop actually saw. `forwardedFor` is the header value (duplicates joined with commas).
 */
export function clientAddress(peer: string, forwardedFor: string | undefined, trusted: CidrMatcher): string {
  let client = normalizeAddress(peer);
  if (trusted.size === 0 || forwardedFor === undefined || !trusted.contains(client)) return client;
  const hops = forwardedFor.split(',');
  for (let i = hops.length - 1; i >= 0; i--) {
    const a = entryAddress(hops[i]!);
    if (a === undefined) return client;
    client = a;
    if (!trusted.contains(a)) return a;
  }
  return client;
}

/** The forwarding headers a gateway sends on, by the trust rule of clientAddress. */
export interface ForwardedHeaders {
  /** X-Forwarded-For to send: the peer alone, or a trusted peer's chain extended by the peer. */
  forwardedFor: string;
  /** X-Forwarded-Proto to send: the connection's, or a trusted peer's `http`/`https`. */
  forwardedProto: string;
  /** Whether the peer is trusted: only then are its `Forwarded` and `X-Real-IP` passed on. */
  trusted: boolean;
}

/** Decide the forwarding headers for a request from `peer` that arrived over `proto` ('http' or 'https'). */
export function forwardedHeaders(peer: string, forwardedFor: string | undefined, forwardedProto: string | undefined, proto: string, trusted: CidrMatcher): ForwardedHeaders {
  const addr = normalizeAddress(peer);
  if (trusted.size === 0 || !trusted.contains(addr)) return { forwardedFor: addr, forwardedProto: proto, trusted: false };
  const prior = forwardedFor?.trim();
  return {
    forwardedFor: prior ? `${prior}, ${addr}` : addr,
    forwardedProto: forwardedProto === 'https' || forwardedProto === 'http' ? forwardedProto : proto,
    trusted: true,
  };
}
