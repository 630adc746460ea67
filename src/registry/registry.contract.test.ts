/** One contract, every backend: memory, a real redis-server, a real 3-node Redis Cluster and Redis through a real Sentinel. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startRedis, type RedisServer } from '../../test/support/redis.js';
import { startRedisCluster, startRedisSentinel, type RedisClusterHandle, type RedisSentinelHandle } from '../../test/support/redis-ha.js';
import { createMemoryRegistry } from './memory.js';
import { createRedisRegistry } from './redis.js';
import { EVENT_LOG_LENGTH, KEY_SUMMARY_EXACT, type PodRecord, type Registry, type RegistryChange } from './registry.js';

const HB = 100; // dead after 300 ms

function pod(podId: string, extra: Partial<PodRecord> = {}): PodRecord {
  const now = Date.now();
  return { podId, ip: '127.0.0.1', port: 8080, adminPort: 9090, connections: 0, draining: false, startedAt: now, updatedAt: now, heartbeatMs: HB, ...extra };
}

async function waitFor<T>(fn: () => T | undefined, timeoutMs = 2000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await sleep(5);
  }
}

interface Backend {
  name: string;
  /** A writer and an independent reader of the same registry. */
  pair(): Promise<{ writer: Registry; reader: Registry }>;
  teardown(): Promise<void>;
}

let redis: RedisServer;
let cluster: RedisClusterHandle;
let sentinel: RedisSentinelHandle;
let prefixSeq = 0;
const opened: Registry[] = [];

const backends: Backend[] = [
  {
    name: 'memory',
    async pair() {
      const r = createMemoryRegistry();
      opened.push(r);
      return { writer: r, reader: r };
    },
    async teardown() {},
  },
  ...(['redis', 'redis cluster', 'redis sentinel'] as const).map((name): Backend => ({
    name,
    async pair() {
      const url = name === 'redis' ? redis.url : name === 'redis cluster' ? cluster.url : sentinel.url;
      const prefix = `t${++prefixSeq}:`;
      const writer = createRedisRegistry({ url, prefix });
      const reader = createRedisRegistry({ url, prefix });
      opened.push(writer, reader);
      await waitFor(() => (writer.status() === 'ready' && reader.status() === 'ready' ? true : undefined), 10_000);
      // The subscriber connection settles on its own (a Cluster client first learns the slots): wait until an
      // announcement arrives, so each test starts subscribed.
      let heard = false;
      let removed = false;
      const unsubscribe = reader.subscribe((c) => (c.type === 'remove' ? (removed = true) : (heard = true)));
      for (const deadline = Date.now() + 10_000; !heard; await sleep(50)) {
        if (Date.now() > deadline) throw new Error(`${name}: the subscriber never heard an announcement`);
        await writer.heartbeat(pod('settle-probe'));
      }
      await writer.remove('settle-probe');
      await waitFor(() => (removed ? true : undefined), 10_000);
      unsubscribe();
      return { writer, reader };
    },
    async teardown() {},
  })),
];

before(async () => {
  [redis, cluster, sentinel] = await Promise.all([startRedis(), startRedisCluster(), startRedisSentinel()]);
});
after(async () => {
  await Promise.all(opened.map((r) => r.close()));
  await Promise.all([redis?.stop(), cluster?.close(), sentinel?.close()]);
});

for (const backend of backends) {
  describe(`registry contract: ${backend.name}`, () => {
    test('a heartbeat is visible to readers with every field', async () => {
      const { writer, reader } = await backend.pair();
      const p = pod('socket-a1', { connections: 42, port: 8081, adminPort: 9091 });
      await writer.heartbeat(p);
      assert.deepEqual(await reader.get('socket-a1'), { ...p, cordoned: false });
      assert.deepEqual(await reader.list(), [{ ...p, cordoned: false }]);
      assert.equal(await reader.get('socket-zz'), undefined);
    });

    test('an entry that missed 3 heartbeats is dead to every reader, even if the writer crashed', async () => {
      const { writer, reader } = await backend.pair();
      await writer.heartbeat(pod('socket-b1'));
      await sleep(HB * 1.5);
      assert.ok(await reader.get('socket-b1'), 'still live after 1.5 heartbeats');
      await sleep(HB * 3);
      assert.equal(await reader.get('socket-b1'), undefined);
      assert.deepEqual(await reader.list(), []);
    });

    test('a refreshed entry stays live', async () => {
      const { writer, reader } = await backend.pair();
      for (let i = 0; i < 6; i++) {
        await writer.heartbeat(pod('socket-c1', { connections: i }));
        await sleep(HB);
      }
      assert.equal((await reader.get('socket-c1'))?.connections, 5);
    });

    test('new, draining and removed pods are announced to subscribers', async () => {
      const { writer, reader } = await backend.pair();
      const seen: RegistryChange[] = [];
      const unsubscribe = reader.subscribe((c) => seen.push(c));
      await writer.heartbeat(pod('socket-d1'));
      await writer.heartbeat(pod('socket-d1', { draining: true }));
      await writer.remove('socket-d1');
      await waitFor(() => (seen.length >= 3 ? true : undefined));
      unsubscribe();
      assert.deepEqual(
        seen.map((c) => (c.type === 'upsert' ? `upsert:${c.pod.podId}:${c.pod.draining}` : `remove:${c.podId}`)),
        ['upsert:socket-d1:false', 'upsert:socket-d1:true', 'remove:socket-d1'],
      );
      await writer.heartbeat(pod('socket-d2'));
      await sleep(100);
      assert.equal(seen.length, 3, 'no delivery after unsubscribe');
    });

    test('remove drops the entry at once', async () => {
      const { writer, reader } = await backend.pair();
      await writer.heartbeat(pod('socket-e1'));
      await writer.heartbeat(pod('socket-e2'));
      await writer.remove('socket-e1');
      assert.deepEqual((await reader.list()).map((p) => p.podId), ['socket-e2']);
    });

    test('a cordon mark is merged into the record, survives heartbeats, is announced, and expires unless renewed', async () => {
      const { writer, reader } = await backend.pair();
      const seen: RegistryChange[] = [];
      const unsubscribe = reader.subscribe((c) => c.type === 'cordon' && seen.push(c));
      await writer.heartbeat(pod('socket-g1', { connections: 3 }));
      await writer.heartbeat(pod('socket-g2'));
      await writer.cordon('socket-g1', {}, HB * 4);
      await writer.heartbeat(pod('socket-g1', { connections: 2, cordoned: false }));
      assert.equal((await reader.get('socket-g1'))?.cordoned, true, "the pod's own heartbeat does not clear the mark");
      assert.deepEqual((await reader.list()).map((p) => `${p.podId}:${p.cordoned}`).sort(), ['socket-g1:true', 'socket-g2:false']);
      await writer.cordon('socket-g1', { retire: 'round-1' }, HB * 4);
      assert.deepEqual(await reader.cordonOf('socket-g1'), { retire: 'round-1' });
      assert.equal(await reader.cordonOf('socket-g2'), undefined);
      await writer.uncordon('socket-g1');
      assert.equal((await reader.get('socket-g1'))?.cordoned, false);
      await waitFor(() => (seen.length >= 3 ? true : undefined));
      unsubscribe();
      assert.deepEqual(
        seen.map((c) => (c.type === 'cordon' ? `${c.podId}:${JSON.stringify(c.mark)}` : '')),
        ['socket-g1:{}', 'socket-g1:{"retire":"round-1"}', 'socket-g1:null'],
      );
      // Not renewed: gone after its TTL although the pod itself stays live.
      await writer.cordon('socket-g2', {}, HB);
      assert.equal((await reader.get('socket-g2'))?.cordoned, true);
      await sleep(HB * 1.5);
      await writer.heartbeat(pod('socket-g2'));
      assert.equal((await reader.get('socket-g2'))?.cordoned, false);
      assert.equal(await reader.cordonOf('socket-g2'), undefined);
    });

    test('concurrent first claims of a key from two clients: exactly one pod wins, and every caller learns it', async () => {
      const { writer, reader } = await backend.pair();
      const results = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? writer : reader).claim(`room-${i % 4}`, `socket-k${i % 5}`, HB * 10)));
      for (let k = 0; k < 4; k++) {
        const owners = new Set(results.filter((_, i) => i % 4 === k));
        assert.equal(owners.size, 1, `room-${k}: ${[...owners].join(', ')}`);
        assert.equal(await reader.ownerOf(`room-${k}`), [...owners][0]);
      }
      const listed = (await Promise.all(['socket-k0', 'socket-k1', 'socket-k2', 'socket-k3', 'socket-k4'].map((p) => writer.keysOf(p)))).flat().sort();
      assert.deepEqual(listed, ['room-0', 'room-1', 'room-2', 'room-3'], 'keysOf lists each key under its one owner');
    });

    test('a claim is refreshed by its owner, refused to others, taken over only from the named pod, and released', async () => {
      const { writer, reader } = await backend.pair();
      assert.equal(await reader.ownerOf('doc:1'), undefined);
      assert.equal(await writer.claim('doc:1', 'socket-m1', HB * 3), 'socket-m1');
      assert.equal(await reader.claim('doc:1', 'socket-m2', HB * 3), 'socket-m1', 'held: the other pod learns the owner');
      assert.equal(await reader.claim('doc:1', 'socket-m2', HB * 3, 'socket-m9'), 'socket-m1', 'replace names another pod: no takeover');
      await sleep(HB * 2);
      assert.equal(await writer.claim('doc:1', 'socket-m1', HB * 3), 'socket-m1');
      await sleep(HB * 2);
      assert.equal(await reader.ownerOf('doc:1'), 'socket-m1', "the owner's claim refreshed its TTL");
      assert.equal(await reader.claim('doc:1', 'socket-m2', HB * 3, 'socket-m1'), 'socket-m2', 'a dead or draining owner is taken over');
      assert.deepEqual(await reader.keysOf('socket-m1'), []);
      assert.deepEqual(await reader.keysOf('socket-m2'), ['doc:1']);
      await writer.releaseClaims('socket-m1', ['doc:1']);
      assert.equal(await reader.ownerOf('doc:1'), 'socket-m2', "a release by the old owner leaves the new owner's claim");
      await writer.claim('doc:2', 'socket-m2', HB * 3);
      await writer.claim('doc.3', 'socket-m2', HB * 3);
      assert.deepEqual(await reader.keysOf('socket-m2'), ['doc.3', 'doc:1', 'doc:2']);
      await reader.releaseClaims('socket-m2', ['doc:2']);
      assert.deepEqual(await reader.keysOf('socket-m2'), ['doc.3', 'doc:1']);
      await reader.releaseClaims('socket-m2');
      assert.deepEqual(await reader.keysOf('socket-m2'), []);
      assert.equal(await reader.ownerOf('doc:1'), undefined);
      assert.equal(await reader.claim('doc:1', 'socket-m3', HB * 3), 'socket-m3', 'a released key is free');
    });

    test('claims expire unless renewed; a renewal re-claims free keys and reports the ones another pod holds', async () => {
      const { writer, reader } = await backend.pair();
      await writer.claim('match-1', 'socket-n1', HB * 3);
      await writer.claim('match-2', 'socket-n1', HB * 3);
      for (let i = 0; i < 4; i++) {
        await sleep(HB);
        assert.deepEqual(await writer.renewClaims('socket-n1', ['match-1'], HB * 3), []);
      }
      assert.equal(await reader.ownerOf('match-1'), 'socket-n1', 'renewed');
      assert.equal(await reader.ownerOf('match-2'), undefined, 'not renewed: expired (a dead pod loses its claims)');
      assert.deepEqual(await reader.keysOf('socket-n1'), ['match-1']);
      assert.equal(await reader.claim('match-2', 'socket-n2', HB * 3), 'socket-n2');
      assert.deepEqual(await writer.renewClaims('socket-n1', ['match-1', 'match-2', 'match-3'], HB * 3), ['match-2']);
      assert.equal(await reader.ownerOf('match-3'), 'socket-n1', 'a free key the pod still has sessions of is claimed again');
      assert.deepEqual(await reader.keysOf('socket-n1'), ['match-1', 'match-3']);
      await assert.rejects(writer.claim('bad key', 'socket-n1', HB), TypeError);
      await assert.rejects(writer.claim('k', 'Not_A_Pod', HB), TypeError);
    });

    test('keySummary: per pod the count and the first keys, exact up to KEY_SUMMARY_EXACT, lost and expired claims not counted', async () => {
      const { writer, reader } = await backend.pair();
      for (const k of ['r-c', 'r-a', 'r-b']) await writer.claim(k, 'socket-s1', HB * 30);
      const many = Array.from({ length: KEY_SUMMARY_EXACT + 30 }, (_, i) => `big:${String(i).padStart(3, '0')}`);
      assert.deepEqual(await writer.renewClaims('socket-s2', many, HB * 30), []);
      await writer.claim('gone', 'socket-s1', HB);
      let s = await reader.keySummary(['socket-s1', 'socket-s2', 'socket-s3'], 2);
      assert.deepEqual(s.get('socket-s1'), { count: 4, keys: ['gone', 'r-a'] });
      assert.deepEqual(s.get('socket-s3'), { count: 0, keys: [] });
      const big = s.get('socket-s2')!;
      assert.equal(big.count, many.length);
      assert.equal(big.keys.length, 2);
      assert.deepEqual([...big.keys].sort(), big.keys, 'sorted');
      for (const k of big.keys) assert.ok(many.includes(k), k);
      // 'gone' expires and another pod claims it afresh (no takeover: socket-s1's set still names it); 'r-b' is taken over.
      await sleep(HB * 1.5);
      await reader.claim('gone', 'socket-s3', HB * 30);
      await reader.claim('r-b', 'socket-s3', HB * 30, 'socket-s1');
      s = await reader.keySummary(['socket-s1', 'socket-s3'], KEY_SUMMARY_EXACT + 50);
      assert.deepEqual(s.get('socket-s1'), { count: 2, keys: ['r-a', 'r-c'] });
      assert.deepEqual(s.get('socket-s3'), { count: 2, keys: ['gone', 'r-b'] });
      const counts = await reader.keySummary(['socket-s1', 'socket-s2'], 0);
      assert.deepEqual([...counts].map(([id, v]) => [id, v.count, v.keys.length]), [['socket-s1', 2, 0], ['socket-s2', many.length, 0]], 'limit 0: counts only');
      const capped = (await reader.keySummary(['socket-s2'], 10_000)).get('socket-s2')!;
      assert.equal(capped.keys.length, KEY_SUMMARY_EXACT, 'never more than KEY_SUMMARY_EXACT listed');
      assert.deepEqual([...(await reader.keySummary(['Not_A_Pod', 'socket-s9'], 5)).keys()].filter((id) => id === 'socket-s9'), ['socket-s9']);
    });

    test('scaler decision round-trips and is null until reported', async () => {
      const { writer, reader } = await backend.pair();
      assert.equal(await reader.getScalerDecision(), null);
      const d = { desiredReplicas: 3, currentReplicas: 2, reason: 'scale-out', at: Date.now(), deletionCosts: { 'socket-f1': 7 } };
      await writer.setScalerDecision(d);
      assert.deepEqual(await reader.getScalerDecision(), d);
    });

    test('the event log is newest first and capped', async () => {
      const { writer, reader } = await backend.pair();
      for (let i = 0; i < EVENT_LOG_LENGTH + 5; i++) await writer.pushEvent({ at: i, kind: 'info', message: `e${i}` });
      const recent = await reader.recentEvents(3);
      assert.deepEqual(recent.map((e) => e.message), [`e${EVENT_LOG_LENGTH + 4}`, `e${EVENT_LOG_LENGTH + 3}`, `e${EVENT_LOG_LENGTH + 2}`]);
      assert.equal((await reader.recentEvents(10_000)).length, EVENT_LOG_LENGTH);
    });

    test('status is ready and closing is reported', async () => {
      const { writer } = await backend.pair();
      assert.equal(writer.status(), 'ready');
      const states: string[] = [];
      writer.onStatus((s) => states.push(s));
      await writer.close();
      assert.equal(writer.status(), 'closed');
      assert.deepEqual(states, ['closed']);
    });
  });
}
