/** Parse REDIS_URL into ioredis connection options: standalone, TLS, Sentinel or Cluster. */
import type { RedisOptions, ClusterNode } from 'ioredis';

export type RedisTarget =
  | { mode: 'standalone'; url: string; options: RedisOptions }
  | { mode: 'sentinel'; options: RedisOptions }
  | { mode: 'cluster'; nodes: ClusterNode[]; options: RedisOptions };

const HOSTS = /^([^@/]*@)?([^/?#]+)(\/[^?#]*)?$/;

function parseHosts(list: string): { host: string; port: number }[] {
  return list.split(',').map((hp) => {
    const m = /^(\[[^\]]+\]|[^:]+)(?::(\d{1,5}))?$/.exec(hp.trim());
    if (!m) throw new Error(`bad host "${hp}"`);
    const portNum = m[2] ? Number(m[2]) : NaN;
    return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number.isFinite(portNum) ? portNum : 0 };
  });
}

function auth(userinfo: string | undefined): { username?: string; password?: string } {
  if (!userinfo) return {};
  const raw = userinfo.slice(0, -1);
  const i = raw.indexOf(':');
  const user = decodeURIComponent(i < 0 ? raw : raw.slice(0, i));
  const pass = i < 0 ? undefined : decodeURIComponent(raw.slice(i + 1));
  return { ...(user ? { username: user } : {}), ...(pass !== undefined ? { password: pass } : {}) };
}

/**
 * `redis://[user:pass@]host:port[/db]`, `rediss://…` (TLS),
 * `redis+sentinel://[user:pass@]h1:26379,h2:26379/<masterName>`,
 * `redis+cluster://[user:pass@]h1:6379,h2:6379`. Throws on anything else.
 */
export function parseRedisUrl(raw: string): RedisTarget {
  const scheme = /^([a-z+]+):\/\/(.*)$/i.exec(raw);
  if (!scheme) throw new Error('missing scheme');
  const [, proto, rest] = scheme as unknown as [string, string, string];
  if (proto === 'redis' || proto === 'rediss') {
    const u = new URL(raw);
    if (!u.hostname) throw new Error('missing host');
    return { mode: 'standalone', url: raw, options: {} };
  }
  const m = HOSTS.exec(rest);
  if (!m) throw new Error('bad host list');
  const hosts = parseHosts(m[2]!);
  const creds = auth(m[1]);
  if (proto === 'redis+sentinel') {
    const name = (m[3] ?? '').replace(/^\//, '');
    if (!name) throw new Error('missing master name (redis+sentinel://h1:26379,h2:26379/<master>)');
    return { mode: 'sentinel', options: { sentinels: hosts.map((h) => ({ host: h.host, port: h.port || 26379 })), name, ...creds } };
  }
  if (proto === 'redis+cluster') {
    return { mode: 'cluster', nodes: hosts.map((h) => ({ host: h.host, port: h.port || 6379 })), options: creds };
  }
  throw new Error(`unsupported scheme ${proto}`);
}

/**
 * REDIS_URL with REDIS_PASSWORD as its password (percent-encoded here, so any character works), keeping the
 * user name: how the chart hands every role the generated password from a Secret without writing it into a URL.
 */
export function withRedisPassword(url: string, password: string): string {
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(url)?.[0] ?? '';
  const rest = url.slice(scheme.length);
  const at = rest.lastIndexOf('@');
  const info = at < 0 ? '' : rest.slice(0, at);
  const colon = info.indexOf(':');
  const user = colon < 0 ? info : info.slice(0, colon);
  return `${scheme}${user}:${encodeURIComponent(password)}@${rest.slice(at + 1)}`;
}
