/**
 * `/ws/assign` policy (GATEWAY_ASSIGN_STRATEGY). Both strategies skip draining and cordoned pods: a
 * cordoned pod is about to be removed and never counts as room, though pinned connects to it still work.
 *   spread  the least-loaded pod, picked at random among pods whose load is near the minimum
 *   pack    the fullest pod still below SOCKET_TARGET_CONNECTIONS (random among near-equal ones), so that
 *           falling load leaves the emptiest pods to drain by themselves; when every pod is at the target,
 *           the least-loaded one (spread), since the scaler is adding pods by then
 * Load = the pod's last heartbeat connection count + the assignments this gateway handed out since that
 * heartbeat, so a burst spreads (or fills) as intended instead of piling onto the pod that looked best
 * when the burst began.
 */
import type { PodRecord } from '../src/registry/registry.js';

/** Pods within max(ABS, RATIO × the best load) of the best count as near-equal. */
export const NEAR_EQUAL_ABS = 2;
export const NEAR_EQUAL_RATIO = 0.05;
/** Counts of pods no longer listed are pruned once the map holds this many more entries than pods. */
const PRUNE_SLACK = 16;

/** GATEWAY_ASSIGN_STRATEGY. */
export type AssignStrategy = 'spread' | 'pack';

/** Picks pods for new clients. */
export interface Assigner {
  /** The pod to hand out (and count, unless `count` is false: HEAD), or undefined when no live pod is free of draining and cordon. */
  pick(pods: readonly PodRecord[], count?: boolean): PodRecord | undefined;
  /** Count one assignment handed out to `pod` (what `pick` does unless told not to; a keyed assign counts its owner). */
  count(pod: PodRecord, pods: readonly PodRecord[]): void;
  /** Current load estimate of a pod (heartbeat connections + handed out since). */
  load(pod: PodRecord): number;
}

/** Options of createAssigner. */
export interface AssignerOptions {
  strategy?: AssignStrategy;
  /** SOCKET_TARGET_CONNECTIONS: the fill level `pack` stops at. */
  targetConnections?: number;
  /** Injectable for tests and the benchmark. */
  random?: () => number;
}

interface HandedOut {
  /** The heartbeat (`updatedAt`) the count is relative to. */
  since: number;
  count: number;
}

/** True when a new client may go to `p`. */
export const takesNewClients = (p: PodRecord): boolean => !p.draining && p.cordoned !== true;

/** Create an assigner (default: spread). */
export function createAssigner(opts: AssignerOptions = {}): Assigner {
  const random = opts.random ?? Math.random;
  const strategy = opts.strategy ?? 'spread';
  const target = opts.targetConnections ?? Infinity;
  const handed = new Map<string, HandedOut>();

  function load(p: PodRecord): number {
    const h = handed.get(p.podId);
    return p.connections + (h && h.since === p.updatedAt ? h.count : 0);
  }

  const margin = (l: number) => Math.max(NEAR_EQUAL_ABS, NEAR_EQUAL_RATIO * l);

  /** The near-equal best pods: the least loaded (spread) or the fullest below the target (pack). */
  function candidates(pods: readonly PodRecord[]): PodRecord[] {
    let min = Infinity;
    let max = -Infinity;
    for (const p of pods) {
      if (!takesNewClients(p)) continue;
      const l = load(p);
      if (l < min) min = l;
      if (l < target && l > max) max = l;
    }
    const near: PodRecord[] = [];
    if (min === Infinity) return near;
    if (strategy === 'pack' && max > -Infinity) {
      const floor = max - margin(max);
      for (const p of pods) if (takesNewClients(p) && load(p) < target && load(p) >= floor) near.push(p);
      return near;
    }
    const limit = min + margin(min);
    for (const p of pods) if (takesNewClients(p) && load(p) <= limit) near.push(p);
    return near;
  }

  function count(chosen: PodRecord, pods: readonly PodRecord[]): void {
    const h = handed.get(chosen.podId);
    if (h && h.since === chosen.updatedAt) h.count++;
    else handed.set(chosen.podId, { since: chosen.updatedAt, count: 1 });
    if (handed.size > pods.length + PRUNE_SLACK) {
      const ids = new Set(pods.map((p) => p.podId));
      for (const id of handed.keys()) if (!ids.has(id)) handed.delete(id);
    }
  }

  return {
    load,
    count,
    pick(pods, counted = true) {
      const near = candidates(pods);
      if (near.length === 0) return undefined;
      const chosen = near[Math.floor(random() * near.length) % near.length]!;
      if (counted) count(chosen, pods);
      return chosen;
    },
  };
}
