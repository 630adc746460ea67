/**
 * The scaler under failure: API faults (409, 429 + Retry-After, 500, 403 naming the RBAC verb), a stale or
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
import { FAST, HEARTBEAT_MS, scalerTestConfig, startHeartbeats } from './support/scaler-session.js';
import { captureLogs } from './support/logs.js';
import { scalePatches, scalerMetric, startScalerEnv, type ScalerEnv } from './support/scaler-env.js';

/** The scaler environment; the first heartbeat round may fail (the registry test brings Redis down). */
const setup = (fakeOpts: FakeK8sOptions, cfg: Partial<Config> = {}, deps: Partial<ScalerDeps> = {}, registry: Registry = createMemoryRegistry()) =>
  startScalerEnv(fakeOpts, cfg, deps, { registry, firstBeatMayFail: true });
const nonLeaseWrites = (fake: FakeKubernetes, user?: string) => fake.writes().filter((w) => w.resource !== 'leases' && (!user || w.user === user));

async function setLoad(env: ScalerEnv, per: number) {
  for (const n of env.fake.podNames()) env.hb.connections.set(n, per);
  await env.hb.beat();
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

test('leader election: the standby does nothing; after the leader crashes it takes over within the lease duration', async () => {
  const fake = await startFakeKubernetes({ replicas: 2 });
  const registry = createMemoryRegistry();
  const hb = startHeartbeats(registry, fake);
  const logs = captureLogs();
  const lease = FAST.lease!;
  const elector = (id: string) => createLeaseElector({ kubeConfig: fake.kubeConfig(id), namespace: 'rtc', name: 'rtc-edge-scaler', identity: id, logger: logs.logger, ...lease });
  const leaderA = elector('scaler-a');
  const a = await start(scalerTestConfig({ podName: 'scaler-a' }), { logger: logs.logger, registry, kubeConfig: fake.kubeConfig('scaler-a'), admin: false, ...FAST, leader: leaderA });
  let b: ScalerHandle | undefined;
  try {
    await fake.waitFor(() => a.isLeader(), 5000);
    b = await start(scalerTestConfig({ podName: 'scaler-b' }), { logger: logs.logger, registry, kubeConfig: fake.kubeConfig('scaler-b'), admin: false, ...FAST });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(b.isLeader(), false);
    for (const n of fake.podNames()) hb.connections.set(n, 2000);
    await hb.beat();
    await b.tick();
    assert.equal(nonLeaseWrites(fake, 'scaler-b').length, 0, 'the standby never writes');
    assert.equal(fake.requests.filter((r) => r.user === 'scaler-b' && r.subresource === 'scale').length, 0, 'nor reads the scale');
    assert.ok(logs.messages().includes('Lease rtc-edge-scaler is held by scaler-a; scaler-b stands by'));

    // Crash: scaler-a stops renewing without releasing the Lease.
    await leaderA.close({ release: false });
    const crashedAt = Date.now();
    await fake.waitFor(() => b!.isLeader(), 5000, 'failover');
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
    hb.stop();
    await b?.close();
    await a.close();
    await registry.close();
    await fake.close();
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
  const fake = await startFakeKubernetes({ replicas: 5 });
  const registry = createMemoryRegistry();
  const hb = startHeartbeats(registry, fake);
  const logs = captureLogs();
  const names = fake.podNames();
  names.forEach((n, i) => hb.connections.set(n, 10 * (i + 1)));
  await hb.beat();
  const scaler = (id: string) => start(scalerTestConfig({ podName: id }), { logger: logs.logger, registry, kubeConfig: fake.kubeConfig(id), admin: false, ...FAST });
  const a = await scaler('scaler-a');
  let b: ScalerHandle | undefined;
  try {
    await fake.waitFor(() => a.isLeader(), 5000, 'scaler-a to lead');
    b = await scaler('scaler-b');
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
    await fake.waitFor(() => b!.isLeader(), 5000, 'scaler-b to lead');

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
    hb.stop();
    await b?.close();
    await a.close();
    await registry.close();
    await fake.close();
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

test('a standby scaler exports no desired/current/connections gauges; the leader does, and drops them when it loses the Lease', async () => {
  const env = await setup({ replicas: 2 });
  const gauges = /^rtc_scaler_(desired_replicas|current_replicas|connections)\{/m;
  let b: ScalerHandle | undefined;
  try {
    await setLoad(env, 100);
    await env.scaler.tick();
    assert.match(await env.scaler.metrics.registry.metrics(), gauges, 'the leader exports them');
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
    assert.match(await leader.metrics.registry.metrics(), gauges);
    assert.equal(await scalerMetric(leader, 'rtc_scaler_desired_replicas'), 2);
  } finally {
    await b?.close();
    await env.close();
  }
});
