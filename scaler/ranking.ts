/**
 * The ReplicaSet controller's scale-down ranking (`ActivePodsWithRanks.Less` in kubernetes/pkg/controller),
 * shared by the local backend, the fake API server and the benchmark:
 * unassigned < pending < unknown < running; not ready < ready; lower pod-deletion-cost; more co-located
 * pods on the node; more recently ready; more restarts; newer. With LogarithmicScaleDown (on by default
 * since Kubernetes 1.22) ready and creation times compare in log2 buckets of their age, ties broken by UID.
 */
import { INT32_MAX, INT32_MIN } from '../src/constants.js';

/** Pod phases as the API reports them. */
export type PodPhase = 'Pending' | 'Running' | 'Unknown' | 'Succeeded' | 'Failed';

/** What the ranking looks at. Times are ms since the epoch; 0 or undefined = unknown ("zero time"). */
export interface RankablePod {
  name: string;
  /** Tie-breaker of the logarithmic comparisons (the name when absent). */
  uid?: string;
  /** spec.nodeName is set. */
  assigned: boolean;
  phase: PodPhase;
  ready: boolean;
  /** lastTransitionTime of the Ready condition. */
  readySince?: number | undefined;
  /** Parsed pod-deletion-cost annotation (0 when absent or invalid, as Kubernetes does). */
  deletionCost: number;
  /** Ready pods of the same ReplicaSet on this pod's node (the controller's "rank"); more = removed first. */
  colocated?: number;
  /** Highest restart count among the pod's containers. */
  restarts: number;
  createdAt: number;
}

/** Ranking options. `logarithmic` mirrors the LogarithmicScaleDown feature gate (default on). */
export interface RankingOptions {
  now: number;
  logarithmic?: boolean;
}

const PHASE_ORDINAL: Record<PodPhase, number> = { Pending: 0, Unknown: 1, Running: 2, Succeeded: 0, Failed: 0 };
const NS_PER_MS = 1e6;

/** Parse the annotation the way Kubernetes does: an int32 in decimal, anything else counts as 0. */
export function parseDeletionCost(value: string | undefined): number {
  if (value === undefined || !/^[+-]?\d+$/.test(value.trim())) return 0;
  const n = Number(value.trim());
  return n >= INT32_MIN && n <= INT32_MAX ? n : 0;
}

const zero = (t: number | undefined): boolean => t === undefined || t === 0;

/** Kubernetes afterOrZero: a zero time sorts first, otherwise the later time sorts first. */
function afterOrZero(a: number | undefined, b: number | undefined): number {
  if (zero(a) || zero(b)) return zero(a) ? -1 : 1;
  return (a as number) > (b as number) ? -1 : 1;
}

/** log2 bucket of the age in nanoseconds, -1 for a time in the future (logarithmicRankDiff). */
function logBucket(t: number, now: number): number {
  const d = (now - t) * NS_PER_MS;
  return d > 0 ? Math.floor(Math.log2(d)) : -1;
}

function compareTimes(a: number | undefined, b: number | undefined, pa: RankablePod, pb: RankablePod, opts: RankingOptions): number {
  if (!(opts.logarithmic ?? true) || zero(opts.now) || zero(a) || zero(b)) return afterOrZero(a, b);
  const diff = logBucket(a as number, opts.now) - logBucket(b as number, opts.now);
  if (diff !== 0) return diff < 0 ? -1 : 1;
  const ua = pa.uid ?? pa.name;
  const ub = pb.uid ?? pb.name;
  return ua < ub ? -1 : ua > ub ? 1 : 0;
}

/** Negative when `a` is removed before `b` (`Less(a, b)`), positive when after, 0 when the controller cannot tell. */
export function compareForDeletion(a: RankablePod, b: RankablePod, opts: RankingOptions): number {
  // 1. Unassigned < assigned.
  if (a.assigned !== b.assigned) return a.assigned ? 1 : -1;
  // 2. Pending < Unknown < Running.
  const phase = PHASE_ORDINAL[a.phase] - PHASE_ORDINAL[b.phase];
  if (phase !== 0) return phase;
  // 3. Not ready < ready.
  if (a.ready !== b.ready) return a.ready ? 1 : -1;
  // 4. Lower pod-deletion-cost < higher.
  if (a.deletionCost !== b.deletionCost) return a.deletionCost < b.deletionCost ? -1 : 1;
  // 5. Doubled up (more ready siblings on the same node) < not doubled up.
  const ra = a.colocated ?? 0;
  const rb = b.colocated ?? 0;
  if (ra !== rb) return ra > rb ? -1 : 1;
  // 6. Both ready: ready more recently < ready longer.
  if (a.ready && b.ready && (a.readySince ?? 0) !== (b.readySince ?? 0)) {
    const c = compareTimes(a.readySince, b.readySince, a, b, opts);
    if (c !== 0) return c;
  }
  // 7. More container restarts < fewer.
  if (a.restarts !== b.restarts) return a.restarts > b.restarts ? -1 : 1;
  // 8. Newer < older (zero creation time first).
  if (a.createdAt !== b.createdAt) return compareTimes(a.createdAt, b.createdAt, a, b, opts);
  return 0;
}

/** The pods in the order the ReplicaSet controller would delete them (first = removed first). Stable. */
export function rankForDeletion<T extends RankablePod>(pods: readonly T[], opts: RankingOptions): T[] {
  return pods
    .map((pod, i) => ({ pod, i }))
    .sort((x, y) => compareForDeletion(x.pod, y.pod, opts) || x.i - y.i)
    .map((x) => x.pod);
}

/** The `count` pods a ReplicaSet scaled down by `count` removes (all of them when count ≥ pods). */
export function podsToDelete<T extends RankablePod>(pods: readonly T[], count: number, opts: RankingOptions): T[] {
  if (count <= 0) return [];
  if (count >= pods.length) return [...pods];
  return rankForDeletion(pods, opts).slice(0, count);
}
