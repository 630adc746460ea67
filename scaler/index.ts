/**
 * `rtc-edge scaler`: every SCALER_INTERVAL_MS read the registry and the workload, run the pure policy,
 * and act through the workload (scale-out at once; scale-in through the deletion-cost protocol).
 * Only the holder of the scaler Lease acts. /healthz and /metrics on ADMIN_PORT.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Config } from '../src/config.js';
import { edgeError } from '../src/errors.js';
import { METRICS_CONTENT_TYPE, createMetricsRegistry, type MetricsRegistry } from '../src/metrics.js';
import { createRegistry } from '../src/registry/index.js';
import type { EdgeEvent, PodRecord, Registry } from '../src/registry/registry.js';
import type { RoleDeps, RoleHandle } from '../src/role.js';
import { HEALTH_STALL_GRACE_MS, HEALTH_STALL_INTERVALS, POD_BOOT_GRACE_MS, VICTIM_OBSERVE_TIMEOUT_MS } from './constants.js';
import { observeVictims, runScaleIn, scaleWithLogs, type PendingVictims, type ProtocolContext } from './deletion-cost.js';
import type { RetryOptions } from './kube.js';
import { alwaysLeader, type LeaderElector, type LeaseElectorOptions } from './leader.js';
import { createScalerMetrics, type ScalerMetrics } from './metrics.js';
import { decide, initialPolicyState, type PodCounts, type PolicyConfig, type PolicyDecision, type PolicyInput, type RegistryHealth } from './policy.js';
import { createWorkload, rolloutInProgress, type Workload, type WorkloadSnapshot } from './workload/index.js';

export type { Workload, WorkloadPod, WorkloadSnapshot } from './workload/index.js';
export { createWorkload } from './workload/index.js';

/** Dependencies of the scaler role; everything beyond RoleDeps is optional and for `dev` and tests. */
export interface ScalerDeps extends RoleDeps {
  /** A workload created by the caller: the scaler starts it (start() is idempotent) but does not close it. */
  workload?: Workload;
  /** Who may act (default: a Lease elector for `kubernetes`, always-leader for `local`). */
  leader?: LeaderElector;
  /** Kubernetes client config (default: in-cluster or KUBECONFIG). */
  kubeConfig?: KubeConfig;
  /** Serve /healthz and /metrics on ADMIN_PORT (default true). */
  admin?: boolean;
  /** Admin listen address (default all interfaces). */
  adminHost?: string;
  metricsRegistry?: MetricsRegistry;
  now?: () => number;
  /** Kubernetes API retry tuning. */
  retry?: Partial<RetryOptions>;
  /** Lease timings (defaults 15 s / 10 s / 2 s). */
  lease?: Pick<LeaseElectorOptions, 'leaseDurationMs' | 'renewDeadlineMs' | 'retryPeriodMs'>;
  bootGraceMs?: number;
  victimTimeoutMs?: number;
  /** Wait for the watch to show patched deletion costs at most this long. */
  confirmTimeoutMs?: number;
}

/** A running scaler. */
export interface ScalerHandle extends RoleHandle {
  /** Bound admin port, undefined when the admin server is off. */
  readonly adminPort: number | undefined;
  readonly workload: Workload;
  readonly metrics: ScalerMetrics;
  isLeader(): boolean;
  /** Run one tick now (ticks never overlap); resolves when it is done. */
  tick(): Promise<void>;
  /** The last policy decision, undefined before the first leading tick. */
  lastDecision(): PolicyDecision | undefined;
}

/** Start the scaler role. */
export async function start(config: Config, deps: ScalerDeps): Promise<ScalerHandle> {
  const logger = deps.logger.child({ component: 'scaler' });
  const now = deps.now ?? Date.now;
  const ownsRegistry = !deps.registry;
  const registry: Registry = deps.registry ?? createRegistry(config, logger);
  const metricsRegistry = deps.metricsRegistry ?? createMetricsRegistry('scaler', ownsRegistry);
  const metrics = createScalerMetrics(metricsRegistry);
  const cfg: PolicyConfig = {
    minReplicas: config.socketMinReplicas,
    maxReplicas: config.socketMaxReplicas,
    targetConnections: config.socketTargetConnections,
    scaleInStabilizationMs: config.scaleInStabilizationMs,
    scaleInMaxStep: config.scaleInMaxStep,
  };

  let kubeConfig = deps.kubeConfig;
  const ownsWorkload = !deps.workload;
  let workload: Workload;
  if (deps.workload) workload = deps.workload;
  else {
    if (config.scalerWorkload === 'kubernetes' && !kubeConfig) kubeConfig = (await import('./kube.js')).loadKubeConfig();
    workload = await createWorkload(config, {
      logger: deps.logger,
      registry,
      metrics,
      ...(kubeConfig ? { kubeConfig } : {}),
      ...(deps.retry ? { retry: deps.retry } : {}),
      ...(deps.confirmTimeoutMs !== undefined ? { confirmTimeoutMs: deps.confirmTimeoutMs } : {}),
    });
  }
  try {
    await workload.start();
  } catch (err) {
    if (ownsWorkload) await workload.close().catch(() => undefined);
    if (ownsRegistry) await registry.close();
    throw err;
  }

  let leader: LeaderElector;
  if (deps.leader) leader = deps.leader;
  else if (workload.kind === 'kubernetes') {
    const { createLeaseElector } = await import('./leader.js');
    kubeConfig ??= (await import('./kube.js')).loadKubeConfig();
    leader = createLeaseElector({ kubeConfig, namespace: config.podNamespace, name: config.scalerLeaseName, identity: config.podName, logger: deps.logger, metrics, ...deps.lease });
  } else {
    leader = alwaysLeader(config.podName);
    metrics.isLeader.set(1);
  }

  const ctx: ProtocolContext = { workload, logger, metrics, stillLeader: () => leader.isLeader(), now, victimTimeoutMs: deps.victimTimeoutMs ?? VICTIM_OBSERVE_TIMEOUT_MS };
  const bootGraceMs = deps.bootGraceMs ?? POD_BOOT_GRACE_MS;
  let policyState = initialPolicyState();
  let last: PolicyDecision | undefined;
  let lastKey = '';
  let lastCosts: Record<string, number> | undefined;
  let pending: PendingVictims | undefined;
  let workloadError = false;
  const seenLive = new Set<string>();
  let lastTickAt = now();
  let closing = false;
  let timer: NodeJS.Timeout | undefined;
  let inflight: Promise<void> | undefined;

  const event = (kind: EdgeEvent['kind'], message: string, podId?: string) =>
    registry.pushEvent({ at: now(), kind, message, ...(podId ? { podId } : {}) }).catch((err: unknown) => logger.debug({ err }, 'registry event not recorded'));

  leader.onChange((leading) => {
    metrics.isLeader.set(leading ? 1 : 0);
    if (!leading) {
      // A new leader starts from a clean memory: no half-observed scale-in, a full stabilization window.
      policyState = initialPolicyState();
      pending = undefined;
      lastKey = '';
    }
    void event('info', leading ? `scaler ${leader.identity} acquired the Lease and acts` : `scaler ${leader.identity} lost the Lease and stopped acting`);
  });

  function checkVictims(t: number): number {
    if (!pending) return 0;
    const { victims, done, timedOut } = observeVictims(pending, workload.listPods(), t);
    const expected = pending.from - pending.to;
    if (!done) return expected - victims.length;
    for (const v of victims) {
      metrics.victims.inc({ honored: String(v.honored) });
      const verdict = v.honored ? 'one of the least-loaded (deletion cost honored)' : `NOT one of the least-loaded: pods with ≤ ${pending.threshold} connections were expected`;
      logger.info({ podId: v.name, connections: v.cost, honored: v.honored, threshold: pending.threshold }, `scale-in removed pod ${v.name} with ${v.cost} connections: ${verdict}`);
      void event('victim', `scale-in removed ${v.name} (${v.cost} connections${v.honored ? ', least-loaded' : ', not least-loaded'})`, v.name);
    }
    if (timedOut) logger.warn({ expected, observed: victims.length }, `only ${victims.length} of ${expected} removed pod(s) were observed within ${ctx.victimTimeoutMs} ms of the scale-in`);
    pending = undefined;
    return 0;
  }

  function classify(snap: WorkloadSnapshot, live: Map<string, PodRecord>, t: number, unobserved: number): PodCounts {
    const counts: PodCounts = { live: 0, booting: 0, unreported: 0, dead: 0, draining: unobserved };
    const names = new Set<string>();
    for (const p of snap.pods) {
      names.add(p.name);
      const rec = live.get(p.name);
      if (p.terminating) {
        if (rec) counts.draining++; // still has clients leaving it
        continue;
      }
      // Draining without a deletionTimestamp: drained by hand, out of service but not leaving. Not capacity.
      if (rec?.draining) counts.dead++;
      else if (rec) {
        counts.live++;
        seenLive.add(p.name);
      } else if (!seenLive.has(p.name) && !p.ready) counts.booting++;
      else if (!seenLive.has(p.name) && t - (p.readySince || p.createdAt) < bootGraceMs) counts.unreported++;
      else counts.dead++;
    }
    for (const n of seenLive) if (!names.has(n)) seenLive.delete(n);
    return counts;
  }

  async function readRegistry(): Promise<{ health: RegistryHealth; records: PodRecord[] }> {
    if (registry.status() !== 'ready') return { health: 'unavailable', records: [] };
    try {
      return { health: 'ok', records: await registry.list() };
    } catch (err) {
      logger.debug({ err }, 'registry read failed');
      return { health: 'unavailable', records: [] };
    }
  }

  async function tickOnce(): Promise<void> {
    const t = now();
    const unobserved = checkVictims(t);
    if (!leader.isLeader()) return;

    const { health, records } = await readRegistry();
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
    const counts = classify(snap, live, t, unobserved);
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
      void event(decision.action === 'hold' ? 'hold' : 'info', decision.message);
    }
    lastKey = key;

    let replicas = snap.replicas;
    try {
      if (decision.action === 'scale-out') {
        logger.info({ reason: decision.reason, desired: decision.desired, connections: totalConnections, pods: counts }, decision.message);
        if (await scaleWithLogs(ctx, snap.replicas, decision.replicas)) {
          replicas = decision.replicas;
          void event('scale-out', decision.message);
        }
      } else if (decision.action === 'scale-in') {
        logger.info({ reason: decision.reason, desired: decision.desired, connections: totalConnections, pods: counts }, decision.message);
        const connections = new Map(records.map((r) => [r.podId, r.connections]));
        const result = await runScaleIn(ctx, snap.pods, connections, snap.replicas, decision.replicas);
        lastCosts = Object.fromEntries(result.costs);
        if (result.scaled) {
          replicas = decision.replicas;
          pending = result.pending;
          void event('scale-in', `${decision.message}; deletion costs written on ${result.written} pod(s), ${result.costs.size - result.written} already current`);
        }
      }
    } catch (err) {
      lastKey = '';
      logger.error({ err, action: decision.action, from: snap.replicas, to: decision.replicas }, `${decision.action} of Deployment ${workload.name} failed; retrying next interval`);
      void event('info', `${decision.action} ${snap.replicas} → ${decision.replicas} failed: ${(err as Error).message}`);
    }

    await registry
      .setScalerDecision({ desiredReplicas: decision.desired, currentReplicas: replicas, reason: decision.message, at: t, ...(lastCosts ? { deletionCosts: lastCosts } : {}) })
      .catch((err: unknown) => logger.debug({ err }, 'scaler decision not recorded'));
  }

  function tick(): Promise<void> {
    inflight ??= tickOnce()
      .catch((err: unknown) => logger.error({ err }, 'scaler tick failed'))
      .finally(() => {
        lastTickAt = now();
        inflight = undefined;
      });
    return inflight;
  }

  function loop(): void {
    if (closing) return;
    timer = setTimeout(() => void tick().finally(loop), config.scalerIntervalMs);
  }

  let server: http.Server | undefined;
  let adminPort: number | undefined;
  if (deps.admin !== false) {
    server = http.createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      const send = (status: number, body: string, type = 'application/json') => {
        res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : body);
      };
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        send(405, JSON.stringify(edgeError('EDGE_ERR_METHOD_NOT_ALLOWED').toJSON()));
      } else if (path === '/healthz') {
        const stalled = now() - lastTickAt > HEALTH_STALL_INTERVALS * config.scalerIntervalMs + HEALTH_STALL_GRACE_MS;
        send(stalled ? 503 : 200, JSON.stringify({ status: stalled ? 'stalled' : 'ok', leader: leader.isLeader(), identity: leader.identity, workload: workload.kind, lastTickAt }));
      } else if (path === '/metrics') {
        metricsRegistry.metrics().then(
          (text) => send(200, text, METRICS_CONTENT_TYPE),
          (err: unknown) => {
            logger.error({ err }, 'metrics collection failed');
            send(500, JSON.stringify(edgeError('EDGE_ERR_INTERNAL').toJSON()));
          },
        );
      } else {
        send(404, JSON.stringify(edgeError('EDGE_ERR_NOT_FOUND').toJSON()));
      }
    });
    await new Promise<void>((resolve, reject) => {
      server!.once('error', reject);
      server!.listen(config.adminPort, deps.adminHost, () => {
        server!.off('error', reject);
        resolve();
      });
    }).catch(async (err: unknown) => {
      if (ownsWorkload) await workload.close().catch(() => undefined);
      if (ownsRegistry) await registry.close();
      throw err;
    });
    adminPort = (server.address() as AddressInfo).port;
  }

  leader.start();
  logger.info(
    { workload: workload.kind, deployment: workload.name, namespace: config.podNamespace, min: cfg.minReplicas, max: cfg.maxReplicas, targetConnections: cfg.targetConnections, intervalMs: config.scalerIntervalMs, stabilizationMs: cfg.scaleInStabilizationMs, adminPort },
    `scaler started for Deployment ${workload.name} (${workload.kind})`,
  );
  loop();

  let closed: Promise<void> | undefined;
  return {
    get adminPort() {
      return adminPort;
    },
    workload,
    metrics,
    isLeader: () => leader.isLeader(),
    tick,
    lastDecision: () => last,
    close() {
      closed ??= (async () => {
        closing = true;
        clearTimeout(timer);
        await inflight;
        await leader.close();
        if (ownsWorkload) await workload.close();
        if (server) {
          server.closeAllConnections();
          await new Promise<void>((r) => server!.close(() => r()));
        }
        if (ownsRegistry) await registry.close();
        logger.info('scaler stopped');
      })();
      return closed;
    },
  };
}
