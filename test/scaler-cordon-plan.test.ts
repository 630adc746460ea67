/** The pure cordon decision, by tables: cordon, keep, uncordon, re-pick (dead pod, lighter pod), several victims, bounds, registry holds. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planCordon, victimsWanted, type CordonCandidate } from '../scaler/cordon-plan.js';
import { decide, initialPolicyState, type PolicyConfig, type PolicyDecision } from '../scaler/policy.js';

const CFG: PolicyConfig = { minReplicas: 2, maxReplicas: 50, targetConnections: 1000, scaleInStabilizationMs: 300_000, scaleInMaxStep: 1 };

type D = Pick<PolicyDecision, 'action' | 'reason' | 'desired' | 'replicas'>;
const hold = (desired: number, current: number, reason: D['reason'] = 'stabilizing'): D => ({ action: 'hold', reason, desired, replicas: current });
const scaleIn = (desired: number, to: number): D => ({ action: 'scale-in', reason: 'load-decrease', desired, replicas: to });
const steady = (current: number): D => ({ action: 'steady', reason: 'steady', desired: current, replicas: current });
const scaleOut = (desired: number): D => ({ action: 'scale-out', reason: 'load-increase', desired, replicas: desired });

/** `a:120*` = pod a with 120 connections, cordoned. */
const pods = (spec: string): CordonCandidate[] =>
  spec.split(' ').map((s) => {
    const [name, rest] = s.split(':') as [string, string];
    return { name, connections: Number(rest.replace('*', '')), cordoned: rest.endsWith('*') };
  });

type Row = { name: string; decision: D; current: number; pods: string; cfg?: Partial<PolicyConfig>; marked?: string[]; cordoned: string[]; add: string[]; remove: string[] };

const rows: Row[] = [
  { name: 'first desired < current: cordon the least-loaded', decision: hold(3, 4), current: 4, pods: 'a:900 b:300 c:800 d:700', cordoned: ['b'], add: ['b'], remove: [] },
  { name: 'ties go by name', decision: hold(3, 4), current: 4, pods: 'd:300 c:300 a:900 b:800', cordoned: ['c'], add: ['c'], remove: [] },
  { name: 'still low: keep the mark, nothing to write', decision: hold(3, 4), current: 4, pods: 'a:900 b:250* c:800 d:700', cordoned: ['b'], add: [], remove: [] },
  { name: 'desired back at current: uncordon', decision: steady(4), current: 4, pods: 'a:900 b:250* c:800 d:700', cordoned: [], add: [], remove: ['b'] },
  { name: 'scale-out: uncordon (before scaling)', decision: scaleOut(6), current: 4, pods: 'a:900 b:250* c:800 d:700', cordoned: [], add: [], remove: ['b'] },
  { name: 'the cordoned pod died: its mark goes, the next lightest is picked', decision: hold(3, 4), current: 4, pods: 'a:900 c:800 d:700', marked: ['b'], cordoned: ['d'], add: ['d'], remove: ['b'] },
  { name: 'another pod became clearly lighter: re-pick', decision: hold(3, 4), current: 4, pods: 'a:900 b:400* c:150 d:700', cordoned: ['c'], add: ['c'], remove: ['b'] },
  { name: 'slightly lighter is not enough (hysteresis)', decision: hold(3, 4), current: 4, pods: 'a:900 b:400* c:250 d:700', cordoned: ['b'], add: [], remove: [] },
  { name: 'a few connections apart is not enough even at half', decision: hold(3, 4), current: 4, pods: 'a:900 b:12* c:5 d:700', cordoned: ['b'], add: [], remove: [] },
  { name: 'several victims at once (SCALE_IN_MAX_STEP=3)', decision: hold(3, 7), current: 7, cfg: { scaleInMaxStep: 3 }, pods: 'a:900 b:10 c:800 d:20 e:700 f:30 g:600', cordoned: ['b', 'd', 'f'], add: ['b', 'd', 'f'], remove: [] },
  { name: 'several victims: one more needed, marks kept', decision: hold(3, 7), current: 7, cfg: { scaleInMaxStep: 3 }, pods: 'a:900 b:10* c:800 d:20* e:700 f:30 g:600', cordoned: ['b', 'd', 'f'], add: ['f'], remove: [] },
  { name: 'fewer victims needed now: the heaviest mark goes', decision: hold(6, 7), current: 7, cfg: { scaleInMaxStep: 3 }, pods: 'a:900 b:10* c:800 d:20* e:700 f:30* g:600', cordoned: ['b'], add: [], remove: ['d', 'f'] },
  { name: 'bound: SCALE_IN_MAX_STEP', decision: hold(2, 6), current: 6, pods: 'a:100 b:10 c:20 d:30 e:40 f:50', cordoned: ['b'], add: ['b'], remove: [] },
  { name: 'bound: never below SOCKET_MIN_REPLICAS', decision: hold(2, 3), current: 3, cfg: { minReplicas: 3 }, pods: 'a:10 b:20 c:30', cordoned: [], add: [], remove: [] },
  { name: 'bound: no more than the candidates', decision: hold(2, 5), current: 5, cfg: { scaleInMaxStep: 3 }, pods: 'a:10 b:20', cordoned: ['a', 'b'], add: ['a', 'b'], remove: [] },
  { name: 'the scale-in itself: exactly its victims', decision: scaleIn(3, 3), current: 4, pods: 'a:900 b:3* c:800 d:700', cordoned: ['b'], add: [], remove: [] },
  { name: 'above max: the step down cordons too', decision: { action: 'scale-in', reason: 'above-max', desired: 40, replicas: 50 }, current: 52, cfg: { scaleInMaxStep: 2 }, pods: Array.from({ length: 52 }, (_, i) => `p${String(i).padStart(2, '0')}:${1000 - i}`).join(' '), cordoned: ['p51', 'p50'], add: ['p51', 'p50'], remove: [] },
  { name: 'held scale-in (drain in progress) keeps the marks', decision: hold(3, 4, 'drain-in-progress'), current: 4, pods: 'a:900 b:3* c:800 d:700', cordoned: ['b'], add: [], remove: [] },
  { name: 'registry unavailable: marks kept as they are, whatever desired says', decision: { action: 'hold', reason: 'registry-unavailable', desired: 4, replicas: 4 }, current: 4, pods: 'a:0', marked: ['b'], cordoned: ['b'], add: [], remove: [] },
];

for (const r of rows) {
  test(`cordon plan: ${r.name}`, () => {
    const plan = planCordon(r.decision, r.current, pods(r.pods), { ...CFG, ...r.cfg }, r.marked);
    assert.deepEqual({ cordoned: plan.cordoned, add: plan.add, remove: plan.remove }, { cordoned: r.cordoned, add: r.add, remove: r.remove });
  });
}

test('victimsWanted follows the scale-in the window would make, within the step and min bounds', () => {
  assert.equal(victimsWanted(hold(3, 4), 4, CFG), 1);
  assert.equal(victimsWanted(hold(2, 10), 10, { ...CFG, scaleInMaxStep: 4 }), 4);
  assert.equal(victimsWanted(hold(2, 2), 2, CFG), 0);
  assert.equal(victimsWanted(scaleIn(2, 3), 5, CFG), 2);
  assert.equal(victimsWanted(scaleOut(6), 4, CFG), 0);
});

test('with the real policy: cordon at the first low tick, the same pod is the victim when the window ends, uncordon when load returns', () => {
  const cfg = { ...CFG, scaleInStabilizationMs: 60_000 };
  let state = initialPolicyState();
  let candidates = pods('a:900 b:600 c:700 d:800');
  const tick = (now: number, total: number, current: number) => {
    const d = decide({ now, currentReplicas: current, registry: 'ok', totalConnections: total, pods: { live: current, booting: 0, unreported: 0, dead: 0, drained: 0, draining: 0 }, rolloutInProgress: false }, cfg, state);
    state = d.state;
    const plan = planCordon(d, current, candidates, cfg);
    candidates = candidates.map((c) => ({ ...c, cordoned: plan.cordoned.includes(c.name) }));
    return { d, plan };
  };
  assert.deepEqual(tick(0, 3900, 4).plan.cordoned, [], 'desired 4 = current');
  assert.deepEqual(tick(5_000, 2900, 4).plan.add, ['b'], 'first low tick');
  candidates = candidates.map((c) => (c.name === 'b' ? { ...c, connections: 100 } : c));
  assert.deepEqual(tick(30_000, 2500, 4).plan, { cordoned: ['b'], add: [], remove: [] });
  const atEnd = tick(66_000, 2400, 4);
  assert.equal(atEnd.d.action, 'scale-in');
  assert.deepEqual(atEnd.plan.cordoned, ['b'], 'the victim is the pod cordoned at the first low tick');
  // Another round: load comes back before the window ends.
  candidates = pods('a:900 c:700 d:800');
  assert.deepEqual(tick(70_000, 1900, 3).plan.add, ['c']);
  assert.deepEqual(tick(80_000, 3100, 3).plan.remove, ['c'], 'desired rose: uncordon');
});
