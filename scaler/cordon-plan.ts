/**
 * The pure cordon decision of DESIGN "Cordon": which pods should carry the cordon mark after this tick.
 * When the policy first sees desired < current it cordons every pod the coming scale-ins will remove (current −
 * max(desired, min), the least disruptive: connections plus SCALER_KEY_WEIGHT per placement key, ties by fewer keys,
 * fewer connections, then name), so that all of them drain during the window even when
 * SCALE_IN_MAX_STEP removes them one tick after another; keeps them while desired stays low, re-picks when one
 * dies or another pod becomes clearly lighter, uncordons the heaviest when fewer are needed and everything once
 * desired reaches current again. A scale-in's victims are the lightest of the cordoned pods. Table-tested.
 */
import { CORDON_REPICK_MIN_GAP, CORDON_REPICK_RATIO } from './constants.js';
import { disruption } from './deletion-cost.js';
import type { PolicyConfig, PolicyDecision } from './policy.js';

/** A pod that may be cordoned: active, with a live registry entry, not draining. */
export interface CordonCandidate {
  name: string;
  connections: number;
  /** Placement keys it owns (0 when absent): a cordoned pod keeps them until their clients leave. */
  keys?: number;
  /** Carries the mark now (as the registry says). */
  cordoned: boolean;
}

/** The plan's part of the configuration: SCALER_KEY_WEIGHT is 0 when absent (connections alone). */
type PlanConfig = Pick<PolicyConfig, 'minReplicas'> & Partial<Pick<PolicyConfig, 'keyWeight'>>;

/** What to change this tick. */
export interface CordonPlan {
  /** Every pod that should be cordoned after this tick (lightest first). */
  cordoned: string[];
  /** At a scale-in: the pods it removes (the lightest cordoned ones); empty otherwise. */
  victims: string[];
  /** Newly cordoned. */
  add: string[];
  /** To uncordon (picked no more, or gone). */
  remove: string[];
}

/** How many pods the scale-ins that the decision foresees would remove in all: never below SOCKET_MIN_REPLICAS or desired. */
export function podsToCordon(decision: Pick<PolicyDecision, 'action' | 'desired' | 'replicas'>, current: number, cfg: Pick<PolicyConfig, 'minReplicas'>): number {
  const now = decision.action === 'scale-in' ? Math.max(0, current - decision.replicas) : 0;
  if (decision.action === 'scale-out' || (decision.desired >= current && now === 0)) return 0;
  return Math.max(now, current - Math.max(decision.desired, cfg.minReplicas));
}

/** A candidate's disruption: its connections plus `keyWeight` per key (scaler/deletion-cost.ts). */
const load = (c: CordonCandidate, keyWeight: number) => disruption(c.connections, c.keys ?? 0, keyWeight);

/** Lightest first: lower disruption, then fewer keys (fewer rooms to move), then fewer connections, then the name. */
const byLoad = (keyWeight: number) => (a: CordonCandidate, b: CordonCandidate) =>
  load(a, keyWeight) - load(b, keyWeight) || (a.keys ?? 0) - (b.keys ?? 0) || a.connections - b.connections || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** True when `other` is lighter enough than the cordoned `pod` (in disruption) to be worth the lost drain progress. */
export function clearlyLighter(other: CordonCandidate, pod: CordonCandidate, keyWeight = 0): boolean {
  const o = load(other, keyWeight);
  const p = load(pod, keyWeight);
  return o <= p * CORDON_REPICK_RATIO && p - o >= CORDON_REPICK_MIN_GAP;
}

/**
 * Plan the cordon marks. `markedNames` are every pod the registry shows cordoned (candidates or not: a mark on
 * a pod that died or drains is removed). Missing data (a registry hold) keeps the marks as they are.
 */
export function planCordon(
  decision: Pick<PolicyDecision, 'action' | 'reason' | 'desired' | 'replicas'>,
  current: number,
  candidates: readonly CordonCandidate[],
  cfg: PlanConfig,
  markedNames: readonly string[] = candidates.filter((c) => c.cordoned).map((c) => c.name),
): CordonPlan {
  if (decision.reason === 'registry-unavailable' || decision.reason === 'registry-stale') {
    return { cordoned: [...markedNames], victims: [], add: [], remove: [] };
  }
  const weight = cfg.keyWeight ?? 0;
  const order = byLoad(weight);
  const k = Math.min(podsToCordon(decision, current, cfg), candidates.length);
  const sorted = [...candidates].sort(order);
  const kept = sorted.filter((c) => c.cordoned).slice(0, k);
  const free = sorted.filter((c) => !kept.includes(c));
  // Swap a kept pod for a clearly lighter free one, heaviest kept first.
  for (let i = kept.length - 1; i >= 0; i--) {
    const lightest = free[0];
    if (lightest && clearlyLighter(lightest, kept[i]!, weight)) {
      free.shift();
      free.push(kept[i]!);
      free.sort(order);
      kept[i] = lightest;
    }
  }
  while (kept.length < k && free.length > 0) kept.push(free.shift()!);
  kept.sort(order);
  const names = kept.map((c) => c.name);
  const now = new Set(names);
  const was = new Set(markedNames);
  const victims = decision.action === 'scale-in' ? names.slice(0, Math.max(0, current - decision.replicas)) : [];
  return { cordoned: names, victims, add: names.filter((n) => !was.has(n)), remove: markedNames.filter((n) => !now.has(n)) };
}
