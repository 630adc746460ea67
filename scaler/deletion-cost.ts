/**
 * The scale-in protocol of DESIGN.md: write pod-deletion-cost = live connections on the pods whose value
 * changed (only now, just before a scale-down), wait until the watch shows them, scale, then check which
 * pods Kubernetes removed, since the annotation is only a hint.
 */
import type { Logger } from 'pino';
import { INT32_MAX } from '../src/constants.js';
import type { ScalerMetrics } from './metrics.js';
import type { Workload, WorkloadPod } from './workload/workload.js';

/** The annotation value for a pod with `connections` live connections: an int32, never negative. */
export function deletionCostFor(connections: number): number {
  if (!Number.isFinite(connections) || connections <= 0) return 0;
  return Math.min(INT32_MAX, Math.floor(connections));
}

/** Costs of the active pods: live connections from the registry, 0 for a pod without a live entry. */
export function costsFor(pods: readonly WorkloadPod[], connections: ReadonlyMap<string, number>): Map<string, number> {
  const costs = new Map<string, number>();
  for (const p of pods) if (!p.terminating) costs.set(p.name, deletionCostFor(connections.get(p.name) ?? 0));
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
  threshold: number;
  deadline: number;
}

/** One removed pod and whether it was among the least-loaded. */
export interface Victim {
  name: string;
  cost: number;
  honored: boolean;
}

/** Which pods of `pending.before` are gone or terminating now; `done` once all were found or time ran out. */
export function observeVictims(pending: PendingVictims, pods: readonly WorkloadPod[], now: number): { victims: Victim[]; done: boolean; timedOut: boolean } {
  const active = new Set(pods.filter((p) => !p.terminating).map((p) => p.name));
  const victims: Victim[] = [];
  for (const name of pending.before) {
    if (active.has(name)) continue;
    const cost = pending.costs.get(name) ?? 0;
    victims.push({ name, cost, honored: cost <= pending.threshold });
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
}

/**
 * Run the protocol: costs → changed-only writes (confirmed by the watch) → scale → pending victim check.
 * `pods` is the snapshot the decision was made on; `connections` the live registry counts by pod name.
 */
export async function runScaleIn(ctx: ProtocolContext, pods: readonly WorkloadPod[], connections: ReadonlyMap<string, number>, from: number, to: number): Promise<ScaleInResult> {
  const costs = costsFor(pods, connections);
  const changed = changedCosts(pods, costs);
  const result: ScaleInResult = { scaled: false, written: 0, costs, pending: undefined };
  if (!ctx.stillLeader()) return result;
  if (changed.size > 0) {
    result.written = await ctx.workload.setDeletionCosts(changed, ctx.leadership());
    ctx.metrics.deletionCostPatches.inc(result.written);
    ctx.logger.info({ written: result.written, unchanged: costs.size - changed.size, costs: Object.fromEntries(costs) }, `wrote pod-deletion-cost on ${result.written} pod(s) before scale-in`);
  }
  const threshold = leastLoadedThreshold(costs, from - to);
  const before = new Set(costs.keys());
  result.scaled = await scaleWithLogs(ctx, from, to);
  if (result.scaled) result.pending = { from, to, before, costs, threshold, deadline: ctx.now() + ctx.victimTimeoutMs };
  return result;
}
