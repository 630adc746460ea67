/**
 * The scaler against the fake Kubernetes API server through the real @kubernetes/client-node, judged by what
 * it sent: the scale-in protocol on the wire (cordon, retire, deletion costs, then the scale call), scale-out,
 * stabilization, bounds, pods without heartbeats, rollouts, the admin endpoints. The fake removes the pod the
 * scaler retired (a premise, see `removeRetired`); which pod real Kubernetes removes is judged by
 * test/kube-scaler.test.ts and test/scaler-cordon-plane.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DELETION_COST_ANNOTATION } from '../src/constants.js';
import { VICTIM_DELETION_COST } from '../scaler/constants.js';
import type { FakeKubernetes } from './support/fake-k8s.js';
import { activeInCache, tickUntil } from './support/scaler-session.js';
import { scalePatches, scalerMetric, startScalerEnv, type ScalerEnv } from './support/scaler-env.js';

/** Give the pods these connection counts (in pod order) and write one heartbeat round. */
async function load(env: ScalerEnv, counts: number[]): Promise<string[]> {
  const names = env.fake.podNames();
  assert.equal(names.length, counts.length, 'one count per pod');
  names.forEach((n, i) => env.hb.connections.set(n, counts[i]!));
  await env.hb.beat();
  return names;
}

const costPatches = (fake: FakeKubernetes) => fake.requests.filter((r) => r.resource === 'pods' && r.verb === 'patch');

test('scale-in retires the cordoned least-loaded pod: NotReady with the lowest cost, the others their live counts, all answered before the scale call; only changed values are rewritten', async () => {
  const env = await startScalerEnv({ replicas: 3 }, { socketMinReplicas: 1 });
  try {
    const [a, b, c] = await load(env, [500, 50, 100]);
    await env.scaler.tick();

    assert.equal(env.fake.replicas(), 2);
    const patched = Object.fromEntries(costPatches(env.fake).map((r) => [r.name, r.body.metadata.annotations[DELETION_COST_ANNOTATION]]));
    assert.deepEqual(patched, { [a!]: '500', [b!]: String(VICTIM_DELETION_COST), [c!]: '100' }, 'annotation = live connection count, as a string; the victim the lowest int32');
    assert.ok(env.logs.messages().some((m) => m.startsWith(`cordoned pod ${b} (50 connections)`)), 'the victim was cordoned first');
    for (const r of costPatches(env.fake)) {
      assert.equal(r.contentType, 'application/merge-patch+json');
      assert.match(String(r.body.metadata.resourceVersion), /^\d+$/, 'a cost patch is conditional on the version the watch showed');
    }
    const scale = scalePatches(env.fake)[0]!;
    assert.equal(scale.contentType, 'application/merge-patch+json');
    assert.deepEqual(scale.body.spec, { replicas: 2 });
    assert.match(String(scale.body.metadata.resourceVersion), /^\d+$/, 'the scale call is conditional on the scale read');
    assert.ok(costPatches(env.fake).every((p) => p.status === 200 && p.answeredAt !== undefined && p.answeredAt <= scale.at), 'every cost patch was answered before the scale call');
    assert.ok(env.logs.messages().some((m) => m === `asked ${b} to report NotReady before the scale-in`));
    await env.fake.waitFor(() => activeInCache(env.scaler) === 2);

    const msgs = env.logs.messages();
    assert.ok(msgs.includes('Scaling Deployment socket from 3 to 2 replicas'));
    assert.ok(msgs.includes('✓ Successfully scaled Deployment socket to 2 replicas'));

    // Next tick observes the removed pod and judges it; load still wants 1 pod: scale in again, writing only the new victim.
    const before = costPatches(env.fake).length;
    await env.hb.beat();
    await env.scaler.tick();
    assert.ok(env.logs.messages().some((m) => m.startsWith(`scale-in removed pod ${b} with 50 connections: the cordoned pod, as intended`)));
    assert.equal(await scalerMetric(env.scaler, 'rtc_scaler_scale_in_victims_total', 'honored="true"'), 1);
    assert.equal(env.fake.replicas(), 1, env.scaler.lastDecision()?.message);
    assert.deepEqual(costPatches(env.fake).slice(before).map((r) => r.name), [c], 'a still carries 500: only the new victim is rewritten');
    assert.ok(env.logs.messages().includes(`asked ${c} to report NotReady before the scale-in`));

    const decision = await env.registry.getScalerDecision();
    assert.equal(decision?.currentReplicas, 1);
    assert.equal(decision?.desiredReplicas, 1);
    assert.deepEqual(decision?.deletionCosts, { [a!]: 500, [c!]: VICTIM_DELETION_COST });
    const events = await env.registry.recentEvents();
    const kinds = events.map((e) => e.kind);
    assert.ok(kinds.includes('scale-in') && kinds.includes('victim') && kinds.includes('cordon'), kinds.join());
    assert.ok(events.some((e) => e.kind === 'victim' && e.message === `scale-in removed ${b} with 50 connections (the cordoned pod)`));
    assert.ok(!kinds.includes('not-honoured'));
    assert.equal(await scalerMetric(env.scaler, 'rtc_scaler_deletion_cost_patches_total'), 4);
  } finally {
    await env.close();
  }
});

test('annotations change only when a scale-in is about to happen, never while steady', async () => {
  const env = await startScalerEnv({ replicas: 3 }, { socketMinReplicas: 2 });
  try {
    await load(env, [900, 800, 700]);
    for (let i = 0; i < 5; i++) await env.scaler.tick();
    assert.equal(env.scaler.lastDecision()?.reason, 'steady');
    assert.equal(env.fake.writes().filter((w) => w.resource !== 'leases').length, 0, 'no writes while steady');
  } finally {
    await env.close();
  }
});

test('scale-out: at once, bounded per step; pods on the way count, so no repeated scale-out while they boot', async () => {
  const env = await startScalerEnv({ replicas: 2, startup: { scheduleMs: 150, readyMs: 250 } }, { socketMinReplicas: 2 });
  try {
    await env.fake.waitFor(() => env.fake.activePods().every((p) => p.status.phase === 'Running'), 5000, 'initial pods ready');
    await load(env, [2500, 2500]);
    await env.scaler.tick();
    assert.equal(env.fake.replicas(), 5);
    assert.equal(env.scaler.lastDecision()?.reason, 'load-increase');
    assert.ok(env.logs.messages().includes('Scaling Deployment socket from 2 to 5 replicas'));
    assert.ok(env.logs.messages().includes('✓ Successfully scaled Deployment socket to 5 replicas'));
    await env.fake.waitFor(() => env.scaler.workload.listPods().length === 5, 5000, 'new pods on the watch');

    // New pods are Pending/not ready and silent: they are capacity on the way.
    for (let i = 0; i < 3; i++) await env.scaler.tick();
    assert.equal(env.fake.replicas(), 5);
    assert.equal(scalePatches(env.fake).length, 1, 'exactly one scale-out');

    // Load ×4: desired 20 but one step is at most doubling (5 → 10).
    await env.fake.waitFor(() => env.fake.activePods().every((p) => p.status.phase === 'Running'), 5000, 'new pods ready');
    for (const n of env.fake.podNames()) env.hb.connections.set(n, 4000);
    await env.hb.beat();
    await env.scaler.tick();
    assert.equal(env.fake.replicas(), 10, env.scaler.lastDecision()?.message);
  } finally {
    await env.close();
  }
});

test('stabilization: no scale-in (and no annotation write) until desired stayed lower for the window', async () => {
  const env = await startScalerEnv({ replicas: 4 }, { socketMinReplicas: 2, scaleInStabilizationMs: 600 });
  try {
    await load(env, [100, 200, 300, 400]);
    const t0 = Date.now();
    await env.scaler.tick();
    assert.equal(env.scaler.lastDecision()?.reason, 'stabilizing');
    const cordoned = (await env.registry.list()).filter((p) => p.cordoned).length;
    assert.ok(cordoned > 0, 'the coming victims are cordoned while stabilizing');
    assert.equal(await scalerMetric(env.scaler, 'rtc_scaler_cordoned_pods'), cordoned, 'the gauge counts the cordoned pods');
    while (Date.now() - t0 < 400) {
      await env.scaler.tick();
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(env.fake.replicas(), 4, 'held inside the window');
    assert.equal(costPatches(env.fake).length, 0, 'no deletion cost written while stabilizing');
    await tickUntil(env.scaler, () => env.fake.replicas() === 3, 40, 50);
    assert.ok(Date.now() - t0 >= 600, 'not before the window passed');
    assert.equal(costPatches(env.fake).length, 4);
  } finally {
    await env.close();
  }
});

test('bounds: below min scales out to min; load beyond max stops at max', async () => {
  const env = await startScalerEnv({ replicas: 1 }, { socketMinReplicas: 2, socketMaxReplicas: 4 });
  try {
    await env.scaler.tick();
    assert.equal(env.fake.replicas(), 2);
    assert.equal(env.scaler.lastDecision()?.reason, 'below-min');
    await env.fake.waitFor(() => env.fake.podNames().length === 2);
    await load(env, [20_000, 20_000]);
    await env.scaler.tick();
    assert.equal(env.fake.replicas(), 4);
    await env.fake.waitFor(() => env.scaler.workload.listPods().length === 4);
    await env.hb.beat();
    await env.scaler.tick();
    assert.equal(env.fake.replicas(), 4);
    assert.equal(env.scaler.lastDecision()?.reason, 'at-max');
  } finally {
    await env.close();
  }
});

test('a Ready pod that never heartbeats is the victim: no retire request (it cannot hear one), only the lowest cost', async () => {
  const env = await startScalerEnv({ replicas: 3 }, { socketMinReplicas: 2 }, { bootGraceMs: 0 });
  try {
    const [a, b, c] = env.fake.podNames();
    env.hb.silent.add(c!);
    await env.registry.remove(c!);
    env.hb.connections.set(a!, 300);
    env.hb.connections.set(b!, 200);
    await env.hb.beat();
    await env.scaler.tick();
    assert.equal(env.fake.replicas(), 2);
    assert.equal(env.fake.requests.find((r) => r.name === c && r.verb === 'patch')?.body.metadata.annotations[DELETION_COST_ANNOTATION], String(VICTIM_DELETION_COST));
    assert.ok(!env.logs.messages().some((m) => m.startsWith('asked ')), 'no retire request to a pod without a live entry');
    assert.equal(costPatches(env.fake).find((r) => r.name === a)?.body.metadata.annotations[DELETION_COST_ANNOTATION], '300');
  } finally {
    await env.close();
  }
});

test('a pod whose heartbeat died is not capacity: replaced by a scale-out', async () => {
  const env = await startScalerEnv({ replicas: 4 }, { socketMinReplicas: 2 }, { bootGraceMs: 0 });
  try {
    const names = await load(env, [900, 900, 900, 900]);
    await env.scaler.tick();
    assert.equal(env.scaler.lastDecision()?.reason, 'steady');
    // Its clients moved to the other three: 3600 connections still need 4 pods, and only 3 are live.
    env.hb.silent.add(names[3]!);
    await env.registry.remove(names[3]!);
    for (const n of names.slice(0, 3)) env.hb.connections.set(n, 1200);
    await env.hb.beat();
    await env.scaler.tick();
    assert.equal(env.scaler.lastDecision()?.reason, 'replace-dead-pods');
    assert.equal(env.fake.replicas(), 5);
  } finally {
    await env.close();
  }
});

test('rollout in progress: scale-in held (and logged) until one ReplicaSet is left', async () => {
  const env = await startScalerEnv({ replicas: 3 }, { socketMinReplicas: 2 });
  try {
    await load(env, [100, 100, 100]);
    env.fake.startRollout(1);
    await env.fake.waitFor(() => env.scaler.workload.listPods().length === 4, 5000, 'the new pod on the watch');
    await env.hb.beat();
    await env.scaler.tick();
    await env.scaler.tick();
    assert.equal(env.scaler.lastDecision()?.reason, 'rollout-in-progress');
    assert.equal(env.fake.replicas(), 3);
    assert.equal(costPatches(env.fake).length, 0);
    const logged = env.logs.lines.filter((l) => l.reason === 'rollout-in-progress');
    assert.equal(logged.length, 1, 'logged once, not every tick');
    assert.match(logged[0]!.msg, /rollout is in progress \(deletion costs only compare within one ReplicaSet\)/);

    env.fake.finishRollout();
    await env.fake.waitFor(() => env.fake.replicaSetsWithPods().length === 1 && env.scaler.workload.listPods().filter((p) => !p.terminating).length === 3);
    await env.hb.beat();
    await tickUntil(env.scaler, () => env.fake.replicas() === 2);
  } finally {
    await env.close();
  }
});

test('a victim still draining holds the next scale-in until its clients are gone', async () => {
  const env = await startScalerEnv({ replicas: 4, terminationMs: 60_000 }, { socketMinReplicas: 1 });
  try {
    env.hb.drainTerminating = true;
    const [a, b] = await load(env, [10, 20, 30, 40]);
    const retired = () => env.logs.messages().filter((m) => m.startsWith('asked ')).map((m) => m.split(' ')[1]);
    await env.scaler.tick();
    assert.equal(env.fake.replicas(), 3);
    await env.fake.waitFor(() => activeInCache(env.scaler) === 3);
    await env.hb.beat();
    await env.scaler.tick();
    await env.scaler.tick();
    assert.equal(env.scaler.lastDecision()?.reason, 'drain-in-progress');
    assert.equal(env.fake.replicas(), 3, 'no second victim while the first one drains');
    // The drained pod exits (its entry leaves the registry): the next pod goes.
    env.hb.drainTerminating = false;
    await env.hb.beat();
    await env.scaler.tick();
    assert.equal(env.fake.replicas(), 2, env.scaler.lastDecision()?.message);
    await env.fake.waitFor(() => activeInCache(env.scaler) === 2);
    assert.deepEqual(retired(), [a, b], 'the two least-loaded pods were retired, one scale-in after the other');
  } finally {
    await env.close();
  }
});

test('someone else scaled the Deployment meanwhile: the stale decision is dropped, not forced', async () => {
  const env = await startScalerEnv({ replicas: 3 }, { socketMinReplicas: 2 });
  try {
    await load(env, [100, 200, 300]);
    const snap = await env.scaler.workload.observe();
    env.fake.setReplicas(6); // kubectl scale between our read and our write
    const ok = await env.scaler.workload.scale(snap.replicas, 2);
    assert.equal(ok, false);
    assert.equal(env.fake.replicas(), 6);
    const statuses = scalePatches(env.fake).map((r) => r.status);
    assert.deepEqual(statuses, [409], 'the resourceVersion precondition caught it');
  } finally {
    await env.close();
  }
});

test('the pod watch resumes after the API server closes it', async () => {
  const env = await startScalerEnv({ replicas: 2 });
  try {
    env.fake.closeWatches();
    await new Promise((r) => setTimeout(r, 50));
    env.fake.setReplicas(3);
    await env.fake.waitFor(() => env.scaler.workload.listPods().length === 3, 5000, 'the watch to resume');
    assert.ok(env.fake.requests.filter((r) => r.verb === 'watch').length >= 2);
  } finally {
    await env.close();
  }
});

test('admin: /healthz, /metrics, 404 and 405 as JSON', async () => {
  const env = await startScalerEnv({ replicas: 2 }, {}, { admin: true, adminHost: '127.0.0.1' });
  try {
    await load(env, [10, 10]);
    await env.scaler.tick();
    const base = `http://127.0.0.1:${env.scaler.adminPort}`;
    const h = await fetch(`${base}/healthz`);
    assert.equal(h.status, 200);
    const body = (await h.json()) as { status: string; leader: boolean; identity: string };
    assert.equal(body.status, 'ok');
    assert.equal(body.leader, true);
    assert.equal(body.identity, 'scaler-a');
    const m = await fetch(`${base}/metrics`);
    assert.equal(m.status, 200);
    const text = await m.text();
    assert.match(text, /rtc_scaler_desired_replicas\{role="scaler"\} 2/);
    assert.match(text, /rtc_scaler_current_replicas\{role="scaler"\} 2/);
    assert.match(text, /rtc_scaler_leader\{role="scaler"\} 1/);
    const nf = await fetch(`${base}/nope`);
    assert.equal(nf.status, 404);
    assert.deepEqual(await nf.json(), { error: 'not_found', message: 'no such route' });
    const post = await fetch(`${base}/healthz`, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(((await post.json()) as { error: string }).error, 'method_not_allowed');
  } finally {
    await env.close();
  }
});
