/** Redis going away under a running socket node, and Redis missing at start: the node serves on and re-registers. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRedisRegistry, type Registry } from '../src/registry/index.js';
import { startRedis, type RedisServer } from './support/redis.js';
import { Client, startNode, waitFor, type TestNode } from './socket-support.js';

const HEARTBEAT_MS = 500;
const FAILING = 'registry heartbeat failing; still serving WebSockets, retrying every heartbeat';
const RESTORED = 'registry heartbeat restored';

const count = (t: TestNode, msg: string) => t.lines.filter((l) => l.msg === msg).length;
const logTime = (t: TestNode, msg: string, nth: number) => Date.parse(String(t.lines.filter((l) => l.msg === msg)[nth]?.time));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function stillServes(t: TestNode, c: Client, tag: number): Promise<void> {
  c.send(JSON.stringify({ type: 'echo', data: tag }));
  assert.deepEqual(await c.json(), { type: 'echo', data: tag });
  const fresh = await Client.open(t.url);
  assert.equal((await fresh.json()).type, 'welcome');
  await fresh.end();
}

describe('socket node under a Redis outage', () => {
  let redis: RedisServer;
  let reader: Registry;
  before(async () => {
    redis = await startRedis();
    reader = createRedisRegistry({ url: redis.url, prefix: 'rtc:', maxBackoffMs: 200 });
  });
  after(async () => {
    await reader.close();
    await redis.stop();
  });

  test('serves its WebSockets, logs each state change once, re-registers within one heartbeat of Redis returning', async () => {
    const t = await startNode({ REDIS_URL: redis.url, HEARTBEAT_MS: String(HEARTBEAT_MS) });
    const podId = t.node.podId;
    try {
      const c = await Client.open(t.url);
      await c.json();
      await waitFor(async () => (await reader.get(podId))?.connections === 1);

      for (let round = 0; round < 2; round++) {
        await redis.stop();
        await sleep(HEARTBEAT_MS * 4); // several failed beats
        await stillServes(t, c, round);
        const health = (await (await fetch(`${t.admin}/healthz`)).json()) as { registry: string; status: string };
        assert.deepEqual([health.status, health.registry], ['ok', 'down']);
        assert.equal((await fetch(`${t.admin}/readyz`)).status, 200, 'a registry outage does not fail readiness');
        assert.equal(count(t, FAILING), round + 1, 'one "failing" line per outage, not one per beat');
        assert.match(await (await fetch(`${t.admin}/metrics`)).text(), /^rtc_socket_registry_up\{role="socket"\} 0$/m);

        await redis.start(); // an empty Redis: the entry must be written again
        const back = await waitFor(() => reader.get(podId), 10_000);
        assert.equal(back.connections, 1);
        assert.equal(back.draining, false);
        await waitFor(() => count(t, RESTORED) === round + 1);
        // Within one heartbeat of the reconnect (the node beats on "ready"; socket-heartbeat.test.ts isolates that).
        const connected = logTime(t, 'registry: redis connected', round + 1);
        const restored = logTime(t, RESTORED, round);
        assert.ok(restored - connected <= HEARTBEAT_MS, `re-registered ${restored - connected} ms after Redis returned`);
        assert.equal(count(t, FAILING), round + 1);
      }
      assert.equal(count(t, 'registry: redis unavailable, retrying with backoff'), 2);
      await stillServes(t, c, 99);
      await c.end();
    } finally {
      await t.node.close();
    }
    assert.equal(await reader.get(podId), undefined, 'close() removed the entry once Redis was back');
  });

  test('Redis down at start: the node starts and serves, then registers when Redis comes up', async () => {
    await redis.stop();
    const t0 = Date.now();
    const t = await startNode({ REDIS_URL: redis.url, HEARTBEAT_MS: String(HEARTBEAT_MS) });
    try {
      assert.ok(Date.now() - t0 < HEARTBEAT_MS * 6, 'start-up is not held hostage by Redis');
      const c = await Client.open(t.url);
      await c.json();
      await stillServes(t, c, 1);
      assert.equal(count(t, FAILING), 1);
      await redis.start();
      const entry = await waitFor(() => reader.get(t.node.podId), 10_000);
      assert.equal(entry.connections, 1);
      await waitFor(() => count(t, RESTORED) === 1);
      await c.end();
    } finally {
      await t.node.close();
    }
  });
});
