/**
 * The scaling policy: a pure function from what the scaler sees (registry + workload) to a decision.
 * All I/O lives in the workload backends and scaler/index.ts; this file is tested by tables.
 */
import { SCALE_OUT_MAX_FACTOR, SCALE_OUT_MIN_STEP, STALE_VIEW_MIN_PODS } from './constants.js';

/** The bounds and targets of SOCKET_* / SCALE_IN_* configuration. */
export interface PolicyConfig {
  minReplicas: number;
  maxReplicas: number;
  /** Connections per pod the scaler aims for. */
  targetConnections: number;
  scaleInStabilizationMs: number;
  scaleInMaxStep: number;
  /** SCALER_KEY_WEIGHT: connections one placement key counts as when choosing and ranking scale-in victims (0 when absent). */
  keyWeight?: number;
}

/** How the registry looked this tick. */
export type RegistryHealth = 'ok' | 'unavailable' | 'stale';

/** Pods of the workload (terminating ones excluded), classified by their registry entry. */
export interface PodCounts {
  /** A live, non-draining registry entry. */
  live: number;
  /** Not Ready yet and never heartbeated: capacity on the way. */
  booting: number;
  /** Ready, no heartbeat seen yet, within the boot grace: capacity on the way, but its load is unknown. */
  unreported: number;
  /** Had (or should have had) a heartbeat that is gone: not capacity. */
  dead: number;
  /** Heartbeats as draining without a deletionTimestamp (drained by hand): reporting, but out of service, so not capacity. */
  drained: number;
  /** Draining (registry flag) or terminating: leaving, not capacity. */
  draining: number;
}

/** Everything the policy looks at. */
export interface PolicyInput {
  now: number;
  /** spec.replicas of the workload. */
  currentReplicas: number;
  registry: RegistryHealth;
  /** Sum of connections over live registry entries. */
  totalConnections: number;
  pods: PodCounts;
  /** Two ReplicaSets have pods: deletion costs would only compare within one of them. */
  rolloutInProgress: boolean;
}

/** What the policy remembers between ticks (returned in every decision; start with `initialPolicyState()`). */
export interface PolicyState {
  /** Since when the recommendation has stayed below the current replicas. */
  lowSince: number | undefined;
  /** Recommendations inside the stabilization window (oldest first). */
  window: Array<{ at: number; replicas: number }>;
}

export type PolicyAction = 'scale-out' | 'scale-in' | 'hold' | 'steady';

/** Why. Holds say what blocks a change; the others say what drives it. */
export type PolicyReason =
  | 'load-increase'
  | 'replace-dead-pods'
  | 'replace-drained-pods'
  | 'below-min'
  | 'load-decrease'
  | 'above-max'
  | 'steady'
  | 'at-max'
  | 'stabilizing'
  | 'registry-unavailable'
  | 'registry-stale'
  | 'rollout-in-progress'
  | 'drain-in-progress'
  | 'awaiting-heartbeats';

/** The decision of one tick. */
export interface PolicyDecision {
  action: PolicyAction;
  reason: PolicyReason;
  /** clamp(ceil(total / target), min, max): the DESIGN's "desired". */
  desired: number;
  /** Replica count to set now (== currentReplicas unless scaling). */
  replicas: number;
  /** One line for logs and the status page. */
  message: string;
  state: PolicyState;
}

/** A fresh policy memory. */
export function initialPolicyState(): PolicyState {
  return { lowSince: undefined, window: [] };
}

/** clamp(ceil(total / target), min, max). */
export function desiredReplicas(totalConnections: number, cfg: Pick<PolicyConfig, 'minReplicas' | 'maxReplicas' | 'targetConnections'>): number {
  const raw = Math.ceil(Math.max(0, totalConnections) / cfg.targetConnections);
  return Math.min(cfg.maxReplicas, Math.max(cfg.minReplicas, raw));
}

/** The most replicas one scale-out may reach from `current`: doubling or +4, whichever is more. */
export function scaleOutLimit(current: number): number {
  return Math.max(current * SCALE_OUT_MAX_FACTOR, current + SCALE_OUT_MIN_STEP);
}

/** The pods that are not capacity, by why: lost heartbeat, or drained by hand. */
function outOfService(pods: PodCounts): string {
  const parts: string[] = [];
  if (pods.dead > 0) parts.push(`${pods.dead} pod(s) without a live heartbeat`);
  if (pods.drained > 0) parts.push(`${pods.drained} pod(s) drained by hand`);
  return parts.join(', ');
}

const secs = (ms: number) => `${Math.round(ms / 100) / 10}s`;

/** Decide one tick. Pure: same input and state, same decision. */
export function decide(input: PolicyInput, cfg: PolicyConfig, prev: PolicyState): PolicyDecision {
  const { now, currentReplicas: current, pods } = input;
  const out = (action: PolicyAction, reason: PolicyReason, desired: number, replicas: number, message: string, state: PolicyState): PolicyDecision => ({
    action,
    reason,
    desired,
    replicas,
    message,
    state,
  });

  // Missing data never moves the replica count, and a scale-in needs a fresh, full window afterwards.
  if (input.registry !== 'ok') {
    const why = input.registry === 'unavailable' ? 'the registry is unreachable' : 'the registry view is stale (pods without a live heartbeat)';
    return out('hold', input.registry === 'unavailable' ? 'registry-unavailable' : 'registry-stale', current, current, `holding at ${current} replicas: ${why}`, initialPolicyState());
  }

  // No pod reporting at all, or most of a fleet of at least STALE_VIEW_MIN_PODS without a live heartbeat: the
  // heartbeat pipeline is broken (or not up yet), not the pods. In a smaller fleet a silent pod is just dead and
  // gets replaced, so one wedged pod cannot freeze scaling. Pods still starting do not count against the view;
  // pods drained by hand do report.
  const reporting = pods.live + pods.drained;
  const silent = pods.dead + pods.unreported;
  const fleet = reporting + silent;
  if (reporting === 0 && silent > 0) {
    return out('hold', 'registry-stale', current, current, `holding at ${current} replicas: none of ${silent} pod(s) has a live heartbeat; the registry view is stale`, initialPolicyState());
  }
  if (fleet >= STALE_VIEW_MIN_PODS && pods.dead * 2 > fleet) {
    return out('hold', 'registry-stale', current, current, `holding at ${current} replicas: ${pods.dead} of ${fleet} pods lost their heartbeat, ${reporting} report; the registry view is stale`, initialPolicyState());
  }

  const desired = desiredReplicas(input.totalConnections, cfg);
  const window = [...prev.window.filter((r) => r.at > now - cfg.scaleInStabilizationMs), { at: now, replicas: desired }];
  const capacity = pods.live + pods.booting + pods.unreported;

  // Scale out at once: to the desired count, plus replacements for pods that stopped heartbeating, bounded per step.
  if (current < cfg.minReplicas || desired > current || desired > capacity) {
    let target = Math.max(desired, current + Math.max(0, desired - capacity));
    target = Math.min(target, cfg.maxReplicas, scaleOutLimit(current));
    target = Math.max(target, cfg.minReplicas);
    if (target > current) {
      const reason: PolicyReason = current < cfg.minReplicas ? 'below-min' : desired > current ? 'load-increase' : pods.dead > 0 ? 'replace-dead-pods' : 'replace-drained-pods';
      const detail =
        reason === 'below-min'
          ? `below SOCKET_MIN_REPLICAS=${cfg.minReplicas}`
          : reason === 'load-increase'
            ? `${input.totalConnections} connections need ${desired} pods at ${cfg.targetConnections} per pod`
            : `${outOfService(pods)}; ${capacity} of ${desired} needed are live or starting`;
      return out('scale-out', reason, desired, target, `scale out ${current} → ${target}: ${detail}`, { lowSince: undefined, window });
    }
    if (desired > current || desired > capacity) {
      return out('steady', 'at-max', desired, current, `at SOCKET_MAX_REPLICAS=${cfg.maxReplicas}: ${input.totalConnections} connections would need more pods`, { lowSince: undefined, window });
    }
  }

  let lowSince = prev.lowSince;
  const prevState = (): PolicyState => ({ lowSince, window });
  const scaleInBlocked = (target: number): PolicyDecision | undefined => {
    if (input.rolloutInProgress) {
      return out('hold', 'rollout-in-progress', desired, current, `scale-in to ${target} held: a rollout is in progress (deletion costs only compare within one ReplicaSet)`, prevState());
    }
    if (pods.draining > 0) {
      return out('hold', 'drain-in-progress', desired, current, `scale-in to ${target} held: ${pods.draining} pod(s) still draining`, prevState());
    }
    if (pods.unreported > 0) {
      return out('hold', 'awaiting-heartbeats', desired, current, `scale-in to ${target} held: ${pods.unreported} Ready pod(s) have not reported their connections yet`, prevState());
    }
    return undefined;
  };

  // Above the (possibly lowered) maximum: step down without waiting for the window.
  if (current > cfg.maxReplicas) {
    lowSince ??= now;
    const target = Math.max(cfg.maxReplicas, current - cfg.scaleInMaxStep);
    return scaleInBlocked(target) ?? out('scale-in', 'above-max', desired, target, `scale in ${current} → ${target}: above SOCKET_MAX_REPLICAS=${cfg.maxReplicas}`, prevState());
  }

  if (desired < current) {
    lowSince ??= now;
    const lowFor = now - lowSince;
    if (lowFor < cfg.scaleInStabilizationMs) {
      return out('hold', 'stabilizing', desired, current, `desired ${desired} < ${current} for ${secs(lowFor)} of ${secs(cfg.scaleInStabilizationMs)}`, prevState());
    }
    // The highest recommendation of the window, so a dip at its end does not scale too far.
    const windowMax = Math.max(...window.map((r) => r.replicas));
    const target = Math.max(windowMax, current - cfg.scaleInMaxStep, cfg.minReplicas);
    if (target < current) {
      return (
        scaleInBlocked(target) ??
        out('scale-in', 'load-decrease', desired, target, `scale in ${current} → ${target}: ${input.totalConnections} connections need ${desired} pods (lower for ${secs(lowFor)})`, prevState())
      );
    }
  } else {
    lowSince = undefined;
  }
  if (current >= cfg.maxReplicas && Math.ceil(input.totalConnections / cfg.targetConnections) > cfg.maxReplicas) {
    return out('steady', 'at-max', desired, current, `at SOCKET_MAX_REPLICAS=${cfg.maxReplicas}: ${input.totalConnections} connections would need more pods`, prevState());
  }
  return out('steady', 'steady', desired, current, `steady at ${current} replicas (${input.totalConnections} connections)`, prevState());
}
