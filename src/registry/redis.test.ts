/** Redis-only behaviour: outages, malformed entries, prefixes, URL parsing. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import net from 'node:net';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { startRedis, type RedisServer } from '../../test/support/redis.js';
import { hostileRecords, writeHostileRecords } from '../../test/support/hostile-records.js';
import { captureLogs } from '../../test/support/logs.js';
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

test('hostile records written raw are skipped on list, get and change: logged once per pod id, counted', async (t) => {
  const logs = captureLogs();
  const reg = createRedisRegistry({ url: redis.url, prefix: 'bad:', logger: logs.logger });
  t.after(() => reg.close());
  await until(() => reg.status() === 'ready', 3000);
  const good = { ...pod('socket-ok'), heartbeatMs: 60_000 };
  await reg.heartbeat(good);
  const table = hostileRecords('socket-ok');
  const raw = await writeHostileRecords(redis.url, 'bad:', table);
  t.after(() => raw.disconnect());
  for (let i = 0; i < 3; i++) assert.deepEqual(await reg.list(), [{ ...good, cordoned: false }], `list ${i}`);
  assert.equal(reg.invalidRecords(), 3 * table.length, 'every skipped read counts');
  for (const r of table) assert.equal(await reg.get(r.id), undefined, r.why);
  assert.deepEqual(await reg.get('socket-ok'), { ...good, cordoned: false }, 'the duplicate does not shadow the good pod');
  assert.equal(await reg.get('Not_A_Pod'), undefined);
  const warned = logs.lines.filter((l) => l.msg.includes('invalid record'));
  assert.deepEqual(warned.map((l) => l.podId).sort(), table.map((r) => r.id).sort(), 'one line per bad pod id across three lists and the gets');
  assert.ok(warned.every((l) => JSON.stringify(l).length < 1000), 'a line never quotes a whole record');
  const reason = (id: string) => warned.find((l) => l.podId === id)?.reason;
  assert.equal(reason('bad-port-70000'), 'port 70000 is not an integer from 1 to 65535');
  assert.equal(reason('bad-huge'), `larger than 4096 bytes (${Buffer.byteLength(table.find((r) => r.id === 'bad-huge')!.value)})`);
  assert.equal(reason('bad-wrong-type'), 'not a string value (wrong Redis type)');
  assert.equal(reason('bad-duplicate'), 'stored under pod id "bad-duplicate" but names pod "socket-ok"');
  // Announcements are checked the same way: a bad upsert never reaches a subscriber.
  const seen: string[] = [];
  reg.subscribe((c) => seen.push(c.type === 'upsert' ? `${c.pod.podId}:${c.pod.port}` : `${c.type}:${c.podId}`));
  await sleep(50);
  await raw.publish('bad:changes', JSON.stringify({ type: 'upsert', pod: { ...good, podId: 'socket-evil', port: 70000 } }));
  await raw.publish('bad:changes', JSON.stringify({ type: 'upsert', pod: { ...good, pad: 'x'.repeat(1024 * 1024) } }));
  await raw.publish('bad:changes', JSON.stringify({ type: 'remove', podId: { toString: 1 } }));
  await reg.heartbeat({ ...good, connections: 4 });
  await until(() => seen.length > 0, 3000);
  await sleep(50);
  assert.deepEqual(seen, ['socket-ok:1']);
});

test('hostile claim values written raw are no owner: logged once per key, counted, overwritten by the next claim; a wrong-typed key set never blocks a claim', async (t) => {
  const logs = captureLogs();
  const reg = createRedisRegistry({ url: redis.url, prefix: 'badclaim:', logger: logs.logger });
  const raw = new Redis(redis.url);
  t.after(async () => {
    raw.disconnect();
    await reg.close();
  });
  await until(() => reg.status() === 'ready', 3000);
  const claim = (key: string) => `badclaim:{registry}:claim:${key}`;
  await raw.set(claim('huge'), 'a'.repeat(1024 * 1024));
  await raw.rpush(claim('list'), 'socket-x');
  await raw.set(claim('evil'), 'EVIL!{registry}');
  await raw.set(claim('dash'), 'socket-');
  await raw.set('badclaim:{registry}:claims:socket-h', 'not a set');
  await raw.sadd('badclaim:{registry}:claims:socket-j', 'x'.repeat(300), 'bad key', 'ok-key');
  await raw.set(claim('ok-key'), 'socket-j');
  const keys = ['huge', 'list', 'evil', 'dash'];
  const summary = await reg.keySummary(['socket-h', 'socket-j'], 10);
  assert.deepEqual(Object.fromEntries(summary), { 'socket-h': { count: 0, keys: [] }, 'socket-j': { count: 1, keys: ['ok-key'] } }, 'keySummary: a wrong-typed set holds nothing, members that are no live claim of the pod are not counted');
  for (const key of keys) assert.equal(await reg.ownerOf(key), undefined, key);
  assert.equal(reg.invalidRecords(), keys.length);
  const reasons = new Map(logs.lines.filter((l) => l.msg.includes('invalid record')).map((l) => [l.podId as string, l.reason as string]));
  assert.equal(reasons.get('key:huge'), `larger than 64 bytes (${1024 * 1024})`);
  assert.equal(reasons.get('key:list'), 'not a string value (wrong Redis type)');
  assert.equal(reasons.get('key:evil'), 'owner "EVIL!{registry}" is not a DNS-1123 label of at most 63 characters');
  for (const key of keys) assert.equal(await reg.claim(key, 'socket-h', 60_000), 'socket-h', key);
  assert.deepEqual(await reg.keysOf('socket-h'), ['dash', 'evil', 'huge', 'list']);
  assert.deepEqual(await reg.keysOf('socket-j'), ['ok-key'], 'only placement keys of live claims come out of a set');
  assert.deepEqual(await reg.renewClaims('socket-h', keys, 60_000), []);
  await reg.releaseClaims('socket-h');
  for (const key of keys) assert.equal(await reg.ownerOf(key), undefined, `${key} released`);
  assert.equal(await reg.ownerOf('bad key'), undefined, 'an invalid key is never looked up');
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

/** Parse complete RESP command arrays out of `buf`; returns the commands and the unparsed rest. */
function parseCommands(buf: string): { commands: string[][]; rest: string } {
  const commands: string[][] = [];
  let pos = 0;
  for (;;) {
    const m = /^\*(\d+)\r\n/.exec(buf.slice(pos));
    if (!m) break;
    let p = pos + m[0].length;
    const args: string[] = [];
    for (let i = 0; i < Number(m[1]); i++) {
      const b = /^\$(\d+)\r\n/.exec(buf.slice(p));
      if (!b || buf.length < p + b[0].length + Number(b[1]) + 2) return { commands, rest: buf.slice(pos) };
      p += b[0].length;
      args.push(buf.slice(p, p + Number(b[1])));
      p += Number(b[1]) + 2;
    }
    commands.push(args);
    pos = p;
  }
  return { commands, rest: buf.slice(pos) };
}

/**
 * A RESP server that answers the handshake and the first SUBSCRIBE of a subscriber, then drops that
 * connection; on reconnects it drops the connection as soon as SUBSCRIBE arrives, or leaves it unanswered.
 */
async function flakyRedis(): Promise<{ port: number; dropped: () => number; close: () => Promise<void> }> {
  let subscribes = 0;
  let dropped = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    let pending = '';
    s.on('data', (chunk) => {
      const { commands, rest } = parseCommands(pending + chunk.toString());
      pending = rest;
      for (const [name = '', ...args] of commands) {
        const cmd = name.toLowerCase();
        if (cmd === 'info') s.write('$11\r\nloading:0\r\n\r\n');
        else if (cmd === 'subscribe') {
          if (++subscribes === 1) {
            const ch = args[0] ?? '';
            s.write(`*3\r\n$9\r\nsubscribe\r\n$${ch.length}\r\n${ch}\r\n:1\r\n`);
            setTimeout(() => s.destroy(), 50); // first drop: the subscriber reconnects and resubscribes
          } else if (++dropped % 3 !== 0) {
            s.destroy(); // SUBSCRIBE lost with its connection
          } // every third one is held unanswered: close() then finds a resubscription in flight
          return;
        } else s.write('+OK\r\n');
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    dropped: () => dropped,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

test('a connection lost during resubscription is handled (no unhandled rejection ends the process)', async (t) => {
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown) => rejections.push(reason);
  process.on('unhandledRejection', onRejection);
  t.after(() => process.off('unhandledRejection', onRejection));
  const fake = await flakyRedis();
  t.after(() => fake.close());
  const reg = createRedisRegistry({ url: `redis://127.0.0.1:${fake.port}`, prefix: 'flaky:', maxBackoffMs: 50 });
  await until(() => fake.dropped() >= 3, 5000);
  await reg.close(); // also while a resubscription may be pending
  await sleep(200);
  assert.deepEqual(rejections.map((r) => String(r)), []);
});
