/**
 * `/ws/assign` policy: the least-loaded live pod that is not draining, picked at random among pods
 * whose load is near the minimum. Load = the pod's last heartbeat connection count + the assignments
 * this gateway handed out since that heartbeat, so a burst spreads instead of piling onto the pod that
 * looked emptiest when the burst began.
 */
import type { PodRecord } from '../src/registry/registry.js';

/** Pods within max(ABS, RATIO × min load) of the least loaded count as near-equal. */
export const NEAR_EQUAL_ABS = 2;
export const NEAR_EQUAL_RATIO = 0.05;
/** Counts of pods no longer listed are pruned once the map holds this many more entries than pods. */
const PRUNE_SLACK = 16;

/** Picks pods for new clients. */
export interface Assigner {
  /** The pod to hand out (and count), or undefined when no live pod is free of draining. */
  pick(pods: readonly PodRecord[]): PodRecord | undefined;
  /** Current load estimate of a pod (heartbeat connections + handed out since). */
  load(pod: PodRecord): number;
}

interface HandedOut {
  /** The heartbeat (`updatedAt`) the count is relative to. */
  since: number;
  count: number;
}

/** Create an assigner; `random` is injectable for tests. */
export function createAssigner(opts: { random?: () => number } = {}): Assigner {
  const random = opts.random ?? Math.random;
  const handed = new Map<string, HandedOut>();

  function load(p: PodRecord): number {
    const h = handed.get(p.podId);
    return p.connections + (h && h.since === p.updatedAt ? h.count : 0);
  }

  return {
    load,
    pick(pods) {
      let min = Infinity;
      let free = 0;
      for (const p of pods) {
        if (p.draining) continue;
        free++;
        const l = load(p);
        if (l < min) min = l;
      }
      if (free === 0) return undefined;
      const limit = min + Math.max(NEAR_EQUAL_ABS, NEAR_EQUAL_RATIO * min);
      const near: PodRecord[] = [];
      for (const p of pods) if (!p.draining && load(p) <= limit) near.push(p);
      const chosen = near[Math.floor(random() * near.length) % near.length]!;
      const h = handed.get(chosen.podId);
      if (h && h.since === chosen.updatedAt) h.count++;
      else handed.set(chosen.podId, { since: chosen.updatedAt, count: 1 });
      if (handed.size > pods.length + PRUNE_SLACK) {
        const ids = new Set(pods.map((p) => p.podId));
        for (const id of handed.keys()) if (!ids.has(id)) handed.delete(id);
      }
      return chosen;
    },
  };
}
