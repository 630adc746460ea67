/** The pure scaling policy, by tables: out, in, bounds, stabilization, holds, capacity on the way. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decide, desiredReplicas, initialPolicyState, scaleOutLimit, type PodCounts, type PolicyConfig, type PolicyInput, type PolicyState } from '../scaler/policy.js';

const CFG: PolicyConfig = { minReplicas: 2, maxReplicas: 50, targetConnections: 1000, scaleInStabilizationMs: 300_000, scaleInMaxStep: 1 };
const NOW = 10_000_000;

function input(current: number, total: number, pods: Partial<PodCounts> = {}, extra: Partial<PolicyInput> = {}): PolicyInput {
  return { now: NOW, currentReplicas: current, registry: 'ok', totalConnections: total, pods: { live: current, booting: 0, unreported: 0, dead: 0, drained: 0, draining: 0, ...pods }, rolloutInProgress: false, ...extra };
}

test('desiredReplicas is clamp(ceil(total / target), min, max)', () => {
  const rows: Array<[number, number]> = [
    [0, 2],
    [1, 2],
    [2000, 2],
    [2001, 3],
    [4500, 5],
    [49_999, 50],
    [1_000_000, 50],
  ];
  for (const [total, want] of rows) assert.equal(desiredReplicas(total, CFG), want, `total ${total}`);
  assert.equal(desiredReplicas(0, { ...CFG, minReplicas: 0 }), 0);
});

test('scaleOutLimit: doubling or +4, whichever is more', () => {
  assert.deepEqual([0, 1, 2, 4, 5, 10, 30].map(scaleOutLimit), [4, 5, 6, 8, 10, 20, 60]);
});

type Row = { name: string; in: PolicyInput; cfg?: Partial<PolicyConfig>; state?: PolicyState; action: string; reason: string; replicas: number; desired?: number };

const rows: Row[] = [
  { name: 'steady', in: input(3, 2500), action: 'steady', reason: 'steady', replicas: 3, desired: 3 },
  { name: 'scale out at once to the desired count', in: input(2, 4500), action: 'scale-out', reason: 'load-increase', replicas: 5, desired: 5 },
  { name: 'scale out bounded: +4 from 2', in: input(2, 20_000), action: 'scale-out', reason: 'load-increase', replicas: 6, desired: 20 },
  { name: 'scale out bounded: doubling from 10', in: input(10, 40_000), action: 'scale-out', reason: 'load-increase', replicas: 20, desired: 40 },
  { name: 'scale out capped by max', in: input(48, 100_000), action: 'scale-out', reason: 'load-increase', replicas: 50, desired: 50 },
  { name: 'at max: no action', in: input(50, 100_000), action: 'steady', reason: 'at-max', replicas: 50, desired: 50 },
  { name: 'below min: scale out to min', in: input(1, 0), action: 'scale-out', reason: 'below-min', replicas: 2, desired: 2 },
  { name: 'min 0 and no load: steady at 0', in: input(0, 0), cfg: { minReplicas: 0 }, action: 'steady', reason: 'steady', replicas: 0, desired: 0 },
  { name: 'booting pods are capacity on the way (no repeated scale-out)', in: input(5, 4500, { live: 2, booting: 3 }), action: 'steady', reason: 'steady', replicas: 5 },
  { name: 'booting pods plus more load: only the difference', in: input(5, 6500, { live: 2, booting: 3 }), action: 'scale-out', reason: 'load-increase', replicas: 7 },
  { name: 'a dead pod is not capacity: replaced', in: input(5, 4500, { live: 4, dead: 1 }), action: 'scale-out', reason: 'replace-dead-pods', replicas: 6 },
  { name: 'registry unreachable: hold, never scale to min', in: input(8, 0, {}, { registry: 'unavailable' }), action: 'hold', reason: 'registry-unavailable', replicas: 8 },
  { name: 'registry stale: hold', in: input(8, 0, {}, { registry: 'stale' }), action: 'hold', reason: 'registry-stale', replicas: 8 },
  { name: 'no pod heartbeats at all: hold', in: input(4, 0, { live: 0, dead: 4 }), action: 'hold', reason: 'registry-stale', replicas: 4 },
  { name: 'Ready pods, none reported yet (scaler or registry just started): hold', in: input(4, 0, { live: 0, unreported: 4 }), action: 'hold', reason: 'registry-stale', replicas: 4 },
  { name: 'only pods still starting: not a stale view, below-min still applies', in: input(1, 0, { live: 0, booting: 1 }), action: 'scale-out', reason: 'below-min', replicas: 2 },
  { name: 'unreported pods are capacity on the way', in: input(5, 4500, { live: 3, unreported: 2 }), action: 'steady', reason: 'steady', replicas: 5 },
  {
    name: 'unreported pods hold a scale-in (their load is unknown)',
    in: input(5, 1000, { live: 3, unreported: 2 }),
    state: { lowSince: NOW - 300_000, window: [] },
    action: 'hold',
    reason: 'awaiting-heartbeats',
    replicas: 5,
  },
  {
    name: 'pods that are not Ready do not hold a scale-in (the ReplicaSet removes them first)',
    in: input(5, 1000, { live: 3, booting: 2 }),
    state: { lowSince: NOW - 300_000, window: [] },
    action: 'scale-in',
    reason: 'load-decrease',
    replicas: 4,
  },
  { name: 'scale in waits for the window', in: input(5, 1000), action: 'hold', reason: 'stabilizing', replicas: 5, desired: 2 },
  {
    name: 'scale in after the window, one step',
    in: input(5, 1000),
    state: { lowSince: NOW - 300_000, window: [{ at: NOW - 200_000, replicas: 2 }] },
    action: 'scale-in',
    reason: 'load-decrease',
    replicas: 4,
  },
  {
    name: 'scale in by SCALE_IN_MAX_STEP',
    in: input(5, 1000),
    cfg: { scaleInMaxStep: 3 },
    state: { lowSince: NOW - 300_000, window: [] },
    action: 'scale-in',
    reason: 'load-decrease',
    replicas: 2,
  },
  {
    name: 'scale in no lower than the highest recommendation in the window',
    in: input(6, 1000),
    cfg: { scaleInMaxStep: 5 },
    state: { lowSince: NOW - 300_000, window: [{ at: NOW - 250_000, replicas: 4 }, { at: NOW - 100_000, replicas: 3 }] },
    action: 'scale-in',
    reason: 'load-decrease',
    replicas: 4,
  },
  {
    name: 'recommendations older than the window do not count',
    in: input(6, 1000),
    cfg: { scaleInMaxStep: 5 },
    state: { lowSince: NOW - 400_000, window: [{ at: NOW - 350_000, replicas: 5 }] },
    action: 'scale-in',
    reason: 'load-decrease',
    replicas: 2,
  },
  { name: 'scale in never below min', in: input(2, 0), state: { lowSince: NOW - 600_000, window: [] }, action: 'steady', reason: 'steady', replicas: 2 },
  {
    name: 'rollout in progress holds scale-in',
    in: input(5, 1000, {}, { rolloutInProgress: true }),
    state: { lowSince: NOW - 300_000, window: [] },
    action: 'hold',
    reason: 'rollout-in-progress',
    replicas: 5,
  },
  { name: 'rollout does not hold scale-out', in: input(2, 4500, {}, { rolloutInProgress: true }), action: 'scale-out', reason: 'load-increase', replicas: 5 },
  {
    name: 'a pod still draining holds the next scale-in',
    in: input(5, 1000, { live: 5, draining: 1 }),
    state: { lowSince: NOW - 300_000, window: [] },
    action: 'hold',
    reason: 'drain-in-progress',
    replicas: 5,
  },
  { name: 'above a lowered max: step down without the window', in: input(60, 100_000), action: 'scale-in', reason: 'above-max', replicas: 59 },
  { name: 'stabilization 0 scales in at once', in: input(5, 1000), cfg: { scaleInStabilizationMs: 0 }, action: 'scale-in', reason: 'load-decrease', replicas: 4 },
];

/** Small fleets must not freeze: a silent pod is replaced; only no reports at all, or most of a larger fleet silent, hold. */
type FleetRow = { pods: number; counts: Partial<PodCounts>; connections: number; action: string; reason: string; replicas: number; says?: RegExp; never?: RegExp };
const fleetRows: FleetRow[] = [
  // 2 pods, the default minimum.
  { pods: 2, counts: { live: 1, dead: 1 }, connections: 10, action: 'scale-out', reason: 'replace-dead-pods', replicas: 3, says: /1 pod\(s\) without a live heartbeat/ },
  { pods: 2, counts: { live: 1, dead: 1 }, connections: 2500, action: 'scale-out', reason: 'load-increase', replicas: 4 },
  { pods: 2, counts: { live: 1, drained: 1 }, connections: 10, action: 'scale-out', reason: 'replace-drained-pods', replicas: 3, says: /1 pod\(s\) drained by hand/, never: /heartbeat/ },
  { pods: 2, counts: { live: 0, drained: 2 }, connections: 0, action: 'scale-out', reason: 'replace-drained-pods', replicas: 4, says: /2 pod\(s\) drained by hand/, never: /heartbeat/ },
  { pods: 2, counts: { live: 0, dead: 2 }, connections: 0, action: 'hold', reason: 'registry-stale', replicas: 2, says: /none of 2 pod\(s\) has a live heartbeat/ },
  // 3 pods: still small, a majority of silent pods is two dead pods, not a broken registry.
  { pods: 3, counts: { live: 1, dead: 2 }, connections: 10, action: 'scale-out', reason: 'replace-dead-pods', replicas: 4, says: /2 pod\(s\) without a live heartbeat/ },
  { pods: 3, counts: { live: 1, dead: 1, drained: 1 }, connections: 10, action: 'scale-out', reason: 'replace-dead-pods', replicas: 4, says: /1 pod\(s\) without a live heartbeat, 1 pod\(s\) drained by hand/ },
  { pods: 3, counts: { live: 2, drained: 1 }, connections: 10, action: 'hold', reason: 'stabilizing', replicas: 3, never: /heartbeat/ },
  { pods: 3, counts: { live: 0, dead: 3 }, connections: 0, action: 'hold', reason: 'registry-stale', replicas: 3 },
  // 10 pods: most of them silent is the heartbeat pipeline, not the pods.
  { pods: 10, counts: { live: 4, dead: 6 }, connections: 4000, action: 'hold', reason: 'registry-stale', replicas: 10, says: /6 of 10 pods lost their heartbeat/ },
  { pods: 10, counts: { live: 5, dead: 5 }, connections: 9000, action: 'scale-out', reason: 'replace-dead-pods', replicas: 14 },
  { pods: 10, counts: { live: 7, dead: 3 }, connections: 9000, action: 'scale-out', reason: 'replace-dead-pods', replicas: 12 },
  { pods: 10, counts: { live: 4, drained: 6 }, connections: 9000, action: 'scale-out', reason: 'replace-drained-pods', replicas: 15, never: /heartbeat/ },
];

for (const row of fleetRows) {
  const what = Object.entries(row.counts).map(([k, v]) => `${v} ${k}`).join(', ');
  test(`policy, ${row.pods} pods (${what}), ${row.connections} connections: ${row.action} (${row.reason})`, () => {
    const d = decide(input(row.pods, row.connections, { live: 0, ...row.counts }), CFG, initialPolicyState());
    assert.equal(d.action, row.action, d.message);
    assert.equal(d.reason, row.reason, d.message);
    assert.equal(d.replicas, row.replicas, d.message);
    if (row.says) assert.match(d.message, row.says);
    if (row.never) assert.doesNotMatch(d.message, row.never);
  });
}

for (const row of rows) {
  test(`policy: ${row.name}`, () => {
    const d = decide(row.in, { ...CFG, ...row.cfg }, row.state ?? initialPolicyState());
    assert.equal(d.action, row.action, d.message);
    assert.equal(d.reason, row.reason, d.message);
    assert.equal(d.replicas, row.replicas, d.message);
    if (row.desired !== undefined) assert.equal(d.desired, row.desired);
    assert.ok(d.message.length > 0);
  });
}

test('policy state: the window starts when desired drops and resets when it recovers', () => {
  let s = initialPolicyState();
  let d = decide({ ...input(5, 1000), now: 0 }, CFG, s);
  assert.equal(d.state.lowSince, 0);
  s = d.state;
  d = decide({ ...input(5, 5000), now: 100_000 }, CFG, s);
  assert.equal(d.action, 'steady');
  assert.equal(d.state.lowSince, undefined, 'recovered: window restarts');
  d = decide({ ...input(5, 1000), now: 150_000 }, CFG, d.state);
  assert.equal(d.state.lowSince, 150_000);
});

test('policy state: a hold for missing data clears the window (a fresh full window is needed)', () => {
  const s: PolicyState = { lowSince: NOW - 299_000, window: [{ at: NOW - 1000, replicas: 2 }] };
  const held = decide(input(5, 0, {}, { registry: 'unavailable' }), CFG, s);
  assert.deepEqual(held.state, initialPolicyState());
  const next = decide({ ...input(5, 1000), now: NOW + 5000 }, CFG, held.state);
  assert.equal(next.reason, 'stabilizing');
});

test('policy run: ticks every 5 s, scale-in exactly once the window has passed, then one pod per tick', () => {
  const cfg = { ...CFG, scaleInStabilizationMs: 60_000 };
  let state = initialPolicyState();
  let current = 6;
  const actions: Array<[number, string, number]> = [];
  for (let t = 0; t <= 90_000; t += 5000) {
    const d = decide({ ...input(current, 1500), now: t }, cfg, state);
    state = d.state;
    if (d.action === 'scale-in') {
      actions.push([t, d.action, d.replicas]);
      current = d.replicas;
    }
  }
  assert.deepEqual(actions, [
    [60_000, 'scale-in', 5],
    [65_000, 'scale-in', 4],
    [70_000, 'scale-in', 3],
    [75_000, 'scale-in', 2],
  ]);
});

test('policy run: a spike inside the window keeps the replicas it needed', () => {
  const cfg = { ...CFG, scaleInStabilizationMs: 60_000, scaleInMaxStep: 10 };
  let state = initialPolicyState();
  const totals = [1000, 1000, 1000, 4500, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000];
  let last;
  for (let i = 0; i < totals.length; i++) {
    last = decide({ ...input(8, totals[i]!), now: i * 5000 }, cfg, state);
    state = last.state;
  }
  assert.equal(last!.action, 'scale-in');
  assert.equal(last!.replicas, 5, 'the 4500-connection spike 45 s ago still counts');
});
