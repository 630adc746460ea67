/**
 * `rtc-edge scaler`: every SCALER_INTERVAL_MS read the registry and the workload, run the pure policy,
 * and act through the workload (scale-out at once; scale-in through the deletion-cost protocol).
 * Only the holder of the scaler Lease acts. /healthz and /metrics on ADMIN_PORT.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { Config } from '../src/config.js';
import { createMetricsRegistry, registerRegistryMetrics, type MetricsRegistry } from '../src/metrics.js';
import { createRegistry } from '../src/registry/index.js';
import type { Registry } from '../src/registry/registry.js';
import type { RoleDeps, RoleHandle } from '../src/role.js';
import { startScalerAdmin, type ScalerAdmin } from './admin.js';
import { podClassifier } from './classify.js';
import { CORDON_TTL_INTERVALS, CORDON_TTL_MIN_MS, POD_BOOT_GRACE_MS, RETIRE_CONFIRM_TIMEOUT_MS, SCALE_IN_SETTLE_MS, VICTIM_OBSERVE_TIMEOUT_MS } from './constants.js';
import { cordonMarks } from './cordon.js';
import type { ProtocolContext } from './deletion-cost.js';
import { eventRecorder } from './events.js';
import type { RetryOptions } from './kube.js';
import type { LeaseElectorOptions } from './leader.js';
import { alwaysLeader, type LeaderElector } from './leadership.js';
import { createScalerMetrics, showTickGauges, type ScalerMetrics } from './metrics.js';
import type { PolicyConfig, PolicyDecision } from './policy.js';
import { createTicker } from './tick.js';
import { victimAccounting } from './victims.js';
import { createWorkload, type Workload } from './workload/index.js';

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
  /** Longest wait for the victims to show NotReady on the watch (default RETIRE_CONFIRM_TIMEOUT_MS). */
  retireTimeoutMs?: number;
  /** Pause before the scale call once everything is confirmed (default SCALE_IN_SETTLE_MS). */
  settleMs?: number;
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
  registerRegistryMetrics(metricsRegistry, registry);
  const metrics = createScalerMetrics(metricsRegistry);
  const cfg: PolicyConfig = {
    minReplicas: config.socketMinReplicas,
    maxReplicas: config.socketMaxReplicas,
    targetConnections: config.socketTargetConnections,
    scaleInStabilizationMs: config.scaleInStabilizationMs,
    scaleInMaxStep: config.scaleInMaxStep,
    keyWeight: config.scalerKeyWeight,
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
  showTickGauges(metrics, leader.isLeader());

  const ctx: ProtocolContext = {
    workload,
    logger,
    metrics,
    stillLeader: () => leader.isLeader(),
    leadership: () => leader.signal(),
    now,
    victimTimeoutMs: deps.victimTimeoutMs ?? VICTIM_OBSERVE_TIMEOUT_MS,
    retireTimeoutMs: deps.retireTimeoutMs ?? RETIRE_CONFIRM_TIMEOUT_MS,
    settleMs: deps.settleMs ?? SCALE_IN_SETTLE_MS,
    keyWeight: config.scalerKeyWeight,
  };
  const event = eventRecorder(registry, logger, now);
  const cordon = cordonMarks({ registry, logger, event, now, ttlMs: Math.max(CORDON_TTL_MIN_MS, CORDON_TTL_INTERVALS * config.scalerIntervalMs) });
  const victims = victimAccounting({ workload, logger, metrics, event, victimTimeoutMs: ctx.victimTimeoutMs, withdraw: (names) => cordon.withdraw(names) });
  const ticker = createTicker({ registry, ctx, logger, metrics, cfg, victims, classifier: podClassifier(deps.bootGraceMs ?? POD_BOOT_GRACE_MS), event, cordon, heartbeatMs: config.heartbeatMs });
  let lastTickAt = now();
  let closing = false;
  let timer: NodeJS.Timeout | undefined;
  let inflight: Promise<void> | undefined;

  leader.onChange((leading) => {
    metrics.isLeader.set(leading ? 1 : 0);
    showTickGauges(metrics, leading);
    if (!leading) ticker.reset();
    event('info', leading ? `scaler ${leader.identity} acquired the Lease and acts` : `scaler ${leader.identity} lost the Lease and stopped acting`);
  });

  function tick(): Promise<void> {
    inflight ??= ticker
      .run()
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

  let admin: ScalerAdmin | undefined;
  if (deps.admin !== false) {
    admin = await startScalerAdmin({
      port: config.adminPort,
      host: deps.adminHost,
      intervalMs: config.scalerIntervalMs,
      now,
      lastTickAt: () => lastTickAt,
      isLeader: () => leader.isLeader(),
      identity: leader.identity,
      workloadKind: workload.kind,
      metricsRegistry,
      logger,
    }).catch(async (err: unknown) => {
      if (ownsWorkload) await workload.close().catch(() => undefined);
      if (ownsRegistry) await registry.close();
      throw err;
    });
  }
  const adminPort = admin?.port;

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
    lastDecision: () => ticker.last(),
    close() {
      closed ??= (async () => {
        closing = true;
        clearTimeout(timer);
        await inflight;
        ticker.close();
        await leader.close();
        if (ownsWorkload) await workload.close();
        if (admin) await admin.close();
        if (ownsRegistry) await registry.close();
        logger.info('scaler stopped');
      })();
      return closed;
    },
  };
}
