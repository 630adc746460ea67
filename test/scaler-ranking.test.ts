/** The ReplicaSet scale-down ranking and the deletion-cost helpers. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareForDeletion, parseDeletionCost, podsToDelete, rankForDeletion, type RankablePod } from '../scaler/ranking.js';
import { changedCosts, costsFor, deletionCostFor, disruption, leastLoadedThreshold, observeVictims, podsRankedFirst } from '../scaler/deletion-cost.js';
import type { WorkloadPod } from '../scaler/workload/workload.js';

const NOW = Date.parse('2026-01-01T12:00:00Z');
const HOUR = 3_600_000;

function pod(name: string, p: Partial<RankablePod> = {}): RankablePod {
  return { name, uid: name, assigned: true, phase: 'Running', ready: true, readySince: NOW - HOUR, deletionCost: 0, restarts: 0, createdAt: NOW - HOUR, ...p };
}

const first = (pods: RankablePod[], opts = { now: NOW }) => rankForDeletion(pods, opts)[0]!.name;

test('ranking: each rule of ActivePodsWithRanks, in order', () => {
  const rows: Array<[string, RankablePod[], string]> = [
    ['unassigned before assigned', [pod('a'), pod('b', { assigned: false, phase: 'Pending', ready: false })], 'b'],
    ['unassigned wins over a lower cost', [pod('a', { deletionCost: -100 }), pod('b', { assigned: false, deletionCost: 100 })], 'b'],
    ['pending before running', [pod('a'), pod('b', { phase: 'Pending', ready: false })], 'b'],
    ['unknown before running', [pod('a'), pod('b', { phase: 'Unknown' })], 'b'],
    ['pending before unknown', [pod('a', { phase: 'Unknown' }), pod('b', { phase: 'Pending' })], 'b'],
    ['not ready before ready, whatever the cost', [pod('a', { deletionCost: 0 }), pod('b', { ready: false, deletionCost: 9999 })], 'b'],
    ['lower deletion cost first', [pod('a', { deletionCost: 500 }), pod('b', { deletionCost: 50 }), pod('c', { deletionCost: 100 })], 'b'],
    ['negative cost below zero', [pod('a', { deletionCost: 0 }), pod('b', { deletionCost: -1 })], 'b'],
    ['same cost: more co-located first', [pod('a', { colocated: 1 }), pod('b', { colocated: 3 })], 'b'],
    ['same cost: ready more recently first', [pod('a', { readySince: NOW - 10 * HOUR }), pod('b', { readySince: NOW - 60_000 })], 'b'],
    ['same readiness: more restarts first', [pod('a', { restarts: 0 }), pod('b', { restarts: 4 })], 'b'],
    ['then newer first', [pod('a', { createdAt: NOW - 10 * HOUR }), pod('b', { createdAt: NOW - 60_000 })], 'b'],
  ];
  for (const [name, pods, want] of rows) {
    assert.equal(first(pods), want, name);
    assert.equal(first([...pods].reverse()), want, `${name} (reversed input)`);
  }
});

test('ranking: LogarithmicScaleDown compares ready times in log2 buckets, ties by UID', () => {
  // 100 s and 101 s ago fall in the same log2(ns) bucket: the UID decides, not the exact time.
  const a = pod('a', { uid: 'uid-b', readySince: NOW - 100_000 });
  const b = pod('b', { uid: 'uid-a', readySince: NOW - 101_000 });
  assert.ok(compareForDeletion(b, a, { now: NOW }) < 0, 'smaller UID removed first within a bucket');
  // Without the feature the later ready time is removed first.
  assert.ok(compareForDeletion(a, b, { now: NOW, logarithmic: false }) < 0);
  // A zero ready time sorts first.
  assert.equal(first([pod('a'), pod('b', { readySince: 0 })]), 'b');
});

test('parseDeletionCost reads an int32 like Kubernetes, anything else is 0', () => {
  const rows: Array<[string | undefined, number]> = [
    [undefined, 0],
    ['0', 0],
    ['50', 50],
    ['-7', -7],
    [' 12 ', 12],
    ['2147483647', 2147483647],
    ['2147483648', 0],
    ['-2147483649', 0],
    ['1.5', 0],
    ['abc', 0],
    ['', 0],
  ];
  for (const [raw, want] of rows) assert.equal(parseDeletionCost(raw), want, String(raw));
});

test('podsToDelete takes the first n of the ranking, all of them when n covers every pod', () => {
  const pods = [pod('a', { deletionCost: 30 }), pod('b', { deletionCost: 10 }), pod('c', { deletionCost: 20 })];
  assert.deepEqual(podsToDelete(pods, 2, { now: NOW }).map((p) => p.name), ['b', 'c']);
  assert.deepEqual(podsToDelete(pods, 3, { now: NOW }).map((p) => p.name).sort(), ['a', 'b', 'c']);
  assert.deepEqual(podsToDelete(pods, 0, { now: NOW }), []);
});

function wpod(name: string, p: Partial<WorkloadPod> = {}): WorkloadPod {
  return { ...pod(name), uid: name, terminating: false, annotatedCost: undefined, owner: 'rs-1', ...p };
}

test('deletionCostFor clamps to int32 and never goes negative', () => {
  assert.equal(deletionCostFor(0), 0);
  assert.equal(deletionCostFor(42), 42);
  assert.equal(deletionCostFor(3.9), 3);
  assert.equal(deletionCostFor(-5), 0);
  assert.equal(deletionCostFor(5e12), 2147483647);
  assert.equal(deletionCostFor(Number.NaN), 0);
});

test('costsFor: live connections, 0 without a live entry, terminating pods left out', () => {
  const pods = [wpod('a'), wpod('b'), wpod('c', { terminating: true })];
  const costs = costsFor(pods, new Map([['a', 120], ['c', 9]]));
  assert.deepEqual(Object.fromEntries(costs), { a: 120, b: 0 });
});

test('deletion cost with keys: connections + SCALER_KEY_WEIGHT × keys, by table', () => {
  // [connections, keys, weight, cost]
  const rows: Array<[number, number, number, number]> = [
    [40, 0, 10, 40],
    [40, 3, 10, 70],
    [40, 3, 0, 40],
    [0, 5, 10, 50],
    [7, 2, 1000, 2007],
    [-5, -2, 10, 0],
    [2e9, 1e6, 1000, 2147483647],
    [10, Number.NaN, 10, 10],
  ];
  for (const [c, k, w, want] of rows) assert.equal(deletionCostFor(c, k, w), want, `${c} connections, ${k} keys, weight ${w}`);
  assert.equal(disruption(3, 2, 10), 23);
});

test('costsFor with keys: a pod without a live entry is 0 whatever keys it is said to hold; the ReplicaSet ranking then removes the pod whose keys weigh least', () => {
  const pods = [wpod('rooms'), wpod('plain'), wpod('silent'), wpod('gone', { terminating: true })];
  const connections = new Map([['rooms', 10], ['plain', 25], ['gone', 3]]);
  const keys = new Map([['rooms', 4], ['silent', 9]]);
  const costs = costsFor(pods, connections, keys, 10);
  assert.deepEqual(Object.fromEntries(costs), { rooms: 50, plain: 25, silent: 0 });
  const ranked = podsToDelete(pods.filter((p) => !p.terminating && p.name !== 'silent').map((p) => ({ ...p, deletionCost: costs.get(p.name)! })), 1, { now: NOW });
  assert.deepEqual(ranked.map((p) => p.name), ['plain'], 'fewer connections, but 4 rooms would move at once');
  const connectionsOnly = costsFor(pods, connections, keys, 0);
  assert.deepEqual(Object.fromEntries(connectionsOnly), { rooms: 10, plain: 25, silent: 0 }, 'SCALER_KEY_WEIGHT=0: connections alone');
});

test('changedCosts writes only pods whose annotation differs', () => {
  const pods = [wpod('a', { annotatedCost: 120 }), wpod('b', { annotatedCost: 5 }), wpod('c'), wpod('d', { terminating: true })];
  const costs = new Map([['a', 120], ['b', 0], ['c', 0], ['d', 3]]);
  assert.deepEqual(Object.fromEntries(changedCosts(pods, costs)), { b: 0, c: 0 });
});

test('leastLoadedThreshold: the k-th lowest cost (ties count as least-loaded)', () => {
  const costs = new Map([['a', 50], ['b', 500], ['c', 100], ['d', 50]]);
  assert.equal(leastLoadedThreshold(costs, 1), 50);
  assert.equal(leastLoadedThreshold(costs, 2), 50);
  assert.equal(leastLoadedThreshold(costs, 3), 100);
  assert.equal(leastLoadedThreshold(new Map(), 1), -1);
});

test('observeVictims: removed pods judged against the least-loaded threshold; waits, then times out', () => {
  const costs = new Map([['a', 50], ['b', 500], ['c', 100]]);
  const pending = { from: 3, to: 2, before: new Set(costs.keys()), costs, connections: costs, threshold: 50, deadline: 1000 };
  const all = [wpod('a'), wpod('b'), wpod('c')];
  assert.deepEqual(observeVictims(pending, all, 0), { victims: [], done: false, timedOut: false });
  const good = observeVictims(pending, [wpod('a', { terminating: true }), wpod('b'), wpod('c')], 10);
  assert.deepEqual(good, { victims: [{ name: 'a', cost: 50, connections: 50, honored: true }], done: true, timedOut: false });
  const bad = observeVictims(pending, [wpod('a'), wpod('c')], 10);
  assert.deepEqual(bad.victims, [{ name: 'b', cost: 500, connections: 500, honored: false }]);
  const late = observeVictims(pending, all, 1000);
  assert.equal(late.done, true);
  assert.equal(late.timedOut, true);
});

test('observeVictims with cordoned victims: honoured only when the removed pod is the cordoned one, whatever the costs', () => {
  const costs = new Map([['a', -2_147_483_648], ['b', 0], ['c', 100]]);
  const connections = new Map([['a', 7], ['b', 0], ['c', 100]]);
  const pending = { from: 3, to: 2, before: new Set(costs.keys()), costs, connections, threshold: 0, expected: new Set(['a']), deadline: 1000 };
  assert.deepEqual(observeVictims(pending, [wpod('a', { terminating: true }), wpod('b'), wpod('c')], 10).victims, [{ name: 'a', cost: -2_147_483_648, connections: 7, honored: true }]);
  assert.deepEqual(observeVictims(pending, [wpod('a'), wpod('c')], 10).victims, [{ name: 'b', cost: 0, connections: 0, honored: false }], 'the emptiest pod, but not the cordoned one');
});

test('podsRankedFirst: a NotReady victim with the lowest cost goes first, even beside another NotReady pod; an unscheduled or Pending pod would go before it', () => {
  const now = 10_000_000;
  const base = [wpod('v', { deletionCost: 500 }), wpod('x', { deletionCost: 0 }), wpod('y', { deletionCost: 10 })];
  assert.deepEqual(podsRankedFirst(base, ['v'], now), [], 'retired (simulated): v ranks first');
  assert.deepEqual(podsRankedFirst(base, ['v'], now, false).map((p) => p.name), ['x'], 'as they are: the cheapest Ready pod would go');
  const otherNotReady = [wpod('v', { ready: false, deletionCost: -2_147_483_648 }), wpod('x', { ready: false, deletionCost: 0 }), wpod('y')];
  assert.deepEqual(podsRankedFirst(otherNotReady, ['v'], now, false), [], 'another NotReady pod: the lowest cost decides');
  const justStarted = [wpod('v'), wpod('x'), wpod('new', { phase: 'Pending', ready: false, createdAt: now - 100 })];
  assert.deepEqual(podsRankedFirst(justStarted, ['v'], now).map((p) => p.name), ['new'], 'a Pending pod ranks before any Running one');
  assert.deepEqual(podsRankedFirst([wpod('v'), wpod('x'), wpod('u', { assigned: false })], ['v'], now).map((p) => p.name), ['u']);
});
