/**
 * Redis registry (ioredis). Liveness is a server-side TTL: each pod key expires after 3 × the writer's
 * heartbeat, so a crashed writer is dead to every reader without clock agreement. Every heartbeat and
 * removal is announced on `<prefix>changes`. All keys share one hash tag so Redis Cluster keeps them in
 * one slot.
 */
import { EventEmitter } from 'node:events';
import { Redis, Cluster, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { jitteredBackoffMs } from '../backoff.js';
import { DEAD_AFTER_HEARTBEATS, DNS1123_LABEL, PLACEMENT_KEY, RECENT_EVENTS_DEFAULT_LIMIT, REDIS_CONNECT_TIMEOUT_MS, REDIS_RECONNECT_BASE_MS, REDIS_RECONNECT_MAX_MS } from '../constants.js';
import { safeError, urlSecrets } from '../redact.js';
import { parseRedisUrl } from './redis-url.js';
import { checkClaimOwner, checkPodRecord, checkPodRecordText, CLAIM_ID_PREFIX, createRecordGuard, MAX_LOGGED_ID_CHARS, MAX_RECORD_BYTES, type RecordCheck, type RecordSource } from './record.js';
import { assertClaimArgs, EVENT_LOG_LENGTH, KEY_SUMMARY_EXACT, parseCordonMark, type KeySummary, type CordonMark, type EdgeEvent, type PodRecord, type Registry, type RegistryChange, type RegistryStatus, type ScalerDecision } from './registry.js';

// A stored value is read only when it is a string of at most ARGV[max] bytes; otherwise its size (or -1 when it
// is not a string) is returned instead, so an oversized or wrong-typed key can neither fail the script nor
// make every reader download it. 0 = no such key.
const READ_BOUNDED = `
local function read(key, max)
  local n = redis.pcall('STRLEN', key)
  if type(n) == 'table' then return -1 end
  if n == 0 then
    if redis.call('EXISTS', key) == 1 then return '' end
    return 0
  end
  if n > max then return n end
  return redis.call('GET', key)
end`;

/** Live pods as [id, record, mark] triples (ids cut to MAX_LOGGED_ID_CHARS); index members without a record are pruned. */
const LIST_LIVE = `${READ_BOUNDED}
local max = tonumber(ARGV[3])
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
local out = {}
for _, id in ipairs(ids) do
  local v = read(ARGV[1] .. id, max)
  if v == 0 then redis.call('ZREM', KEYS[1], id)
  else
    table.insert(out, string.sub(id, 1, ${MAX_LOGGED_ID_CHARS}))
    table.insert(out, v)
    table.insert(out, read(ARGV[2] .. id, max))
  end
end
return out`;

/** One pod as [record, mark]. */
const GET_ONE = `${READ_BOUNDED}
local max = tonumber(ARGV[1])
return { read(KEYS[1], max), read(KEYS[2], max) }`;

// Claims: `claim:<key>` holds the owner's pod id (PX = the claim TTL); `claims:<podId>` is the set of that pod's
// keys (for keysOf and a release of all), its TTL pushed to the longest claim. Stored values are untrusted: an
// owner that is not a pod id counts as no owner (and is overwritten), and a set of the wrong type is replaced.
const CLAIM_HELPERS = `${READ_BOUNDED}
local function isId(v)
  return type(v) == 'string' and #v <= 63 and string.match(v, '^[a-z0-9][a-z0-9%-]*$') ~= nil and string.sub(v, -1) ~= '-'
end
local function setAdd(set, k, ttl)
  local r = redis.pcall('SADD', set, k)
  if type(r) == 'table' and r.err then
    redis.call('DEL', set)
    redis.call('SADD', set, k)
  end
  if redis.call('PTTL', set) < tonumber(ttl) then redis.call('PEXPIRE', set, ttl) end
end
local function members(set)
  local m = redis.pcall('SMEMBERS', set)
  if type(m) == 'table' and m.err then return {} end
  return m
end`;

/** KEYS: claim key, the claimer's set. ARGV: pod id, ttl, pod to replace (or ''), key, set prefix. Returns [owner, previous value]. */
const CLAIM = `${CLAIM_HELPERS}
local cur = read(KEYS[1], ${MAX_LOGGED_ID_CHARS})
if isId(cur) and cur ~= ARGV[1] and cur ~= ARGV[3] then return { cur, 0 } end
if isId(cur) and cur ~= ARGV[1] then redis.call('SREM', ARGV[5] .. cur, ARGV[4]) end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
setAdd(KEYS[2], ARGV[4], ARGV[2])
return { ARGV[1], cur }`;

/** KEYS: the pod's set. ARGV: pod id, ttl, claim prefix, keys…. Refreshes its claims, re-claims free keys; returns the keys another pod holds. */
const RENEW = `${CLAIM_HELPERS}
local lost = {}
for i = 4, #ARGV do
  local k = ARGV[i]
  local cur = read(ARGV[3] .. k, ${MAX_LOGGED_ID_CHARS})
  if cur == ARGV[1] then redis.call('PEXPIRE', ARGV[3] .. k, ARGV[2]); setAdd(KEYS[1], k, ARGV[2])
  elseif isId(cur) then table.insert(lost, k); redis.pcall('SREM', KEYS[1], k)
  else redis.call('SET', ARGV[3] .. k, ARGV[1], 'PX', ARGV[2]); setAdd(KEYS[1], k, ARGV[2]) end
end
return lost`;

/** KEYS: the pod's set. ARGV: pod id, claim prefix, keys… (none = all of the pod's keys). */
const RELEASE = `${CLAIM_HELPERS}
local all = #ARGV < 3
local keys = {}
if all then keys = members(KEYS[1]) else for i = 3, #ARGV do table.insert(keys, ARGV[i]) end end
for _, k in ipairs(keys) do
  if read(ARGV[2] .. k, ${MAX_LOGGED_ID_CHARS}) == ARGV[1] then redis.call('DEL', ARGV[2] .. k) end
  if not all then redis.pcall('SREM', KEYS[1], k) end
end
if all then redis.call('DEL', KEYS[1]) end
return #keys`;

/** KEYS: the pod's set. ARGV: pod id, claim prefix. The keys it still holds; members it lost are pruned. */
const KEYS_OF = `${CLAIM_HELPERS}
local out = {}
for _, k in ipairs(members(KEYS[1])) do
  if read(ARGV[2] .. k, ${MAX_LOGGED_ID_CHARS}) == ARGV[1] then table.insert(out, k) else redis.call('SREM', KEYS[1], k) end
end
return out`;

/** SSCAN calls per pod at most in KEY_SUMMARY (a sparse set may need a few to fill the sample). */
const KEY_SUMMARY_SCAN_ROUNDS = 8;

/**
 * KEYS: the pods' sets. ARGV: limit, claim prefix, the pods' ids (one per set). Per pod [count, keys]: a set of
 * at most KEY_SUMMARY_EXACT members is checked whole (exact count); a larger one counts SCARD less the lost claims
 * in an SSCAN sample of about `limit` (bounded rounds), so one call costs O(pods × KEY_SUMMARY_EXACT), not O(keys).
 * Read-only: pruning stays with keysOf and the owners' renewals.
 */
const KEY_SUMMARY = `${CLAIM_HELPERS}
local limit = tonumber(ARGV[1])
local out = {}
for i, set in ipairs(KEYS) do
  local pod = ARGV[i + 2]
  local n = redis.pcall('SCARD', set)
  if type(n) ~= 'number' then n = 0 end
  local sample = {}
  if n > 0 and n <= ${KEY_SUMMARY_EXACT} then sample = members(set)
  elseif n > 0 and limit > 0 then
    local cursor, rounds = '0', 0
    repeat
      local r = redis.pcall('SSCAN', set, cursor, 'COUNT', limit)
      if type(r) ~= 'table' or r.err then break end
      cursor = r[1]
      for _, k in ipairs(r[2]) do table.insert(sample, k) end
      rounds = rounds + 1
    until cursor == '0' or #sample >= limit or rounds >= ${KEY_SUMMARY_SCAN_ROUNDS}
  end
  local held = {}
  for _, k in ipairs(sample) do
    if type(k) == 'string' and read(ARGV[2] .. k, ${MAX_LOGGED_ID_CHARS}) == pod then table.insert(held, k) else n = n - 1 end
  end
  table.insert(out, { n, held })
end
return out`;

/** KEYS: claim key. The bounded stored owner. */
const OWNER_OF = `${READ_BOUNDED}
return read(KEYS[1], ${MAX_LOGGED_ID_CHARS})`;

/** Keys per renew or release script call, so one call never holds Redis long. */
const CLAIM_BATCH = 500;

/** A bounded read's answer: the value, or a size/type marker (see READ_BOUNDED). */
type BoundedValue = string | number | null;

type Client = Redis | Cluster;

/** Longest change announcement parsed: a record plus its envelope. */
const MAX_CHANGE_CHARS = MAX_RECORD_BYTES + 256;

const isPodId = (v: unknown): v is string => typeof v === 'string' && DNS1123_LABEL.test(v);

/** How long close() waits for QUIT before dropping the connection. */
const QUIT_TIMEOUT_MS = 1000;

export interface RedisRegistryOptions {
  url: string;
  prefix: string;
  logger?: Logger;
  /** Upper bound of the reconnect backoff. */
  maxBackoffMs?: number;
}

/** Capped exponential backoff with full jitter, for reconnects. */
export function reconnectDelay(attempt: number, maxMs = REDIS_RECONNECT_MAX_MS): number {
  return jitteredBackoffMs(attempt, REDIS_RECONNECT_BASE_MS, maxMs);
}

function connect(url: string, extra: RedisOptions): Client {
  const target = parseRedisUrl(url);
  if (target.mode === 'cluster') {
    return new Cluster(target.nodes, { redisOptions: { ...target.options, ...extra }, enableOfflineQueue: extra.enableOfflineQueue ?? true, clusterRetryStrategy: extra.retryStrategy as never });
  }
  if (target.mode === 'sentinel') return new Redis({ ...target.options, ...extra });
  return new Redis(target.url, extra);
}

/** Create a Redis registry. Commands fail fast while disconnected (no offline queue); it reconnects with backoff. */
export function createRedisRegistry(opts: RedisRegistryOptions): Registry {
  const { prefix, logger } = opts;
  const tag = `${prefix}{registry}:`;
  // A cordon mark is a key of its own with a TTL the scaler renews, merged into the record on read: the pod's
  // heartbeat never overwrites it, and a scaler that dies leaves no pod cordoned for longer than the TTL.
  const keys = { pods: `${tag}pods`, pod: `${tag}pod:`, cordon: `${tag}cordon:`, decision: `${tag}decision`, events: `${tag}events`, claim: `${tag}claim:`, claims: `${tag}claims:` };
  const channel = `${prefix}changes`;
  const retryStrategy = (times: number) => reconnectDelay(times, opts.maxBackoffMs);
  const base: RedisOptions = { retryStrategy, connectTimeout: REDIS_CONNECT_TIMEOUT_MS, maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: false };

  const cmd = connect(opts.url, base);
  // ioredis's autoResubscribe issues SUBSCRIBE on reconnect without handling its promise: a connection that
  // drops during it (an outage, close()) becomes an unhandled rejection, which ends a Node 20 process.
  // So the subscriber (re)subscribes itself on every `ready`, with the rejection handled.
  const sub = connect(opts.url, { ...base, enableOfflineQueue: false, maxRetriesPerRequest: null, autoResubscribe: false });
  const bus = new EventEmitter();
  bus.setMaxListeners(0);
  const guard = createRecordGuard(logger);
  // ioredis errors carry the AUTH command's arguments; what this backend logs keeps only type, message and code.
  const secrets = urlSecrets(opts.url);
  let state: RegistryStatus = 'connecting';
  let closed = false;

  const setState = (next: RegistryStatus, err?: unknown) => {
    if (next === state || closed) return;
    const prev = state;
    state = next;
    if (next === 'down') logger?.warn({ err: safeError(err, secrets), from: prev }, 'registry: redis unavailable, retrying with backoff');
    else if (next === 'ready') logger?.info({ from: prev }, 'registry: redis connected');
    bus.emit('status', next);
  };
  let lastError: unknown;
  cmd.on('error', (err) => {
    lastError = err;
    if (state === 'ready') setState('down', err);
  });
  cmd.on('ready', () => setState('ready'));
  cmd.on('close', () => state === 'ready' && setState('down', lastError));
  cmd.on('reconnecting', () => state === 'connecting' && setState('down', lastError));
  sub.on('error', () => undefined); // state is tracked on the command connection
  sub.on('message', (ch: string, msg: string) => {
    if (ch !== channel) return;
    let change: RegistryChange | undefined;
    if (msg.length > MAX_CHANGE_CHARS) return;
    try {
      const parsed = JSON.parse(msg) as RegistryChange;
      if (parsed.type === 'remove' && isPodId(parsed.podId)) change = { type: 'remove', podId: parsed.podId };
      else if (parsed.type === 'upsert') {
        const raw: unknown = parsed.pod;
        const id = typeof raw === 'object' && raw !== null && typeof (raw as PodRecord).podId === 'string' ? (raw as PodRecord).podId : '?';
        const pod = guard.accept(checkPodRecord(raw), id, 'change');
        if (pod) change = { type: 'upsert', pod };
      } else if (parsed.type === 'cordon' && isPodId(parsed.podId)) {
        const mark = parsed.mark === null ? null : parseCordonMark(parsed.mark);
        if (mark !== undefined) change = { type: 'cordon', podId: parsed.podId, mark };
      }
    } catch {
      /* ignore foreign messages on our channel */
    }
    if (change) bus.emit('change', change);
  });
  sub.on('ready', () => {
    sub.subscribe(channel).catch((err: unknown) => {
      if (!closed) logger?.warn({ err: safeError(err, secrets) }, 'registry: subscribe failed; retrying on the next reconnect');
    });
  });

  /** A bounded read of a record stored under `keyId`, checked; undefined when missing or invalid (logged once, counted). */
  const readRecord = (v: BoundedValue, keyId: string, source: RecordSource): PodRecord | undefined => {
    if (v === 0 || v === null) return undefined;
    let check: RecordCheck;
    if (typeof v === 'string') check = checkPodRecordText(v, keyId);
    else check = { invalid: v < 0 ? 'not a string value (wrong Redis type)' : `larger than ${MAX_RECORD_BYTES} bytes (${v})` };
    return guard.accept(check, keyId, source);
  };
  const parseMark = (raw: BoundedValue): CordonMark | undefined => {
    if (typeof raw !== 'string' || !raw) return undefined;
    try {
      return parseCordonMark(JSON.parse(raw));
    } catch {
      return undefined;
    }
  };
  /** A record with `cordoned` from its mark (a malformed mark counts as none). */
  const withCordon = (raw: BoundedValue, mark: BoundedValue, keyId: string, source: RecordSource): PodRecord | undefined => {
    const p = readRecord(raw, keyId, source);
    return p ? { ...p, cordoned: parseMark(mark) !== undefined } : undefined;
  };

  /** A stored owner read back: the pod id, or undefined (none; an invalid value is logged once and counted). */
  const ownerFrom = (raw: BoundedValue, key: string, source: RecordSource): string | undefined => {
    if (raw === 0 || raw === null) return undefined;
    const check = checkClaimOwner(raw);
    if ('podId' in check) return check.podId;
    guard.reject(check.invalid, CLAIM_ID_PREFIX + key, source);
    return undefined;
  };
  const batches = (list: readonly string[]) => Array.from({ length: Math.ceil(list.length / CLAIM_BATCH) }, (_, i) => list.slice(i * CLAIM_BATCH, (i + 1) * CLAIM_BATCH));
  const ttl = (ms: number) => Math.max(1, Math.round(ms));

  return {
    kind: 'redis',
    async claim(key, podId, ttlMs, replace) {
      assertClaimArgs(key, podId, replace);
      const [owner, previous] = (await cmd.eval(CLAIM, 2, keys.claim + key, keys.claims + podId, podId, ttl(ttlMs), replace ?? '', key, keys.claims)) as [BoundedValue, BoundedValue];
      // A previous value that was no owner (garbage, wrong type) was overwritten: still worth the count and the log line.
      if (owner === podId && previous !== 0) ownerFrom(previous, key, 'get');
      const checked = ownerFrom(owner, key, 'get');
      if (checked === undefined) throw new Error(`registry: claim of ${key} answered no owner`);
      return checked;
    },
    async ownerOf(key) {
      if (!PLACEMENT_KEY.test(key)) return undefined;
      return ownerFrom((await cmd.eval(OWNER_OF, 1, keys.claim + key)) as BoundedValue, key, 'get');
    },
    async renewClaims(podId, list, ttlMs) {
      for (const key of list) assertClaimArgs(key, podId);
      const lost: string[] = [];
      for (const batch of batches(list)) lost.push(...((await cmd.eval(RENEW, 1, keys.claims + podId, podId, ttl(ttlMs), keys.claim, ...batch)) as string[]));
      return lost;
    },
    async releaseClaims(podId, list) {
      assertClaimArgs('k', podId);
      if (list === undefined) {
        await cmd.eval(RELEASE, 1, keys.claims + podId, podId, keys.claim);
        return;
      }
      for (const key of list) assertClaimArgs(key, podId);
      for (const batch of batches(list)) await cmd.eval(RELEASE, 1, keys.claims + podId, podId, keys.claim, ...batch);
    },
    async keysOf(podId) {
      if (!isPodId(podId)) return [];
      const members = (await cmd.eval(KEYS_OF, 1, keys.claims + podId, podId, keys.claim)) as unknown[];
      // Set members are untrusted too: only placement keys come out.
      return members.filter((k): k is string => typeof k === 'string' && PLACEMENT_KEY.test(k)).sort();
    },
    async keySummary(podIds, limit) {
      const n = Math.max(0, Math.min(KEY_SUMMARY_EXACT, Math.floor(limit)));
      const ids = podIds.filter(isPodId);
      const out = new Map<string, KeySummary>();
      for (const batch of batches(ids)) {
        const rows = (await cmd.eval(KEY_SUMMARY, batch.length, ...batch.map((id) => keys.claims + id), n, keys.claim, ...batch)) as unknown[];
        batch.forEach((id, i) => {
          const row = rows[i];
          const [count, members] = Array.isArray(row) ? row : [];
          // Members are untrusted: only placement keys are listed, and the count never falls below what is listed.
          const held = (Array.isArray(members) ? members : []).filter((k): k is string => typeof k === 'string' && PLACEMENT_KEY.test(k)).sort();
          out.set(id, { count: Math.max(held.length, typeof count === 'number' ? count : 0), keys: held.slice(0, n) });
        });
      }
      return out;
    },
    async heartbeat(pod) {
      const json = JSON.stringify(pod);
      await cmd
        .multi()
        .set(keys.pod + pod.podId, json, 'PX', DEAD_AFTER_HEARTBEATS * pod.heartbeatMs)
        .zadd(keys.pods, pod.updatedAt, pod.podId)
        .publish(channel, JSON.stringify({ type: 'upsert', pod }))
        .exec();
    },
    async remove(podId) {
      await cmd.multi().del(keys.pod + podId).zrem(keys.pods, podId).publish(channel, JSON.stringify({ type: 'remove', podId })).exec();
    },
    async list() {
      const raws = (await cmd.eval(LIST_LIVE, 1, keys.pods, keys.pod, keys.cordon, MAX_RECORD_BYTES)) as BoundedValue[];
      const out: PodRecord[] = [];
      for (let i = 0; i + 2 < raws.length; i += 3) {
        const p = withCordon(raws[i + 1]!, raws[i + 2]!, String(raws[i]), 'list');
        if (p) out.push(p);
      }
      return out;
    },
    async get(podId) {
      if (!isPodId(podId)) return undefined;
      const [raw, mark] = (await cmd.eval(GET_ONE, 2, keys.pod + podId, keys.cordon + podId, MAX_RECORD_BYTES)) as [BoundedValue, BoundedValue];
      return withCordon(raw, mark, podId, 'get');
    },
    async cordon(podId, mark, ttlMs) {
      const json = JSON.stringify(mark);
      await cmd
        .multi()
        .set(keys.cordon + podId, json, 'PX', Math.max(1, Math.round(ttlMs)))
        .publish(channel, JSON.stringify({ type: 'cordon', podId, mark }))
        .exec();
    },
    async uncordon(podId) {
      await cmd.multi().del(keys.cordon + podId).publish(channel, JSON.stringify({ type: 'cordon', podId, mark: null })).exec();
    },
    async cordonOf(podId) {
      return parseMark(await cmd.get(keys.cordon + podId));
    },
    subscribe(listener) {
      const l = (c: RegistryChange) => listener(c);
      bus.on('change', l);
      return () => bus.off('change', l);
    },
    async setScalerDecision(d: ScalerDecision) {
      await cmd.set(keys.decision, JSON.stringify(d));
    },
    async getScalerDecision() {
      const raw = await cmd.get(keys.decision);
      if (!raw) return null;
      try {
        return JSON.parse(raw) as ScalerDecision;
      } catch {
        return null;
      }
    },
    async pushEvent(ev: EdgeEvent) {
      await cmd.multi().lpush(keys.events, JSON.stringify(ev)).ltrim(keys.events, 0, EVENT_LOG_LENGTH - 1).exec();
    },
    async recentEvents(limit = RECENT_EVENTS_DEFAULT_LIMIT) {
      const raws = await cmd.lrange(keys.events, 0, limit - 1);
      const out: EdgeEvent[] = [];
      for (const r of raws) {
        try {
          out.push(JSON.parse(r) as EdgeEvent);
        } catch {
          /* skip */
        }
      }
      return out;
    },
    invalidRecords: () => guard.invalidTotal(),
    status: () => (closed ? 'closed' : state),
    onStatus(listener) {
      bus.on('status', listener);
      return () => bus.off('status', listener);
    },
    async close() {
      if (closed) return;
      closed = true;
      bus.emit('status', 'closed');
      bus.removeAllListeners();
      // The subscriber holds no writes worth flushing; QUIT on it could wait behind an unanswered SUBSCRIBE.
      sub.disconnect();
      // The command connection quits gracefully, but a Redis that stopped answering must not hang shutdown.
      if (cmd.status === 'ready') {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([cmd.quit().catch(() => undefined), new Promise((r) => (timer = setTimeout(r, QUIT_TIMEOUT_MS)))]);
        clearTimeout(timer);
      }
      cmd.disconnect();
    },
  };
}
