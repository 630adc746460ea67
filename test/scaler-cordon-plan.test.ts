/** The pure cordon decision, by tables: cordon, keep, uncordon, re-pick (dead pod, lighter pod), several victims, bounds, registry holds, placement keys. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planCordon, podsToCordon, type CordonCandidate } from '../scaler/cordon-plan.js';
import { decide, initialPolicyState, type PolicyConfig, type PolicyDecision } from '../scaler/policy.js';

const CFG: PolicyConfig = { minReplicas: 2, maxReplicas: 50, targetConnections: 1000, scaleInStabilizationMs: 300_000, scaleInMaxStep: 1 };

type D = Pick<PolicyDecision, 'action' | 'reason' | 'desired' | 'replicas'>;
const hold = (desired: number, current: number, reason: D['reason'] = 'stabilizing'): D => ({ action: 'hold', reason, desired, replicas: current });
const scaleIn = (desired: number, to: number): D => ({ action: 'scale-in', reason: 'load-decrease', desired, replicas: to });
const steady = (current: number): D => ({ action: 'steady', reason: 'steady', desired: current, replicas: current });
const scaleOut = (desired: number): D => ({ action: 'scale-out', reason: 'load-increase', desired, replicas: desired });

/** `a:120*` = pod a with 120 connections, cordoned; `a:120+3` = with 3 placement keys. */
const pods = (spec: string): CordonCandidate[] =>
  spec.split(' ').map((s) => {
    const [name, rest] = s.split(':') as [string, string];
    const [connections, keys] = rest.replace('*', '').split('+');
    return { name, connections: Number(connections), ...(keys !== undefined ? { keys: Number(keys) } : {}), cordoned: rest.endsWith('*') };
  });

type Row = { name: string; decision: D; current: number; pods: string; cfg?: Partial<PolicyConfig>; marked?: string[]; cordoned: string[]; add: string[]; remove: string[]; victims?: string[] };

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
  { name: 'several victims at once: every pod the coming scale-ins remove drains during the same window', decision: hold(3, 7), current: 7, pods: 'a:900 b:10 c:800 d:20 e:700 f:30 g:600', cordoned: ['b', 'd', 'f', 'g'], add: ['b', 'd', 'f', 'g'], remove: [] },
  { name: 'several victims: one more needed, marks kept', decision: hold(4, 7), current: 7, pods: 'a:900 b:10* c:800 d:20* e:700 f:30 g:600', cordoned: ['b', 'd', 'f'], add: ['f'], remove: [] },
  { name: 'fewer needed now (load rose): the heaviest marks go', decision: hold(6, 7), current: 7, pods: 'a:900 b:10* c:800 d:20* e:700 f:30* g:600', cordoned: ['b'], add: [], remove: ['d', 'f'] },
  { name: 'scale-in by SCALE_IN_MAX_STEP=1 of four cordoned: the lightest goes, the rest stay cordoned', decision: scaleIn(3, 6), current: 7, pods: 'a:900 b:10* c:800 d:5* e:700 f:30* g:60*', cordoned: ['d', 'b', 'f', 'g'], add: [], remove: [], victims: ['d'] },
  { name: 'scale-in of two at once (SCALE_IN_MAX_STEP=2)', decision: scaleIn(3, 5), current: 7, pods: 'a:900 b:10* c:800 d:5* e:700 f:30* g:60*', cordoned: ['d', 'b', 'f', 'g'], add: [], remove: [], victims: ['d', 'b'] },
  { name: 'bound: never below desired', decision: hold(5, 6), current: 6, pods: 'a:100 b:10 c:20 d:30 e:40 f:50', cordoned: ['b'], add: ['b'], remove: [] },
  { name: 'bound: never below SOCKET_MIN_REPLICAS', decision: hold(2, 3), current: 3, cfg: { minReplicas: 3 }, pods: 'a:10 b:20 c:30', cordoned: [], add: [], remove: [] },
  { name: 'bound: SOCKET_MIN_REPLICAS above desired', decision: hold(1, 5), current: 5, cfg: { minReplicas: 3 }, pods: 'a:10 b:20 c:30 d:40 e:50', cordoned: ['a', 'b'], add: ['a', 'b'], remove: [] },
  { name: 'bound: no more than the candidates (pods without a live entry are never marked)', decision: hold(2, 5), current: 5, pods: 'a:10 b:20', cordoned: ['a', 'b'], add: ['a', 'b'], remove: [] },
  { name: 'the scale-in itself: exactly its victims', decision: scaleIn(3, 3), current: 4, pods: 'a:900 b:3* c:800 d:700', cordoned: ['b'], add: [], remove: [], victims: ['b'] },
  { name: 'above max: the step down cordons too', decision: { action: 'scale-in', reason: 'above-max', desired: 50, replicas: 50 }, current: 52, pods: Array.from({ length: 52 }, (_, i) => `p${String(i).padStart(2, '0')}:${1000 - i}`).join(' '), cordoned: ['p51', 'p50'], add: ['p51', 'p50'], remove: [], victims: ['p51', 'p50'] },
  { name: 'held scale-in (drain in progress) keeps the marks', decision: hold(3, 4, 'drain-in-progress'), current: 4, pods: 'a:900 b:3* c:800 d:700', cordoned: ['b'], add: [], remove: [] },
  { name: 'keys: fewer connections but two rooms stay, the pod without keys is cordoned (10 + 2×10 = 30 > 25)', decision: hold(3, 4), current: 4, cfg: { keyWeight: 10 }, pods: 'a:900 b:10+2 c:25 d:700', cordoned: ['c'], add: ['c'], remove: [] },
  { name: 'keys: SCALER_KEY_WEIGHT=0 goes by connections alone', decision: hold(3, 4), current: 4, cfg: { keyWeight: 0 }, pods: 'a:900 b:10+2 c:25 d:700', cordoned: ['b'], add: ['b'], remove: [] },
  { name: 'keys: equal disruption, fewer keys first', decision: hold(3, 4), current: 4, cfg: { keyWeight: 10 }, pods: 'a:900 b:10+1 c:20 d:700', cordoned: ['c'], add: ['c'], remove: [] },
  { name: 'keys: many rooms outweigh many connections when the weight says so', decision: hold(3, 4), current: 4, cfg: { keyWeight: 100 }, pods: 'a:300 b:50+5 c:400+1 d:700', cordoned: ['a'], add: ['a'], remove: [] },
  { name: 'keys: hysteresis on disruption — a cordoned pod whose rooms weigh clearly more is swapped', decision: hold(3, 4), current: 4, cfg: { keyWeight: 10 }, pods: 'a:900 b:15+3* c:10 d:700', cordoned: ['c'], add: ['c'], remove: ['b'] },
  { name: 'keys: the same pods without the weight are near-equal, so the mark stays', decision: hold(3, 4), current: 4, cfg: { keyWeight: 0 }, pods: 'a:900 b:15+3* c:10 d:700', cordoned: ['b'], add: [], remove: [] },
  { name: 'keys: the victims of a scale-in are the least disruptive cordoned pods', decision: scaleIn(3, 5), current: 7, cfg: { keyWeight: 10 }, pods: 'a:900 b:5+4* c:800 d:30* e:700 f:20+1* g:60*', cordoned: ['d', 'f', 'b', 'g'], add: [], remove: [], victims: ['d', 'f'] },
  { name: 'registry unavailable: marks kept as they are, whatever desired says', decision: { action: 'hold', reason: 'registry-unavailable', desired: 4, replicas: 4 }, current: 4, pods: 'a:0', marked: ['b'], cordoned: ['b'], add: [], remove: [] },
];

for (const r of rows) {
  test(`cordon plan: ${r.name}`, () => {
    const plan = planCordon(r.decision, r.current, pods(r.pods), { ...CFG, ...r.cfg }, r.marked);
    assert.deepEqual(plan, { cordoned: r.cordoned, victims: r.victims ?? [], add: r.add, remove: r.remove });
  });
}

test('podsToCordon: every pod the coming scale-ins remove, never below desired or SOCKET_MIN_REPLICAS', () => {
  assert.equal(podsToCordon(hold(3, 4), 4, CFG), 1);
  assert.equal(podsToCordon(hold(2, 10), 10, CFG), 8);
  assert.equal(podsToCordon(hold(1, 10), 10, { minReplicas: 4 }), 6);
  assert.equal(podsToCordon(hold(2, 2), 2, CFG), 0);
  assert.equal(podsToCordon(scaleIn(2, 4), 5, CFG), 3);
  assert.equal(podsToCordon(scaleOut(6), 4, CFG), 0);
  assert.equal(podsToCordon(steady(4), 4, CFG), 0);
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
  assert.deepEqual(tick(30_000, 2500, 4).plan, { cordoned: ['b'], victims: [], add: [], remove: [] });
  const atEnd = tick(66_000, 2400, 4);
  assert.equal(atEnd.d.action, 'scale-in');
  assert.deepEqual(atEnd.plan.victims, ['b'], 'the victim is the pod cordoned at the first low tick');
  // Another round: load comes back before the window ends.
  candidates = pods('a:900 c:700 d:800');
  assert.deepEqual(tick(70_000, 1900, 3).plan.add, ['c']);
  assert.deepEqual(tick(80_000, 3100, 3).plan.remove, ['c'], 'desired rose: uncordon');
});
