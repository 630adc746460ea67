/** Redis-only behaviour: outages, malformed entries, prefixes, URL parsing. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { startRedis, type RedisServer } from '../../test/support/redis.js';
import { createRedisRegistry, reconnectDelay } from './redis.js';
import { parseRedisUrl } from './redis-url.js';
import type { PodRecord, RegistryStatus } from './registry.js';

let redis: RedisServer;
before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis.stop();
});

const pod = (podId: string): PodRecord => ({ podId, ip: '127.0.0.1', port: 1, connections: 0, draining: false, startedAt: 1, updatedAt: Date.now(), heartbeatMs: 1000 });

async function until(pred: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await sleep(10);
  }
}

test('an outage is logged once each way, commands fail fast, and the registry recovers', async (t) => {
  const lines: { msg: string }[] = [];
  const sink = new Writable({ write(chunk, _enc, cb) { lines.push(JSON.parse(String(chunk))); cb(); } });
  const reg = createRedisRegistry({ url: redis.url, prefix: 'outage:', logger: pino({ level: 'info' }, sink), maxBackoffMs: 200 });
  t.after(() => reg.close());
  const states: RegistryStatus[] = [];
  reg.onStatus((s) => states.push(s));
  await until(() => reg.status() === 'ready', 3000);
  await reg.heartbeat(pod('socket-o1'));

  await redis.stop();
  await until(() => reg.status() === 'down', 3000);
  const t0 = Date.now();
  await assert.rejects(reg.heartbeat(pod('socket-o1')));
  assert.ok(Date.now() - t0 < 1000, 'a heartbeat during an outage fails fast instead of queueing');
  await sleep(800); // several reconnect attempts fail meanwhile

  await redis.start();
  await until(() => reg.status() === 'ready', 5000);
  await reg.heartbeat(pod('socket-o1'));
  assert.equal((await reg.get('socket-o1'))?.podId, 'socket-o1');
  assert.deepEqual(states, ['ready', 'down', 'ready']);
  assert.equal(lines.filter((l) => /redis unavailable/.test(l.msg)).length, 1);
  assert.equal(lines.filter((l) => /redis connected/.test(l.msg)).length, 2); // start + recovery
});

test('subscribers keep receiving changes after an outage', async (t) => {
  const writer = createRedisRegistry({ url: redis.url, prefix: 'resub:', maxBackoffMs: 200 });
  const reader = createRedisRegistry({ url: redis.url, prefix: 'resub:', maxBackoffMs: 200 });
  t.after(() => Promise.all([writer.close(), reader.close()]));
  const seen: string[] = [];
  reader.subscribe((c) => seen.push(c.type === 'upsert' ? c.pod.podId : `-${c.podId}`));
  await until(() => writer.status() === 'ready' && reader.status() === 'ready', 3000);
  await redis.stop();
  await until(() => writer.status() === 'down', 3000);
  await redis.start();
  await until(() => writer.status() === 'ready' && reader.status() === 'ready', 5000);
  await sleep(300); // the subscriber connection resubscribes on its own reconnect
  await writer.heartbeat(pod('socket-r1'));
  await until(() => seen.includes('socket-r1'), 3000);
});

test('malformed entries are skipped, never fatal', async () => {
  const reg = createRedisRegistry({ url: redis.url, prefix: 'bad:' });
  await until(() => reg.status() === 'ready', 3000);
  const raw = new Redis(redis.url);
  await raw.set('bad:{registry}:pod:socket-x', '{not json', 'PX', 5000);
  await raw.zadd('bad:{registry}:pods', Date.now(), 'socket-x');
  await raw.set('bad:{registry}:pod:socket-y', JSON.stringify({ podId: 'socket-y' }), 'PX', 5000);
  await raw.zadd('bad:{registry}:pods', Date.now(), 'socket-y');
  await reg.heartbeat(pod('socket-ok'));
  assert.deepEqual((await reg.list()).map((p) => p.podId), ['socket-ok']);
  raw.disconnect();
  await reg.close();
});

test('prefixes isolate deployments sharing one Redis', async () => {
  const a = createRedisRegistry({ url: redis.url, prefix: 'a:' });
  const b = createRedisRegistry({ url: redis.url, prefix: 'b:' });
  await until(() => a.status() === 'ready' && b.status() === 'ready', 3000);
  await a.heartbeat(pod('socket-a'));
  assert.deepEqual(await b.list(), []);
  assert.equal((await a.list()).length, 1);
  await Promise.all([a.close(), b.close()]);
});

test('expired members are pruned from the index', async () => {
  const reg = createRedisRegistry({ url: redis.url, prefix: 'prune:' });
  await until(() => reg.status() === 'ready', 3000);
  await reg.heartbeat({ ...pod('socket-p'), heartbeatMs: 100 });
  await sleep(400);
  assert.deepEqual(await reg.list(), []);
  const raw = new Redis(redis.url);
  assert.equal(await raw.zcard('prune:{registry}:pods'), 0);
  raw.disconnect();
  await reg.close();
});

test('reconnect backoff is capped and jittered', () => {
  const samples = Array.from({ length: 50 }, () => reconnectDelay(30, 5000));
  assert.ok(samples.every((d) => d >= 2500 && d <= 5000));
  assert.ok(new Set(samples).size > 1, 'jittered');
  assert.ok(reconnectDelay(0, 5000) <= 100);
});

test('REDIS_URL forms map to ioredis options', () => {
  assert.deepEqual(parseRedisUrl('redis://h:1/2'), { mode: 'standalone', url: 'redis://h:1/2', options: {} });
  assert.deepEqual(parseRedisUrl('redis+sentinel://u:p%40ss@s1:26379,s2/mymaster'), {
    mode: 'sentinel',
    options: { sentinels: [{ host: 's1', port: 26379 }, { host: 's2', port: 26379 }], name: 'mymaster', username: 'u', password: 'p@ss' },
  });
  assert.deepEqual(parseRedisUrl('redis+cluster://n1:7000,[::1]:7001'), { mode: 'cluster', nodes: [{ host: 'n1', port: 7000 }, { host: '::1', port: 7001 }], options: {} });
  assert.throws(() => parseRedisUrl('memcached://x'), /unsupported scheme/);
});
