/**
 * DESIGN "Trust boundaries": hostile records written raw into a real Redis, beside good pods. A real gateway
 * process (the CLI, so that a crash shows as an exit) keeps serving the good pods, answers the bad ids with a
 * coded error, omits them from /api/pods and /ws/assign; the scaler's decision counts only the good pods.
 * The key of the wrong Redis type is written last: it used to fail every list, which would hide the rest.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRedisRegistry, settledWithin } from '../src/registry/index.js';
import { hostileRecords, writeHostileRecords } from './support/hostile-records.js';
import { startRedis, type RedisServer } from './support/redis.js';
import { spawnRole } from './support/role-process.js';
import { scalePatches, scalerMetric, startScalerEnv } from './support/scaler-env.js';
import { Client, startNode, type TestNode } from './socket-support.js';
import { upgradeOutcome, upgradeRequest, waitFor } from './support/upstream.js';

let redis: RedisServer;
before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis.stop();
});

/** More than one registry poll of the gateway (HEARTBEAT_MS below). */
const POLLS_MS = 700;

test('hostile records in Redis: the gateway keeps serving the good pods and refuses the bad ids without crashing', async (t) => {
  const prefix = 'hostile-gw:';
  const env = { REDIS_URL: redis.url, REDIS_PREFIX: prefix, HEARTBEAT_MS: '300' };
  const nodes: TestNode[] = [];
  for (const id of ['socket-good-1', 'socket-good-2']) nodes.push(await startNode({ ...env, POD_NAME: id }));
  t.after(async () => {
    for (const n of nodes) await n.node.close();
  });
  const good = nodes.map((n) => n.config.podName).sort();
  const table = hostileRecords('socket-good-1');
  const wrongType = table.filter((r) => r.hash);
  const raw = await writeHostileRecords(redis.url, prefix, table.filter((r) => !r.hash));
  t.after(() => raw.disconnect());

  const gw = await spawnRole('gateway', 'gateway listening', { ...env, GATEWAY_PORT: '0', GATEWAY_ADMIN_PORT: '0', POD_NAME: 'gateway-hostile', POD_IP: '127.0.0.1', LOG_LEVEL: 'info' });
  t.after(() => gw.kill());
  const port = gw.log.port as number;
  const base = `http://127.0.0.1:${port}`;
  const admin = `http://127.0.0.1:${gw.log.adminPort as number}`;
  const alive = () => assert.ok(gw.alive(), `the gateway exited: ${gw.stderr().split('\n').filter((l) => /Error|ERR_/.test(l)).slice(0, 3).join(' | ')}`);
  const listed = async () => {
    const res = await fetch(`${admin}/api/pods`);
    assert.equal(res.status, 200, '/api/pods answers');
    return ((await res.json()) as { pods: { podId: string; ip: string; port: number }[]; totalConnections: number });
  };
  await waitFor(async () => (await listed()).pods.length >= good.length, 10_000);
  await sleep(POLLS_MS);

  // Pinned connects to every bad id: a coded answer to that one client, and the process stays up.
  const refuseBadIds = async () => {
    for (const r of table) {
      const outcome = await upgradeOutcome(port, upgradeRequest(`/ws/${r.id}/connect`)).catch(() => ({ status: -1 }));
      // A dropped connection may be the process going down: give its exit a moment to show.
      if (outcome.status !== 404) await Promise.race([gw.exited, sleep(500)]);
      alive();
      assert.deepEqual(outcome, { status: 404, error: 'pod_not_found' }, `${r.id}: ${r.why}`);
    }
  };
  // The good pods are served: assignments and pinned connects reach the real socket nodes.
  const serveGoodPods = async () => {
    for (let i = 0; i < 6; i++) {
      const podId = good[i % good.length]!; // the duplicate record never shadows socket-good-1
      const c = await Client.open(`ws://127.0.0.1:${port}/ws/${podId}/connect`);
      assert.equal((await c.json()).podId, podId);
      await c.end();
    }
    for (let i = 0; i < 10; i++) {
      const res = await fetch(`${base}/ws/assign`);
      assert.equal(res.status, 200);
      const { podId, url } = (await res.json()) as { podId: string; url: string };
      assert.ok(good.includes(podId), `assigned ${podId}`);
      const c = await Client.open(`ws://127.0.0.1:${port}${url}`);
      assert.equal((await c.json()).podId, podId);
      await c.end();
    }
    const pods = await listed();
    assert.deepEqual(pods.pods.map((p) => p.podId), good, '/api/pods lists the good pods only');
    for (const p of pods.pods) assert.deepEqual([p.ip, p.port], ['127.0.0.1', nodes.find((n) => n.config.podName === p.podId)!.node.port]);
    assert.ok(pods.totalConnections < 100, `no hostile connection count is summed (${pods.totalConnections})`);
  };
  await refuseBadIds();
  await serveGoodPods();

  // A key of the wrong type joins them: the others are still skipped one by one, nothing fails as a whole.
  await writeHostileRecords(redis.url, prefix, wrongType).then((c) => c.disconnect());
  await sleep(POLLS_MS);
  await refuseBadIds();
  await serveGoodPods();

  // Many polls later: one log line per bad id, and every skip counted.
  alive();
  const invalid = gw.lines.filter((l) => String(l.msg).includes('invalid record'));
  assert.deepEqual(invalid.map((l) => l.podId).sort(), table.map((r) => r.id).sort(), 'logged once per pod id');
  const sample = (await (await fetch(`${admin}/metrics`)).text()).split('\n').find((l) => l.startsWith('rtc_registry_invalid_records_total{'));
  assert.ok(Number(sample?.split(' ').pop()) >= 2 * table.length, sample);
});

test('hostile records in Redis: the scaler decision counts only the good pods', async (t) => {
  const prefix = 'hostile-scaler:';
  const registry = createRedisRegistry({ url: redis.url, prefix });
  await settledWithin(registry, 3000);
  const env = await startScalerEnv({ replicas: 2 }, { socketTargetConnections: 1000 }, {}, { registry });
  t.after(() => env.close());
  env.hb.fallback = 300;
  await env.hb.beat();
  const table = hostileRecords(env.fake.podNames()[0]!);
  const check = async (what: string) => {
    for (let i = 0; i < 3; i++) await env.scaler.tick();
    assert.equal(env.scaler.lastDecision()?.desired, 2, `${what}: ${env.scaler.lastDecision()?.message}`);
    assert.equal(await scalerMetric(env.scaler, 'rtc_scaler_connections'), 600, `${what}: two good pods × 300 connections`);
    assert.equal(scalePatches(env.fake).length, 0, `${what}: no scale call`);
    assert.equal((await env.registry.getScalerDecision())?.desiredReplicas, 2);
  };
  const raw = await writeHostileRecords(redis.url, prefix, table.filter((r) => !r.hash));
  t.after(() => raw.disconnect());
  await check('hostile records');
  await writeHostileRecords(redis.url, prefix, table.filter((r) => r.hash)).then((c) => c.disconnect());
  await check('and a key of the wrong type');
  assert.ok((await scalerMetric(env.scaler, 'rtc_registry_invalid_records_total')) >= 6 * table.length - 3);
});
