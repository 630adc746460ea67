/**
 * The scale-in protocol of DESIGN.md ("Scaler", "Cordon"): the victims are the cordoned pods. Just before the
 * scale call they report NotReady (a retire request; the node bounds it) and carry the lowest deletion cost,
 * the other pods their disruption (live connections, plus SCALER_KEY_WEIGHT per placement key they own; written
 * only where the value changed, only now); the scaler waits
 * until the pod watch shows all of it and the ReplicaSet ranking would take exactly the victims, scales, and
 * then checks which pods Kubernetes removed. NotReady ranks before any deletion cost, so the removal no
 * longer rests on the annotation, which is only a hint.
 */
import type { Logger } from 'pino';
import { INT32_MAX } from '../src/constants.js';
import { VICTIM_DELETION_COST } from './constants.js';
import { podsToDelete } from './ranking.js';
import type { ScalerMetrics } from './metrics.js';
import type { Workload, WorkloadPod } from './workload/workload.js';

/**
 * What removing a pod disrupts, in connections (README "Keys in the scaler"): each of its connections reconnects,
 * and each placement key it owns moves with all of its clients at once (the room re-forms elsewhere), so a key
 * weighs `keyWeight` (SCALER_KEY_WEIGHT) connections on top of its own clients.
 */
export function disruption(connections: number, keys: number, keyWeight: number): number {
  const c = Number.isFinite(connections) && connections > 0 ? connections : 0;
  const k = Number.isFinite(keys) && keys > 0 ? keys : 0;
  return c + keyWeight * k;
}

/** The annotation value for a pod with `connections` live connections and `keys` placement keys: an int32, never negative. */
export function deletionCostFor(connections: number, keys = 0, keyWeight = 0): number {
  const d = disruption(connections, keys, keyWeight);
  if (!Number.isFinite(d) || d <= 0) return 0;
  return Math.min(INT32_MAX, Math.floor(d));
}

/** Costs of the active pods: their disruption from the registry (connections, keys), 0 for a pod without a live entry. */
export function costsFor(pods: readonly WorkloadPod[], connections: ReadonlyMap<string, number>, keys: ReadonlyMap<string, number> = new Map(), keyWeight = 0): Map<string, number> {
  const costs = new Map<string, number>();
  for (const p of pods) if (!p.terminating) costs.set(p.name, connections.has(p.name) ? deletionCostFor(connections.get(p.name)!, keys.get(p.name) ?? 0, keyWeight) : 0);
  return costs;
}

/** Only the pods whose annotation differs from the cost (the rest need no write). */
export function changedCosts(pods: readonly WorkloadPod[], costs: ReadonlyMap<string, number>): Map<string, number> {
  const changed = new Map<string, number>();
  for (const p of pods) {
    const cost = costs.get(p.name);
    if (cost !== undefined && !p.terminating && p.annotatedCost !== cost) changed.set(p.name, cost);
  }
  return changed;
}

/** The cost of the k-th least-loaded pod: a victim at or below it was a least-loaded one (ties count). */
export function leastLoadedThreshold(costs: ReadonlyMap<string, number>, k: number): number {
  const sorted = [...costs.values()].sort((a, b) => a - b);
  if (sorted.length === 0 || k <= 0) return -1;
  return sorted[Math.min(k, sorted.length) - 1]!;
}

/** A scale-in whose removed pods are still to be observed. */
export interface PendingVictims {
  from: number;
  to: number;
  /** Active pods right before the scale. */
  before: ReadonlySet<string>;
  costs: ReadonlyMap<string, number>;
  /** Live connections at the scale call, by pod. */
  connections: ReadonlyMap<string, number>;
  threshold: number;
  /** The retired (cordoned) victims: a removed pod is honoured when it is one of them. Without, the cost threshold judges. */
  expected?: ReadonlySet<string>;
  deadline: number;
}

/** One removed pod and whether it was the one the scaler meant (or, without cordon, among the least-loaded). */
export interface Victim {
  name: string;
  cost: number;
  /** Its connections at the scale call. */
  connections: number;
  honored: boolean;
}

/** Which pods of `pending.before` are gone or terminating now; `done` once all were found or time ran out. */
export function observeVictims(pending: PendingVictims, pods: readonly WorkloadPod[], now: number): { victims: Victim[]; done: boolean; timedOut: boolean } {
  const active = new Set(pods.filter((p) => !p.terminating).map((p) => p.name));
  const victims: Victim[] = [];
  for (const name of pending.before) {
    if (active.has(name)) continue;
    const cost = pending.costs.get(name) ?? 0;
    const honored = pending.expected ? pending.expected.has(name) : cost <= pending.threshold;
    victims.push({ name, cost, connections: pending.connections.get(name) ?? 0, honored });
  }
  const expected = pending.from - pending.to;
  const timedOut = victims.length < expected && now >= pending.deadline;
  return { victims: victims.slice(0, expected), done: victims.length >= expected || timedOut, timedOut };
}

/** What the protocol needs around the workload. */
export interface ProtocolContext {
  workload: Workload;
  logger: Logger;
  metrics: ScalerMetrics;
  /** Checked before every write: a replica that lost the Lease stops at once. */
  stillLeader: () => boolean;
  /** The current leadership term's signal: aborts in-flight API calls, retries and waits the moment the Lease is lost. */
  leadership: () => AbortSignal;
  now: () => number;
  victimTimeoutMs: number;
  /** Longest wait for the workload to show the retiring victims NotReady. */
  retireTimeoutMs: number;
  /** Pause between the last confirmation and the scale call (the ReplicaSet controller's informer is a second watch). */
  settleMs: number;
  /** SCALER_KEY_WEIGHT: connections one placement key counts as in the deletion cost (0 when absent). */
  keyWeight?: number;
}

/** Retire requests on the victims' cordon marks (scaler/cordon.ts). */
export interface RetireSteps {
  /** Ask the victims to report NotReady. */
  retire(names: readonly string[]): Promise<void>;
  /** Withdraw the request (the scale-in did not happen): Ready again at once, still cordoned. */
  withdraw(names: readonly string[]): Promise<void>;
}

/** Scale with the two operator log lines. Returns false when the workload changed under us or leadership was lost. */
export async function scaleWithLogs(ctx: ProtocolContext, from: number, to: number): Promise<boolean> {
  if (!ctx.stillLeader()) return false;
  const name = ctx.workload.name;
  ctx.logger.info({ workload: name, from, to }, `Scaling Deployment ${name} from ${from} to ${to} replicas`);
  const ok = await ctx.workload.scale(from, to, ctx.leadership());
  if (!ok) {
    ctx.logger.warn({ workload: name, from, to }, `Deployment ${name} no longer has ${from} replicas; skipping this decision`);
    return false;
  }
  ctx.metrics.scaleOperations.inc({ direction: to > from ? 'out' : 'in' });
  ctx.logger.info({ workload: name, replicas: to }, `✓ Successfully scaled Deployment ${name} to ${to} replicas`);
  return true;
}

/** Result of one scale-in attempt. */
export interface ScaleInResult {
  scaled: boolean;
  written: number;
  costs: Map<string, number>;
  pending: PendingVictims | undefined;
  /** Why the protocol did not scale this time (retried next tick), undefined when it scaled or lost the Lease. */
  held?: string;
}

/** The pods the ReplicaSet would take first if the victims were NotReady with the lowest cost, when that is not exactly the victims. */
export function podsRankedFirst(pods: readonly WorkloadPod[], victims: readonly string[], now: number, asRetired = true): WorkloadPod[] {
  const wanted = new Set(victims);
  const active = pods.filter((p) => !p.terminating).map((p) => (asRetired && wanted.has(p.name) ? { ...p, ready: false, readySince: undefined, deletionCost: VICTIM_DELETION_COST } : p));
  const first = podsToDelete(active, victims.length, { now });
  return first.every((p) => wanted.has(p.name)) && first.length === wanted.size ? [] : first.filter((p) => !wanted.has(p.name));
}

const describePod = (p: WorkloadPod) => `${p.name} (${!p.assigned ? 'unscheduled' : p.phase !== 'Running' ? p.phase : !p.ready ? 'not ready' : `cost ${p.deletionCost}`})`;

/**
 * Run the protocol on `victims` (the cordoned pods, from − to of them): ranking check → retire (NotReady,
 * confirmed by the watch) → lowest cost on the victims, live counts elsewhere (changed-only writes, confirmed)
 * → ranking check on the watch's view → scale → pending victim check. Any step that fails withdraws the
 * retire request and holds this scale-in (the policy retries next tick). `pods` is the snapshot the decision
 * was made on; `connections` the live registry counts by pod name, `keys` the placement keys each pod owns.
 */
export async function runScaleIn(
  ctx: ProtocolContext,
  pods: readonly WorkloadPod[],
  connections: ReadonlyMap<string, number>,
  from: number,
  to: number,
  victims: readonly string[],
  steps: RetireSteps,
  keys: ReadonlyMap<string, number> = new Map(),
): Promise<ScaleInResult> {
  const costs = costsFor(pods, connections, keys, ctx.keyWeight);
  for (const v of victims) costs.set(v, VICTIM_DELETION_COST);
  const result: ScaleInResult = { scaled: false, written: 0, costs, pending: undefined };
  if (!ctx.stillLeader()) return result;
  const hold = async (why: string): Promise<ScaleInResult> => {
    await steps.withdraw(victims);
    ctx.logger.warn({ victims, from, to }, `scale-in ${from} → ${to} held: ${why}; retrying next interval`);
    result.held = why;
    return result;
  };
  if (victims.length !== from - to) return hold(`${victims.length} cordoned pod(s) for ${from - to} removal(s)`);
  // Pods that rank before any ready pod whatever its cost (unscheduled, Pending) would go first: wait for them.
  const before = podsRankedFirst(pods, victims, ctx.now());
  if (before.length > 0) return hold(`${before.map(describePod).join(', ')} would be removed before the cordoned pod(s)`);

  // A victim without a live registry entry cannot hear the request: it goes by its lowest cost alone, checked below.
  const reachable = victims.filter((v) => connections.has(v));
  if (reachable.length > 0) {
    await steps.retire(reachable);
    if (!(await ctx.workload.awaitNotReady(reachable, ctx.retireTimeoutMs))) {
      return hold(`the cordoned pod(s) ${reachable.join(', ')} were not seen NotReady within ${ctx.retireTimeoutMs} ms`);
    }
  }
  if (!ctx.stillLeader()) return result;
  const changed = changedCosts(ctx.workload.listPods(), costs);
  if (changed.size > 0) {
    result.written = await ctx.workload.setDeletionCosts(changed, ctx.leadership());
    ctx.metrics.deletionCostPatches.inc(result.written);
    ctx.logger.info({ written: result.written, unchanged: costs.size - changed.size, costs: Object.fromEntries(costs), victims }, `wrote pod-deletion-cost on ${result.written} pod(s) before scale-in (the cordoned victim(s) ${VICTIM_DELETION_COST})`);
  }
  if (ctx.settleMs > 0) await new Promise((r) => setTimeout(r, ctx.settleMs));
  // The watch's own view now: another pod may have gone NotReady or appeared meanwhile.
  const first = podsRankedFirst(ctx.workload.listPods(), victims, ctx.now(), false);
  if (first.length > 0) return hold(`${first.map(describePod).join(', ')} would be removed instead of the cordoned pod(s)`);

  const threshold = leastLoadedThreshold(costsFor(pods, connections, keys, ctx.keyWeight), from - to);
  const active = new Set(costs.keys());
  result.scaled = await scaleWithLogs(ctx, from, to);
  if (result.scaled) {
    result.pending = { from, to, before: active, costs, connections: new Map(connections), threshold, expected: new Set(victims), deadline: ctx.now() + ctx.victimTimeoutMs };
  } else await steps.withdraw(victims);
  return result;
}
