/**
 * The scaler under failure: API faults (409, 429 + Retry-After, 500, 403 naming the RBAC verb), a pod watch
 * that lags behind the writes, a scale-in that Kubernetes answers with another pod or none, a stale or
 * unreachable registry, and Lease leader election (standby, failover within the lease duration, a leader
 * that loses the Lease stops acting at once).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Config } from '../src/config.js';
import { createMemoryRegistry } from '../src/registry/memory.js';
import { createRedisRegistry } from '../src/registry/redis.js';
import type { Registry } from '../src/registry/registry.js';
import { start, type ScalerDeps, type ScalerHandle } from '../scaler/index.js';
import { KUBE_PATCH_CONCURRENCY } from '../scaler/constants.js';
import { createLeaseElector } from '../scaler/leader.js';
import { ApiException, CoordinationV1Api } from '@kubernetes/client-node';
import { edgeError } from '../src/errors.js';
import { statusOf } from '../scaler/kube.js';
import { startFakeKubernetes, type FakeK8sOptions, type FakeKubernetes } from './support/fake-k8s.js';
import { startRedis } from './support/redis.js';
import { FAST, HEARTBEAT_MS, activeInCache, removeRetired, scalerTestConfig, startHeartbeats, type Heartbeats } from './support/scaler-session.js';
import { captureLogs, type LogCapture } from './support/logs.js';
import { scalePatches, scalerMetric, startScalerEnv, type ScalerEnv } from './support/scaler-env.js';

/** The scaler environment; the first heartbeat round may fail (the registry test brings Redis down). */
const setup = (fakeOpts: FakeK8sOptions, cfg: Partial<Config> = {}, deps: Partial<ScalerDeps> = {}, registry: Registry = createMemoryRegistry()) =>
  startScalerEnv(fakeOpts, cfg, deps, { registry, firstBeatMayFail: true });
const nonLeaseWrites = (fake: FakeKubernetes, user?: string) => fake.writes().filter((w) => w.resource !== 'leases' && (!user || w.user === user));

async function setLoad(env: ScalerEnv, per: number) {
  for (const n of env.fake.podNames()) env.hb.connections.set(n, per);
  await env.hb.beat();
}

/** Two scaler replicas on one fake API server and registry: scaler-a leads, scaler-b stands by. */
interface Pair {
  fake: FakeKubernetes;
  registry: Registry;
  hb: Heartbeats;
  logs: LogCapture;
  a: ScalerHandle;
  b: ScalerHandle;
  close(): Promise<void>;
}

/** Start a {@link Pair}; `aDeps` gives scaler-a's extra dependencies (its own Lease elector, say). */
async function startPair(replicas: number, aDeps: (fake: FakeKubernetes, logs: LogCapture) => Partial<ScalerDeps> = () => ({})): Promise<Pair> {
  const fake = await startFakeKubernetes({ replicas });
  const registry = createMemoryRegistry();
  fake.onScaleIn = removeRetired(registry);
  const hb = startHeartbeats(registry, fake);
  const logs = captureLogs();
  const handles: ScalerHandle[] = [];
  const close = async () => {
    hb.stop();
    for (const h of handles.reverse()) await h.close();
    await registry.close();
    await fake.close();
  };
  const scaler = async (id: string, deps: Partial<ScalerDeps> = {}) => {
    const h = await start(scalerTestConfig({ podName: id }), { logger: logs.logger, registry, kubeConfig: fake.kubeConfig(id), admin: false, ...FAST, ...deps });
    handles.push(h);
    return h;
  };
  try {
    await hb.beat();
    const a = await scaler('scaler-a', aDeps(fake, logs));
    await fake.waitFor(() => a.isLeader(), 5000, 'scaler-a to lead');
    const b = await scaler('scaler-b');
    return { fake, registry, hb, logs, a, b, close };
  } catch (err) {
    await close();
    throw err;
  }
}

const costPatches = (fake: FakeKubernetes) => fake.requests.filter((r) => r.resource === 'pods' && r.verb === 'patch');
const podReady = (fake: FakeKubernetes, name: string) =>
  fake.activePods().some((p) => p.metadata.name === name && p.status.conditions.some((k: { type: string; status: string }) => k.type === 'Ready' && k.status === 'True'));

/** Start a 3 → 2 scale-in whose 3 deletion-cost patches are answered while the pod watch stalls; returns the running tick and the stall. */
async function scaleInWithWatchStalled(env: ScalerEnv) {
  await setLoad(env, 100);
  const patches = env.fake.hold({ verb: 'patch', resource: 'pods' });
  const tick = env.scaler.tick();
  await env.fake.waitFor(() => patches.count() >= 3, 5000, 'the deletion-cost patches');
  const stalled = env.fake.stallWatches();
  patches.release();
  return { tick, stalled };
}

test('409 on the scale patch: re-read, still the same replicas, retried and applied', async () => {
  const env = await setup({ replicas: 2 });
  try {
    await setLoad(env, 2000);
    env.fake.injectFault({ status: 409, verb: 'patch', resource: 'deployments/scale', times: 1 });
    await env.scaler.tick();
    assert.equal(env.fake.replicas(), 4);
    assert.deepEqual(scalePatches(env.fake).map((r) => r.status), [409, 200]);
    assert.ok(env.logs.messages().includes('✓ Successfully scaled Deployment socket to 4 replicas'));
  } finally {
    await env.close();
  }
});

test('429 with Retry-After: the retry waits at least that long, then succeeds', async () => {
  const env = await setup({ replicas: 3 }, { socketMinReplicas: 2 });
  try {
    await setLoad(env, 100);
    env.fake.injectFault({ status: 429, verb: 'patch', resource: 'pods', times: 1, retryAfterSeconds: 1 });
    await env.scaler.tick();
    assert.equal(env.fake.replicas(), 2);
    const patches = env.fake.requests.filter((r) => r.resource === 'pods' && r.verb === 'patch');
    const limited = patches.find((r) => r.status === 429)!;
    const retry = patches.find((r) => r.name === limited.name && r.status === 200)!;
    assert.ok(retry.at - limited.at >= 950, `retried after ${retry.at - limited.at} ms, Retry-After was 1 s`);
    assert.equal(await scalerMetric(env.scaler, 'rtc_scaler_api_errors_total', 'status="429"'), 1);
  } finally {
    await env.close();
  }
});

test('500s are retried with backoff and counted by status', async () => {
  const env = await setup({ replicas: 2 });
  try {
    await setLoad(env, 2000);
    env.fake.injectFault({ status: 500, verb: 'get', resource: 'deployments/scale', times: 2 });
    await env.scaler.tick();
    assert.equal(env.fake.replicas(), 4);
    assert.equal(await scalerMetric(env.scaler, 'rtc_scaler_api_errors_total', 'status="500",verb="get",resource="deployments/scale"'), 2);
  } finally {
    await env.close();
  }
});

test('403: the log names the missing RBAC rule once; the scaler keeps running', async () => {
  const env = await setup({ replicas: 2 });
  try {
    await setLoad(env, 2000);
    env.fake.injectFault({ status: 403, verb: 'patch', resource: 'deployments/scale', times: 1000 });
    await env.scaler.tick();
    await env.scaler.tick();
    assert.equal(env.fake.replicas(), 2);
    const forbidden = env.logs.lines.filter((l) => l.msg.startsWith('Kubernetes API forbade patch on deployments/scale'));
    assert.equal(forbidden.length, 1, 'logged once');
    assert.match(forbidden[0]!.msg, /needs apiGroups: \["apps"\], resources: \["deployments\/scale"\], verbs: \["patch"\]/);
    assert.equal(await scalerMetric(env.scaler, 'rtc_scaler_api_errors_total', 'status="403"'), 2);
    env.fake.clearFaults();
    await env.scaler.tick();
    assert.equal(env.fake.replicas(), 4, 'acts again once RBAC is fixed');
  } finally {
    await env.close();
  }
});

test('403 at start-up (list pods) fails start with the missing verb in the error', async () => {
  const fake = await startFakeKubernetes({ replicas: 2 });
  const registry = createMemoryRegistry();
  const logs = captureLogs();
  try {
    fake.injectFault({ status: 403, verb: 'list', resource: 'pods', times: 10 });
    await assert.rejects(start(scalerTestConfig(), { logger: logs.logger, registry, kubeConfig: fake.kubeConfig(), admin: false, ...FAST }), (err: Error & { name: string }) => {
      assert.equal(err.name, 'EDGE_ERR_KUBERNETES_FORBIDDEN');
      assert.match(err.message, /resources: \["pods"\], verbs: \["list"\]/);
      return true;
    });
  } finally {
    await registry.close();
    await fake.close();
  }
});

test('the pod watch lags behind the deletion-cost patches: the scale call waits until the watch shows them', async () => {
  // No settle pause after the confirmation: only the watch may hold the scale call back.
  const env = await setup({ replicas: 3 }, { socketMinReplicas: 2 }, { settleMs: 0 });
  try {
    const { tick, stalled } = await scaleInWithWatchStalled(env);
    await env.fake.waitFor(() => costPatches(env.fake).every((r) => r.answeredAt !== undefined), 5000, 'the patches answered');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(scalePatches(env.fake).length, 0, 'no scale call while the watch does not show the costs');
    assert.ok(stalled.count() >= 3, `the watch holds back the patched pods (${stalled.count()} events)`);
    const releasedAt = Date.now();
    stalled.release();
    await tick;
    const [scale] = scalePatches(env.fake);
    assert.ok(scale && scale.at >= releasedAt, 'the scale call came after the watch showed the costs');
    assert.equal(env.fake.replicas(), 2);
  } finally {
    await env.close();
  }
});

test('the pod watch never shows the deletion costs: no scale call, the scale-in fails and is retried next interval', async () => {
  const env = await setup({ replicas: 3 }, { socketMinReplicas: 2 }, { confirmTimeoutMs: 300, settleMs: 0 });
  try {
    const { tick, stalled } = await scaleInWithWatchStalled(env);
    await tick;
    assert.equal(scalePatches(env.fake).length, 0);
    assert.equal(env.fake.replicas(), 3);
    assert.ok(env.logs.messages().includes('scale-in of Deployment socket failed; retrying next interval'));
    stalled.release();
    await env.hb.beat();
    await env.scaler.tick();
    assert.equal(env.fake.replicas(), 2, env.scaler.lastDecision()?.message);
  } finally {
    await env.close();
  }
});

test('Kubernetes removes another pod than the cordoned one: the scaler says so (log, metric, event) and withdraws the retire request', async () => {
  const env = await setup({ replicas: 3 }, { socketMinReplicas: 2 });
  try {
    const [a, b, c] = env.fake.podNames();
    [500, 50, 100].forEach((n, i) => env.hb.connections.set([a, b, c][i]!, n));
    await env.hb.beat();
    env.fake.onScaleIn = () => [c!];
    await env.scaler.tick();
    assert.ok(env.logs.messages().includes(`asked ${b} to report NotReady before the scale-in`));
    assert.equal(env.fake.replicas(), 2);
    await env.fake.waitFor(() => activeInCache(env.scaler) === 2, 5000, 'the removal on the watch');
    await env.hb.beat();
    await env.scaler.tick();
    assert.ok(env.logs.messages().includes(`scale-in removed pod ${c} with 100 connections: NOT the cordoned pod: ${b} was meant`), env.logs.messages().join('\n'));
    assert.equal(await scalerMetric(env.scaler, 'rtc_scaler_scale_in_victims_total', 'honored="false"'), 1);
    assert.equal(await scalerMetric(env.scaler, 'rtc_scaler_scale_in_victims_total', 'honored="true"'), 0);
    assert.ok((await env.registry.recentEvents()).some((e) => e.kind === 'not-honoured' && e.message === `scale-in removed ${c} (100 connections), not the cordoned ${b}`));
    await env.fake.waitFor(() => podReady(env.fake, b!), 5000, `${b} Ready again`);
    assert.equal((await env.registry.cordonOf(b!))?.retire, undefined, 'the retire request is withdrawn');
  } finally {
    await env.close();
  }
});

test('Kubernetes removes no pod within the victim timeout: warned, and the cordoned pod turns Ready again', async () => {
  const env = await setup({ replicas: 3 }, { socketMinReplicas: 2 }, { victimTimeoutMs: 300 });
  try {
    await setLoad(env, 100);
    env.fake.onScaleIn = () => [];
    await env.scaler.tick();
    assert.equal(env.fake.replicas(), 2);
    const victim = env.logs.messages().find((m) => m.startsWith('asked '))!.split(' ')[1]!;
    await new Promise((r) => setTimeout(r, 400));
    await env.scaler.tick();
    assert.ok(env.logs.messages().includes('only 0 of 1 removed pod(s) were observed within 300 ms of the scale-in'));
    assert.equal((await env.registry.cordonOf(victim))?.retire, undefined, 'the retire request is withdrawn');
    await env.fake.waitFor(() => podReady(env.fake, victim), 5000, `${victim} Ready again`);
  } finally {
    await env.close();
  }
});

test('stale registry: heartbeats stop → hold (logged once, counted), no scale to min, no writes', async () => {
  const env = await setup({ replicas: 4 }, { socketMinReplicas: 2 });
  try {
    await setLoad(env, 100);
    env.hb.stop();
    await new Promise((r) => setTimeout(r, 3 * HEARTBEAT_MS + 100)); // 3 missed heartbeats
    await env.scaler.tick();
    await env.scaler.tick();
    assert.equal(env.scaler.lastDecision()?.reason, 'registry-stale');
    assert.equal(env.fake.replicas(), 4);
    assert.equal(nonLeaseWrites(env.fake).length, 0);
    assert.equal(env.logs.lines.filter((l) => l.reason === 'registry-stale').length, 1);
    assert.equal(await scalerMetric(env.scaler, 'rtc_scaler_holds_total', 'reason="registry-stale"'), 2);
  } finally {
    await env.close();
  }
});

test('registry unreachable (Redis down): hold, no decision from missing data', async () => {
  const redis = await startRedis();
  const registry = createRedisRegistry({ url: redis.url, prefix: `t${Date.now()}:` });
  await new Promise<void>((resolve) => (registry.status() === 'ready' ? resolve() : registry.onStatus((s) => s === 'ready' && resolve())));
  const env = await setup({ replicas: 4 }, { socketMinReplicas: 2 }, {}, registry);
  try {
    await setLoad(env, 100);
    await redis.stop();
    await new Promise<void>((resolve) => (registry.status() === 'down' ? resolve() : registry.onStatus((s) => s === 'down' && resolve())));
    await env.scaler.tick();
    assert.equal(env.scaler.lastDecision()?.reason, 'registry-unavailable');
    assert.equal(env.fake.replicas(), 4);
    assert.equal(nonLeaseWrites(env.fake).length, 0);
  } finally {
    await env.close();
    await redis.stop();
  }
});

/** Redis that comes back empty after an outage, under a scaler whose pods heartbeat every OUTAGE_HB_MS. */
const OUTAGE_HB_MS = 1000;
const untilStatus = (registry: Registry, want: string) => new Promise<void>((resolve) => (registry.status() === want ? resolve() : registry.onStatus((s) => s === want && resolve())));

async function outageEnv() {
  const redis = await startRedis();
  const registry = createRedisRegistry({ url: redis.url, prefix: `o${Date.now()}:`, maxBackoffMs: 50 });
  await untilStatus(registry, 'ready');
  const env = await setup({ replicas: 2 }, { socketMinReplicas: 2 }, {}, registry);
  env.hb.stop(); // heartbeats by hand from here: which pod is back, and when, is the test's choice
  const beat = (podId: string) => registry.heartbeat({ podId, ip: '10.0.0.1', port: 8080, adminPort: 9090, connections: 0, draining: false, startedAt: Date.now(), updatedAt: Date.now(), heartbeatMs: OUTAGE_HB_MS });
  const [a, b] = env.fake.podNames() as [string, string];
  await beat(a);
  await beat(b);
  await env.scaler.tick();
  assert.equal(env.scaler.lastDecision()?.action, 'steady', env.scaler.lastDecision()?.message);
  return {
    env, redis, registry, beat, a,
    async close() {
      await env.close();
      await redis.stop();
    },
  };
}

/** Tick once: the scaler must hold on a stale view and must not have patched the scale. */
async function expectHold(o: Awaited<ReturnType<typeof outageEnv>>, what: string) {
  await o.env.scaler.tick();
  const d = o.env.scaler.lastDecision();
  assert.equal(d?.reason, 'registry-stale', `${what}: ${d?.action} ${d?.message}`);
  assert.equal(scalePatches(o.env.fake).length, 0, `${what}: no scale patch`);
}

test('after a Redis outage the scaler holds for 3 heartbeats even when the first read back is empty: one of two pods back does not trigger a replacement', async () => {
  const o = await outageEnv();
  try {
    await o.redis.stop();
    await untilStatus(o.registry, 'down');
    await o.env.scaler.tick();
    assert.equal(o.env.scaler.lastDecision()?.reason, 'registry-unavailable');
    await o.redis.start(); // empty: every entry is gone, as on a promoted replica whose entries expired
    await untilStatus(o.registry, 'ready');
    const backAt = Date.now();
    // The first read back finds no pod at all. Before the fix its heartbeat (max of none = 0) made the settling
    // window 0 ms long, and the next tick, with one pod back, scaled out to replace the other.
    await expectHold(o, 'empty registry just after the outage');
    await o.beat(o.a);
    await expectHold(o, 'one of two pods back');
    assert.ok(Date.now() - backAt < 3 * OUTAGE_HB_MS, 'still inside the window (the test ran in time)');
    // The hold is bounded: 3 heartbeats after the registry came back the silent pod counts as dead and is replaced.
    await new Promise((r) => setTimeout(r, 3 * OUTAGE_HB_MS - (Date.now() - backAt) + 50));
    await o.beat(o.a);
    await o.env.scaler.tick();
    assert.equal(o.env.scaler.lastDecision()?.reason, 'replace-dead-pods', o.env.scaler.lastDecision()?.message);
    assert.equal(scalePatches(o.env.fake).length, 1);
  } finally {
    await o.close();
  }
});

test('a Redis outage between two ticks counts too: the registry status transitions start the same hold', async () => {
  const o = await outageEnv();
  try {
    await o.redis.stop();
    await untilStatus(o.registry, 'down');
    await o.redis.start();
    await untilStatus(o.registry, 'ready'); // no tick saw the outage
    const backAt = Date.now();
    await o.beat(o.a);
    await expectHold(o, 'one of two pods back, outage unseen by any tick');
    assert.ok(Date.now() - backAt < 3 * OUTAGE_HB_MS, 'still inside the window (the test ran in time)');
  } finally {
    await o.close();
  }
});

test('leader election: the standby does nothing; after the leader crashes it takes over within the lease duration', async () => {
  const lease = FAST.lease!;
  let leaderA: ReturnType<typeof createLeaseElector> | undefined;
  const { fake, hb, logs, a, b, close } = await startPair(2, (f, l) => {
    leaderA = createLeaseElector({ kubeConfig: f.kubeConfig('scaler-a'), namespace: 'rtc', name: 'rtc-edge-scaler', identity: 'scaler-a', logger: l.logger, ...lease });
    return { leader: leaderA };
  });
  try {
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(b.isLeader(), false);
    for (const n of fake.podNames()) hb.connections.set(n, 2000);
    await hb.beat();
    await b.tick();
    assert.equal(nonLeaseWrites(fake, 'scaler-b').length, 0, 'the standby never writes');
    assert.equal(fake.requests.filter((r) => r.user === 'scaler-b' && r.subresource === 'scale').length, 0, 'nor reads the scale');
    assert.ok(logs.messages().includes('Lease rtc-edge-scaler is held by scaler-a; scaler-b stands by'));

    // Crash: scaler-a stops renewing without releasing the Lease.
    await leaderA!.close({ release: false });
    const crashedAt = Date.now();
    await fake.waitFor(() => b.isLeader(), 5000, 'failover');
    const took = Date.now() - crashedAt;
    assert.ok(took >= lease.leaseDurationMs! - lease.retryPeriodMs!, `not before the lease expired (${took} ms)`);
    // Scheduling margin only: expiry is lease duration after the last renewal this replica saw.
    assert.ok(took <= lease.leaseDurationMs! + 3 * lease.retryPeriodMs! + 1000, `within the lease duration (+ retry periods): ${took} ms`);
    assert.ok(logs.messages().includes('acquired Lease rtc-edge-scaler: scaler-b is the leader and acts'));
    assert.equal(fake.lease('rtc-edge-scaler').spec.holderIdentity, 'scaler-b');
    assert.equal(fake.lease('rtc-edge-scaler').spec.leaseTransitions, 1);

    await a.tick();
    assert.equal(nonLeaseWrites(fake, 'scaler-a').length, 0, 'the crashed leader does not act');
    await b.tick();
    assert.equal(fake.replicas(), 4);
    assert.ok(nonLeaseWrites(fake, 'scaler-b').length >= 1);
  } finally {
    await close();
  }
});

test('a leader that cannot renew stops acting within the renew deadline; one that finds another holder stops at once', async () => {
  const env = await setup({ replicas: 2 });
  try {
    await setLoad(env, 2000);
    env.fake.injectFault({ status: 500, resource: 'leases', times: 10_000 });
    const t0 = Date.now();
    await env.fake.waitFor(() => !env.scaler.isLeader(), 3000, 'leadership lost');
    const lost = Date.now() - t0;
    assert.ok(lost <= FAST.lease!.renewDeadlineMs! + 1000, `stopped ${lost} ms after renewals began failing`);
    await env.scaler.tick();
    assert.equal(nonLeaseWrites(env.fake).length, 0);
    assert.ok(env.logs.messages().some((m) => m.startsWith('lost Lease rtc-edge-scaler (no renewal succeeded within 700 ms)')));

    // Renewals work again: it takes the (expired) Lease back; then someone else takes it.
    env.fake.clearFaults();
    await env.fake.waitFor(() => env.scaler.isLeader(), 5000, 'leadership regained');
    const api = env.fake.kubeConfig('intruder').makeApiClient(CoordinationV1Api);
    const lease = await api.readNamespacedLease({ name: 'rtc-edge-scaler', namespace: 'rtc' });
    lease.spec!.holderIdentity = 'intruder';
    lease.spec!.renewTime = new Date() as never;
    await api.replaceNamespacedLease({ name: 'rtc-edge-scaler', namespace: 'rtc', body: lease });
    await env.fake.waitFor(() => !env.scaler.isLeader(), 2000, 'stop at once (next renewal)');
    assert.ok(env.logs.messages().some((m) => m.startsWith('lost Lease rtc-edge-scaler (Lease is now held by intruder)')));
    await env.scaler.tick();
    assert.equal(nonLeaseWrites(env.fake, 'scaler-a').length, 0);
  } finally {
    await env.close();
  }
});

test('a leader that loses the Lease mid scale-in (slow API) sends no write after that moment, and the new leader\'s costs stand', async () => {
  const { fake, hb, logs, a, b, close } = await startPair(5);
  const names = fake.podNames();
  try {
    names.forEach((n, i) => hb.connections.set(n, 10 * (i + 1)));
    await hb.beat();
    // scaler-a decides 5 → 4; its deletion-cost patches reach the API server and hang there.
    const slow = fake.hold({ verb: 'patch', resource: 'pods', user: 'scaler-a' });
    const aTick = a.tick();
    await fake.waitFor(() => slow.count() >= Math.min(KUBE_PATCH_CONCURRENCY, names.length), 5000, "scaler-a's deletion-cost patches");

    // The Lease moves to scaler-b (scaler-a was partitioned past its lease, say).
    const api = fake.kubeConfig('intruder').makeApiClient(CoordinationV1Api);
    const lease = await api.readNamespacedLease({ name: 'rtc-edge-scaler', namespace: 'rtc' });
    lease.spec!.holderIdentity = 'scaler-b';
    lease.spec!.renewTime = new Date() as never;
    await api.replaceNamespacedLease({ name: 'rtc-edge-scaler', namespace: 'rtc', body: lease });
    await fake.waitFor(() => logs.lines.some((l) => l.identity === 'scaler-a' && l.msg.startsWith('lost Lease')), 5000, 'scaler-a to see the Lease lost');
    const lostAt = Date.parse(logs.lines.find((l) => l.identity === 'scaler-a' && l.msg.startsWith('lost Lease'))!.time as string);
    await fake.waitFor(() => b.isLeader(), 5000, 'scaler-b to lead');

    // The new leader sees other loads, writes its own costs and scales in.
    names.forEach((n, i) => hb.connections.set(n, 100 + i));
    await hb.beat();
    await b.tick();
    assert.equal(fake.replicas(), 4, b.lastDecision()?.message);
    // Only now do scaler-a's slow requests get their turn on the server.
    slow.release();
    await Promise.race([aTick, new Promise((_, reject) => setTimeout(() => reject(new Error("scaler-a's tick did not end")), 10_000))]);
    await new Promise((r) => setTimeout(r, 300));

    const late = fake.requests.filter((r) => r.user === 'scaler-a' && r.resource !== 'leases' && ['create', 'update', 'patch', 'delete'].includes(r.verb) && r.at > lostAt);
    assert.deepEqual(late.map((r) => `${r.verb} ${r.path}`), [], 'no write from scaler-a after it lost the Lease');
    const aPatches = fake.requests.filter((r) => r.user === 'scaler-a' && r.verb === 'patch' && r.resource === 'pods');
    assert.ok(aPatches.every((r) => r.status === 409 || r.status === 404), `scaler-a's late patches were refused by their resourceVersion: ${aPatches.map((r) => r.status).join(', ')}`);
    for (const name of fake.podNames()) assert.equal(fake.deletionCost(name), String(hb.connections.get(name)), `${name} keeps scaler-b's cost`);
    assert.equal(fake.replicas(), 4, 'scaler-a did not scale');
    assert.ok(logs.messages().some((m) => m.includes('stopped: this replica lost the Lease')));
  } finally {
    await close();
  }
});

test('403 during leader election: the missing rule is logged once, and retries are not logged again with status 0', async () => {
  const fake = await startFakeKubernetes({ replicas: 2 });
  const logs = captureLogs();
  fake.injectFault({ status: 403, resource: 'leases', times: 10_000 });
  const elector = createLeaseElector({ kubeConfig: fake.kubeConfig('scaler-a'), namespace: 'rtc', name: 'rtc-edge-scaler', identity: 'scaler-a', logger: logs.logger, ...FAST.lease });
  try {
    elector.start();
    await fake.waitFor(() => fake.requests.filter((r) => r.resource === 'leases').length >= 5, 5000, 'five Lease attempts');
    const forbidden = logs.lines.filter((l) => l.msg.startsWith('Kubernetes API forbade get on leases'));
    assert.equal(forbidden.length, 1, 'the missing rule, once');
    // (A request cut by its own timeout on a busy machine is a fair warning; a 403 is not.)
    const retries = logs.lines.filter((l) => /^Lease rtc-edge-scaler (acquisition|renewal) failed/.test(l.msg) && /forb/i.test(String(l.reason)));
    assert.deepEqual(retries.map((l) => l.status), [], 'a 403 is not re-logged on every retry');
    const wrapped = edgeError('EDGE_ERR_KUBERNETES_FORBIDDEN', 'forbidden', { cause: new ApiException(403, 'Forbidden', '{}', {}) });
    assert.equal(statusOf(wrapped), 403, 'statusOf sees through EdgeError');
  } finally {
    await elector.close();
    await fake.close();
  }
});

test('a standby scaler exports no desired/current/connections/cordoned gauges; the leader does, and drops them when it loses the Lease', async () => {
  const env = await setup({ replicas: 2 });
  const gauges = /^rtc_scaler_(desired_replicas|current_replicas|connections|cordoned_pods)\{/m;
  const every = async (s: ScalerHandle) => {
    const text = await s.metrics.registry.metrics();
    for (const g of ['desired_replicas', 'current_replicas', 'connections', 'cordoned_pods']) assert.match(text, new RegExp(`^rtc_scaler_${g}\\{`, 'm'), `the leader exports rtc_scaler_${g}`);
  };
  let b: ScalerHandle | undefined;
  try {
    await setLoad(env, 100);
    await env.scaler.tick();
    await every(env.scaler);
    b = await start(scalerTestConfig({ podName: 'scaler-b' }), { logger: env.logs.logger, registry: env.registry, kubeConfig: env.fake.kubeConfig('scaler-b'), admin: false, ...FAST });
    await b.tick();
    assert.equal(b.isLeader(), false);
    assert.doesNotMatch(await b.metrics.registry.metrics(), gauges, 'the standby does not');
    assert.equal(await scalerMetric(b, 'rtc_scaler_leader'), 0);

    // The leader loses its Lease: it stops exporting at once; the new leader exports after its first tick.
    env.fake.injectFault({ status: 500, resource: 'leases', times: 10_000, name: 'rtc-edge-scaler' });
    await env.fake.waitFor(() => !env.scaler.isLeader(), 3000, 'scaler-a to lose the Lease');
    assert.doesNotMatch(await env.scaler.metrics.registry.metrics(), gauges, 'a former leader drops them');
    env.fake.clearFaults();
    await env.fake.waitFor(() => b!.isLeader() || env.scaler.isLeader(), 5000, 'a new leader');
    const leader = b.isLeader() ? b : env.scaler;
    await leader.tick();
    await every(leader);
    assert.equal(await scalerMetric(leader, 'rtc_scaler_desired_replicas'), 2);
  } finally {
    await b?.close();
    await env.close();
  }
});
