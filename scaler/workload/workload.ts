/** The workload interface the scaler drives (`kubernetes` or `local`); the factory is in index.ts. */
import type { WorkloadKind } from '../../src/config.js';
import type { RoleDeps } from '../../src/role.js';
import type { RankablePod } from '../ranking.js';
import type { ScalerMetrics } from '../metrics.js';

/** One pod of the workload, in the terms of the ReplicaSet ranking plus what the scaler needs. */
export interface WorkloadPod extends RankablePod {
  uid: string;
  /** metadata.deletionTimestamp is set (or the local pod is draining out). */
  terminating: boolean;
  /** The deletion-cost annotation as last written, undefined when the pod has none. */
  annotatedCost: number | undefined;
  /** The owning ReplicaSet (rollout detection), undefined when unknown. */
  owner: string | undefined;
}

/** The workload as observed now. */
export interface WorkloadSnapshot {
  /** spec.replicas of the scale subresource. */
  replicas: number;
  /** Every pod of the workload, terminating ones included (flagged). */
  pods: WorkloadPod[];
}

/** What a scaler drives: observe, annotate, scale. */
export interface Workload {
  readonly kind: WorkloadKind;
  /** The Deployment name (SOCKET_WORKLOAD_NAME). */
  readonly name: string;
  /** Connect (Kubernetes: read the Deployment, list and watch its pods; local: start min replicas). Idempotent. */
  start(): Promise<void>;
  /** Read spec.replicas and the pods (from the watch cache for Kubernetes). */
  observe(): Promise<WorkloadSnapshot>;
  /** The cached pods, no I/O. */
  listPods(): WorkloadPod[];
  /**
   * Write the deletion cost of the given pods (name → cost) and resolve once the pod watch shows every
   * written version. Resolves to the number of writes made. Each write is conditional on the pod's version
   * as last seen, and `signal` (leadership) aborts retries and the wait: rejects with its reason.
   */
  setDeletionCosts(costs: ReadonlyMap<string, number>, signal?: AbortSignal): Promise<number>;
  /** Resolve true once every named pod that is still active shows Ready=false, false after `timeoutMs`. */
  awaitNotReady(names: readonly string[], timeoutMs: number): Promise<boolean>;
  /**
   * Set spec.replicas from `from` to `to`. Resolves false (and changes nothing) when the workload no
   * longer has `from` replicas: someone else scaled it, so the decision is stale. `signal` as above.
   */
  scale(from: number, to: number, signal?: AbortSignal): Promise<boolean>;
  close(): Promise<void>;
}

/** Dependencies of a workload backend. */
export interface WorkloadDeps extends RoleDeps {
  metrics?: ScalerMetrics;
}

/** True when pods of more than one ReplicaSet are active: a rollout is in progress. */
export function rolloutInProgress(pods: readonly WorkloadPod[]): boolean {
  const owners = new Set<string>();
  for (const p of pods) if (!p.terminating && p.owner !== undefined) owners.add(p.owner);
  return owners.size > 1;
}
