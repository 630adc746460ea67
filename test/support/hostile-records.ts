/**
 * Hostile registry records, written raw into a real Redis under the keys the Redis registry reads
 * (`<prefix>{registry}:pod:<id>` and the `<prefix>{registry}:pods` index), as anyone who can reach Redis could.
 */
import { Redis } from 'ioredis';

/** One hostile entry: the pod id of its key and what is stored there. */
export interface HostileRecord {
  id: string;
  why: string;
  /** A string value (raw, as stored), or a Redis hash when `hash` is set (a key of the wrong type). */
  value: string;
  hash?: boolean;
}

/** Connections each hostile record claims where its type allows: enough to make a scaler that believed it scale out. */
export const HOSTILE_CONNECTIONS = 50_000;

/** A record that would pass every check: the base each hostile one changes one thing of. */
export function goodFields(id: string): Record<string, unknown> {
  const now = Date.now();
  return { podId: id, ip: '127.0.0.1', port: 1, adminPort: 2, connections: HOSTILE_CONNECTIONS, draining: false, startedAt: now, updatedAt: now, heartbeatMs: 60_000 };
}

const json = (id: string, patch: Record<string, unknown>) => JSON.stringify({ ...goodFields(id), ...patch });

/** The table of DESIGN "Trust boundaries"; `shadowed` is a good pod whose id the duplicate record claims. */
export function hostileRecords(shadowed: string): HostileRecord[] {
  return [
    { id: 'bad-port-70000', why: 'port above 65535 (used to crash the gateway with ERR_SOCKET_BAD_PORT)', value: json('bad-port-70000', { port: 70000 }) },
    { id: 'bad-port-zero', why: 'port 0', value: json('bad-port-zero', { port: 0 }) },
    { id: 'bad-port-string', why: 'port as a string', value: json('bad-port-string', { port: '8080' }) },
    { id: 'bad-port-fraction', why: 'fractional port', value: json('bad-port-fraction', { port: 80.5 }) },
    { id: 'bad-hostname', why: 'a hostname instead of an IP literal', value: json('bad-hostname', { ip: 'metadata.google.internal' }) },
    { id: 'bad-ipv6-zone', why: 'IPv6 with a zone index', value: json('bad-ipv6-zone', { ip: 'fe80::1%eth0' }) },
    { id: 'bad-negative', why: 'negative connection count', value: json('bad-negative', { connections: -HOSTILE_CONNECTIONS }) },
    { id: 'bad-fraction', why: 'fractional connection count', value: json('bad-fraction', { connections: HOSTILE_CONNECTIONS + 0.5 }) },
    { id: 'bad-huge', why: '1 MiB of JSON', value: json('bad-huge', { pad: 'x'.repeat(1024 * 1024) }) },
    { id: 'bad-not-json', why: 'not JSON', value: '{"podId":"bad-not-json","ip":' },
    { id: 'bad-types', why: 'wrong types (booleans and timestamps as strings)', value: json('bad-types', { draining: 'no', startedAt: '2024-01-01', heartbeatMs: '2000' }) },
    { id: 'bad-array', why: 'a JSON array', value: JSON.stringify([goodFields('bad-array')]) },
    { id: 'bad-duplicate', why: `names the good pod ${shadowed} from another key`, value: json('bad-duplicate', { podId: shadowed, port: 9 }) },
    { id: 'bad-wrong-type', why: 'a Redis hash instead of a string', value: 'port', hash: true },
  ];
}

/** Write `records` raw under `prefix` (live for `ttlMs`); returns the client, which the caller disconnects. */
export async function writeHostileRecords(url: string, prefix: string, records: HostileRecord[], ttlMs = 120_000): Promise<Redis> {
  const raw = new Redis(url);
  const tag = `${prefix}{registry}:`;
  for (const r of records) {
    const key = `${tag}pod:${r.id}`;
    if (r.hash) await raw.multi().del(key).hset(key, r.value, '8080').pexpire(key, ttlMs).exec();
    else await raw.set(key, r.value, 'PX', ttlMs);
    await raw.zadd(`${tag}pods`, Date.now(), r.id);
  }
  return raw;
}
