/** One scaler tick: read the registry (pods and their key counts) and the workload, classify the pods, decide by the pure policy, act, record. */
import type { Logger } from 'pino';
import { DEAD_AFTER_HEARTBEATS } from '../src/constants.js';
import type { PodRecord, Registry } from '../src/registry/registry.js';
import type { PodClassifier } from './classify.js';
import type { CordonMarks } from './cordon.js';
import { planCordon, type CordonCandidate } from './cordon-plan.js';
import { runScaleIn, scaleWithLogs, type ProtocolContext } from './deletion-cost.js';
import type { RecordEvent } from './events.js';
import { isLeadershipLost } from './leadership.js';
import type { ScalerMetrics } from './metrics.js';
import { decide, initialPolicyState, type PolicyConfig, type PolicyDecision, type PolicyInput, type RegistryHealth } from './policy.js';
import type { VictimAccounting } from './victims.js';
import { rolloutInProgress, type WorkloadSnapshot } from './workload/workload.js';

/** What a tick reads and drives. */
export interface TickDeps {
  registry: Registry;
  /** The deletion-cost protocol's context (workload, leadership, clock, logger, metrics). */
  ctx: ProtocolContext;
  logger: Logger;
  metrics: ScalerMetrics;
  cfg: PolicyConfig;
  victims: VictimAccounting;
  classifier: PodClassifier;
  event: RecordEvent;
  cordon: CordonMarks;
  /** The scaler's own HEARTBEAT_MS: the pods' heartbeat until a read has shown theirs. */
  heartbeatMs: number;
}

/** The tick and the policy memory it carries from one tick to the next. */
export interface Ticker {
  /** Run one tick (the caller keeps ticks from overlapping). */
  run(): Promise<void>;
  /** Start from a clean memory: no half-observed scale-in, a full stabilization window. */
  reset(): void;
  /** The last policy decision, undefined before the first leading tick. */
  last(): PolicyDecision | undefined;
  /** Stop following the registry's status. */
  close(): void;
}

/** A ticker over `deps`. */
export function createTicker({ registry, ctx, logger, metrics, cfg, victims, classifier, event, cordon, heartbeatMs: ownHeartbeatMs }: TickDeps): Ticker {
  const { workload, now } = ctx;
  let policyState = initialPolicyState();
  let last: PolicyDecision | undefined;
  let lastKey = '';
  let lastCosts: Record<string, number> | undefined;
  let workloadError = false;
  /** Planned pods without a live registry entry: their mark cannot be read back from a record. */
  let silentMarked = new Set<string>();
  // After the registry was unreachable, pods need up to DEAD_AFTER_HEARTBEATS heartbeats to be back in it (a
  // promoted replica's entries may have expired, a restarted Cluster node has none): until then the view is stale.
  // A loss is taken from the registry's status transitions too, so an outage between two ticks counts.
  let registryLost = false;
  let recoveredAt: number | undefined;
  // The pods' heartbeat from the last full read. Not from the read after an outage: that one may be empty (every
  // entry expired), and a window of 3 × 0 ms let the next tick act on a half-refilled registry.
  let podHeartbeatMs = ownHeartbeatMs;
  let wasReady = registry.status() === 'ready';
  const offStatus = registry.onStatus((status) => {
    if (wasReady && status !== 'ready' && status !== 'closed') registryLost = true;
    wasReady = status === 'ready';
  });

  /** Placement keys per pod as last read: a failed read keeps these (the counts only steer the choice of victims). */
  let keys = new Map<string, number>();

  async function readRegistry(): Promise<{ health: RegistryHealth; records: PodRecord[] }> {
    if (registry.status() !== 'ready') return { health: 'unavailable', records: [] };
    let records: PodRecord[];
    try {
      records = await registry.list();
    } catch (err) {
      logger.debug({ err }, 'registry read failed');
      return { health: 'unavailable', records: [] };
    }
    try {
      const summary = await registry.keySummary(records.map((r) => r.podId), 0);
      keys = new Map([...summary].map(([id, s]) => [id, s.count]));
    } catch (err) {
      logger.debug({ err }, 'key counts not read; using the last ones');
    }
    return { health: 'ok', records };
  }

  /** The registry's health for the policy: 'stale' while pods may still be re-registering after an outage. */
  function settling(read: RegistryHealth, records: readonly PodRecord[], t: number): RegistryHealth {
    if (read !== 'ok') {
      registryLost = true;
      return read;
    }
    if (registryLost) {
      registryLost = false;
      recoveredAt = t;
    }
    const readHeartbeatMs = Math.max(0, ...records.map((r) => r.heartbeatMs));
    if (recoveredAt !== undefined) {
      if (t - recoveredAt < DEAD_AFTER_HEARTBEATS * Math.max(podHeartbeatMs, readHeartbeatMs)) return 'stale';
      recoveredAt = undefined;
    }
    if (records.length > 0) podHeartbeatMs = readHeartbeatMs;
    return read;
  }

  async function run(): Promise<void> {
    const t = now();
    const unobserved = victims.check(t);
    if (!ctx.stillLeader()) return;

    const { health: read, records } = await readRegistry();
    const health = settling(read, records, t);
    let snap: WorkloadSnapshot;
    try {
      snap = await workload.observe();
      if (workloadError) logger.info('workload readable again');
      workloadError = false;
    } catch (err) {
      metrics.holds.inc({ reason: 'workload-unavailable' });
      if (!workloadError) logger.error({ err }, `cannot read Deployment ${workload.name}; holding until it is readable`);
      workloadError = true;
      return;
    }

    const live = new Map(records.map((r) => [r.podId, r]));
    const totalConnections = records.reduce((s, r) => s + r.connections, 0);
    const counts = classifier.classify(snap, live, t, unobserved);
    const input: PolicyInput = { now: t, currentReplicas: snap.replicas, registry: health, totalConnections, pods: counts, rolloutInProgress: rolloutInProgress(snap.pods) };
    const decision = decide(input, cfg, policyState);
    policyState = decision.state;
    last = decision;

    metrics.desiredReplicas.set(decision.desired);
    metrics.currentReplicas.set(snap.replicas);
    metrics.totalConnections.set(totalConnections);
    metrics.decisions.inc({ action: decision.action, reason: decision.reason });
    if (decision.action === 'hold') metrics.holds.inc({ reason: decision.reason });

    const key = `${decision.action}|${decision.reason}`;
    if (key !== lastKey && decision.action !== 'scale-out' && decision.action !== 'scale-in') {
      const level = decision.reason === 'registry-unavailable' || decision.reason === 'registry-stale' ? 'warn' : 'info';
      logger[level]({ action: decision.action, reason: decision.reason, desired: decision.desired, current: snap.replicas, connections: totalConnections, pods: counts }, decision.message);
      event(decision.action === 'hold' ? 'hold' : 'info', decision.message);
    }
    lastKey = key;

    // Cordon marks first: uncordon before a scale-out, cordon the coming victims at the first low tick.
    const connections = new Map(records.map((r) => [r.podId, r.connections]));
    const candidates: CordonCandidate[] = [];
    for (const p of snap.pods) {
      const rec = live.get(p.name);
      if (p.terminating) continue;
      if (rec && !rec.draining) candidates.push({ name: p.name, connections: rec.connections, keys: keys.get(p.name) ?? 0, cordoned: rec.cordoned === true });
      // Ready without a live entry: 0 connections (cost 0 as ever), the first to go; the policy holds while such a pod may still be booting.
      else if (!rec && p.ready) candidates.push({ name: p.name, connections: 0, cordoned: silentMarked.has(p.name) });
    }
    const marked = records.filter((r) => r.cordoned).map((r) => r.podId);
    for (const n of silentMarked) if (!live.has(n)) marked.push(n);
    const plan = planCordon(decision, snap.replicas, candidates, cfg, marked);
    silentMarked = new Set(plan.cordoned.filter((n) => !live.has(n)));
    const why = decision.desired < snap.replicas ? `desired ${decision.desired} < ${snap.replicas} replicas` : `desired ${decision.desired} ≥ ${snap.replicas} replicas`;
    if (health === 'ok' && ctx.stillLeader()) {
      await cordon.apply(plan, connections, why, keys);
      metrics.cordonedPods.set(plan.cordoned.length);
    }

    let replicas = snap.replicas;
    try {
      if (decision.action === 'scale-out') {
        logger.info({ reason: decision.reason, desired: decision.desired, connections: totalConnections, pods: counts }, decision.message);
        if (await scaleWithLogs(ctx, snap.replicas, decision.replicas)) {
          replicas = decision.replicas;
          event('scale-out', decision.message);
        }
      } else if (decision.action === 'scale-in') {
        logger.info({ reason: decision.reason, desired: decision.desired, connections: totalConnections, pods: counts }, decision.message);
        const result = await runScaleIn(ctx, snap.pods, connections, snap.replicas, decision.replicas, plan.victims, cordon, keys);
        lastCosts = Object.fromEntries(result.costs);
        if (result.held) {
          metrics.holds.inc({ reason: 'victim-not-retired' });
          event('hold', `${decision.message} held: ${result.held}`);
        }
        if (result.scaled) {
          replicas = decision.replicas;
          if (result.pending) victims.track(result.pending);
          event('scale-in', `${decision.message}: the cordoned ${plan.victims.join(', ')} NotReady with the lowest deletion cost; costs written on ${result.written} pod(s), ${result.costs.size - result.written} already current`);
        }
      }
    } catch (err) {
      lastKey = '';
      if (isLeadershipLost(err)) {
        logger.warn({ action: decision.action, from: snap.replicas, to: decision.replicas }, `${decision.action} of Deployment ${workload.name} stopped: this replica lost the Lease, so it writes nothing more`);
        return;
      }
      logger.error({ err, action: decision.action, from: snap.replicas, to: decision.replicas }, `${decision.action} of Deployment ${workload.name} failed; retrying next interval`);
      event('info', `${decision.action} ${snap.replicas} → ${decision.replicas} failed: ${(err as Error).message}`);
    }

    await registry
      .setScalerDecision({ desiredReplicas: decision.desired, currentReplicas: replicas, reason: decision.message, at: t, victims: plan.cordoned, ...(lastCosts ? { deletionCosts: lastCosts } : {}) })
      .catch((err: unknown) => logger.debug({ err }, 'scaler decision not recorded'));
  }

  return {
    run,
    reset() {
      policyState = initialPolicyState();
      victims.reset();
      cordon.reset();
      lastKey = '';
    },
    last: () => last,
    close: offStatus,
  };
}
