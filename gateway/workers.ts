/**
 * The gateway's primary process when GATEWAY_WORKERS > 1: it forks that many gateway workers (gateway/worker.ts)
 * behind the one client-facing port (Node's cluster module: each worker accepts on the shared listening socket, and
 * the primary balances them by closing the accepts of a worker above its share; round robin through the primary
 * when GATEWAY_PORT is 0), restarts a worker that dies while the others keep serving, serves the admin port itself (/metrics
 * aggregated over every process, /readyz true only while every worker is up, /api/* from its own registry view),
 * and on SIGTERM orders every worker's paced drain at once, with one deadline.
 */
import cluster, { type Worker } from 'node:cluster';
import { jitteredBackoffMs } from '../src/backoff.js';
import { createCidrMatcher } from '../src/cidr.js';
import type { Config } from '../src/config.js';
import { createMetricsRegistry, prom, registerRegistryMetrics } from '../src/metrics.js';
import { createRegistry } from '../src/registry/index.js';
import type { RoleDeps, RoleHandle } from '../src/role.js';
import { createAssigner } from './assign.js';
import { API_PODS_KEYS_LISTED, WORKER_BALANCE_SLACK_MIN, WORKER_BALANCE_SLACK_RATIO, WORKER_EXIT_GRACE_MS, WORKER_METRICS_TIMEOUT_MS, WORKER_RESTART_BASE_MS, WORKER_RESTART_MAX_MS, WORKER_STABLE_MS } from './constants.js';
import type { GatewayContext } from './context.js';
import { listen, stopServer } from './index.js';
import { createGatewayMetrics } from './metrics.js';
import { UpgradeProxy } from './proxy.js';
import { createRegistryResolver } from './resolvers/registry.js';
import { createGatewayServer } from './server.js';
import { createRegistryView, VIEW_STATE_VALUE } from './view.js';
import { isMessage, WORKER_SLOT_ENV, type AcceptingMessage, type LoadMessage, type MetricsJson, type MetricsReply, type ToWorker, type UpMessage } from './worker-messages.js';

/** The running group of gateway workers, as the primary holds it. */
export interface WorkerGroupHandle extends RoleHandle {
  /** The client-facing port every worker serves. */
  readonly port: number;
  /** The admin port the primary serves. */
  readonly adminPort: number;
  /** Process ids of the workers currently alive, by slot (undefined while one restarts). */
  pids(): (number | undefined)[];
}

/** One worker position: its process comes and goes, the slot stays. */
interface Slot {
  readonly index: number;
  worker: Worker | undefined;
  up: boolean;
  /** Date.now() when the current process came up (0 = not yet). */
  upAt: number;
  /** Consecutive restarts without a stable run in between (the backoff exponent). */
  attempt: number;
  restart: NodeJS.Timeout | undefined;
  /** Client connections the worker last reported. */
  open: number;
  /** Whether it accepts on the shared port (as it last confirmed). */
  accepting: boolean;
  /** An accept order sent and not confirmed yet. */
  ordered: boolean | undefined;
}

/**
 * Accept balancing: which up workers should start or stop accepting now. A worker stops while it holds more than the
 * least-loaded one plus the slack, and starts again at half the slack; one is stopped only while another accepts
 * and stays accepting, so the shared socket always has a worker behind it. Resumes come first.
 */
export function balanceOrders(workers: readonly Pick<Slot, 'open' | 'accepting' | 'ordered'>[]): { resume: number[]; pause: number[] } {
  const resume: number[] = [];
  const pause: number[] = [];
  if (workers.length === 0) return { resume, pause };
  const min = Math.min(...workers.map((w) => w.open));
  const slack = Math.max(WORKER_BALANCE_SLACK_MIN, Math.ceil(min * WORKER_BALANCE_SLACK_RATIO));
  const high = (w: Pick<Slot, 'open'>) => w.open > min + slack;
  // The least-loaded worker always qualifies, so a lone worker always accepts.
  workers.forEach((w, i) => {
    if (!w.accepting && w.ordered === undefined && w.open <= min + slack / 2) resume.push(i);
  });
  const staysAccepting = (w: Pick<Slot, 'open' | 'accepting' | 'ordered'>) => w.accepting && w.ordered === undefined && !high(w);
  workers.forEach((w, i) => {
    if (w.accepting && w.ordered === undefined && high(w) && workers.some((o) => o !== w && staysAccepting(o))) pause.push(i);
  });
  return { resume, pause };
}

/**
 * Send to a worker. A worker that is exiting can close its channel between the isConnected() check and the write,
 * which fails with EPIPE; without a callback Node emits that as 'error' on the Worker and, unhandled, it kills the
 * primary (seen in CI: a drain's last broadcast raced the workers' exits). The exit itself is handled by onExit, so a
 * failed send only calls `failed` (a metrics request stops waiting for the answer).
 */
export function post(worker: Worker | undefined, message: ToWorker, failed?: () => void): void {
  if (!worker?.isConnected()) {
    failed?.();
    return;
  }
  worker.send(message, undefined, (err) => {
    if (err) failed?.();
  });
}

/** Fork GATEWAY_WORKERS gateway workers and serve the admin port; resolves once every worker listens. */
export async function startWorkers(config: Config, deps: RoleDeps): Promise<WorkerGroupHandle> {
  const logger = deps.logger.child({ component: 'gateway-primary' });
  // Each worker accepts on the shared socket (SCHED_NONE): half the group's CPU per handshake of round robin, where
  // this process accepted every connection and handed it over IPC. The kernel's choice of worker is uneven (the one
  // that has run longest gets nearly all while it is not busy, and idle WebSockets never make it busy), so this
  // process balances: a worker above its share closes its accepts until the others catch up (balanceOrders). That
  // needs a fixed port to listen on again; with GATEWAY_PORT=0 (tests) it is round robin, set here so that
  // NODE_CLUSTER_SCHED_POLICY cannot change either (README "Gateway workers").
  const balancing = config.gatewayPort !== 0;
  cluster.schedulingPolicy = balancing ? cluster.SCHED_NONE : cluster.SCHED_RR;
  const slots: Slot[] = Array.from({ length: config.gatewayWorkers }, (_, index) => ({ index, worker: undefined, up: false, upAt: 0, attempt: 0, restart: undefined, open: 0, accepting: false, ordered: undefined }));
  let stopping = false;
  let started = false;
  let port = 0;

  // The primary's own view answers /api/pods and the status page; each worker has its own for routing.
  const registry = deps.registry ?? createRegistry(config, logger);
  const view = createRegistryView(registry, { logger, staleMs: config.gatewayRegistryStaleMs, refreshMs: config.heartbeatMs, keysListed: API_PODS_KEYS_LISTED });
  const own = createMetricsRegistry('gateway', !deps.registry);
  const metrics = createGatewayMetrics(own, () => VIEW_STATE_VALUE[view.state()]);
  registerRegistryMetrics(own, registry);
  new prom.Gauge({ name: 'rtc_gateway_workers_up', help: 'Gateway worker processes serving (GATEWAY_WORKERS when all are up)', registers: [own], collect() { this.set(slots.filter((s) => s.up).length); } });
  const restarts = new prom.Counter({ name: 'rtc_gateway_worker_restarts_total', help: 'Gateway worker processes that died and were restarted', registers: [own] });

  const pending = new Map<number, (m: MetricsJson | undefined) => void>();
  let nextRequest = 0;
  const ask = (worker: Worker) => new Promise<MetricsJson | undefined>((resolve) => {
    const id = nextRequest++;
    const timer = setTimeout(() => settle(undefined), WORKER_METRICS_TIMEOUT_MS);
    function settle(m: MetricsJson | undefined) {
      clearTimeout(timer);
      pending.delete(id);
      resolve(m);
    }
    pending.set(id, settle);
    post(worker, { type: 'rtc-edge:metrics?', id }, () => settle(undefined));
  });
  /** Every live worker's metrics and the primary's own, aggregated (counters and most gauges summed). */
  async function aggregated(): Promise<string> {
    const live = slots.flatMap((s) => (s.worker?.isConnected() ? [s.worker] : []));
    const answers = await Promise.all(live.map(ask));
    const missing = answers.filter((a) => a === undefined).length;
    if (missing > 0) logger.warn({ missing, workers: live.length }, 'gateway workers did not answer the metrics request in time: /metrics lacks them');
    const all = answers.filter((a): a is MetricsJson => a !== undefined);
    return prom.AggregatorRegistry.aggregate([...all, await own.getMetricsAsJSON()]).metrics();
  }

  const allUp = () => !stopping && slots.every((s) => s.up);
  const broadcast = () => {
    const up = allUp();
    for (const s of slots) post(s.worker, { type: 'rtc-edge:workers', allUp: up });
  };

  function rebalance(): void {
    if (!balancing || stopping) return;
    const up = slots.filter((s) => s.up && s.worker?.isConnected());
    const { resume, pause } = balanceOrders(up);
    for (const i of resume) order(up[i]!, true);
    for (const i of pause) order(up[i]!, false);
  }
  function order(slot: Slot, on: boolean): void {
    slot.ordered = on;
    post(slot.worker, { type: 'rtc-edge:accept', on });
  }

  let startFailed: (err: Error) => void = () => undefined;
  let startDone: () => void = () => undefined;
  const allStarted = new Promise<void>((resolve, reject) => {
    startDone = resolve;
    startFailed = reject;
  });
  const exits = new Set<Promise<void>>();

  function fork(slot: Slot): void {
    slot.restart = undefined;
    const worker = cluster.fork({ [WORKER_SLOT_ENV]: String(slot.index) });
    slot.worker = worker;
    slot.up = false;
    slot.upAt = 0;
    slot.open = 0;
    slot.accepting = false;
    slot.ordered = undefined;
    logger.info({ worker: slot.index, workerPid: worker.process.pid }, 'gateway worker started');
    const exited = new Promise<void>((resolve) => worker.once('exit', (code: number | null, signal: string | null) => {
      exits.delete(exited);
      onExit(slot, worker, code, signal);
      resolve();
    }));
    exits.add(exited);
    // Any other error on the channel (the 'exit' that follows is what restarts the worker): logged, never fatal.
    worker.on('error', (err: Error) => logger.warn({ worker: slot.index, workerPid: worker.process.pid, err }, 'gateway worker channel error'));
    worker.on('message', (m: unknown) => {
      if (isMessage<MetricsReply>(m, 'rtc-edge:metrics')) pending.get(m.id)?.(m.metrics);
      else if (isMessage<LoadMessage>(m, 'rtc-edge:load')) {
        slot.open = m.open;
        rebalance();
      } else if (isMessage<AcceptingMessage>(m, 'rtc-edge:accepting')) {
        slot.accepting = m.on;
        slot.ordered = undefined;
        rebalance();
      } else if (isMessage<UpMessage>(m, 'rtc-edge:worker-up')) {
        port = m.port;
        slot.up = true;
        slot.upAt = Date.now();
        slot.accepting = true;
        if (started) logger.info({ worker: slot.index, workerPid: worker.process.pid }, 'gateway worker serving again');
        else if (slots.every((s) => s.up)) startDone();
        broadcast();
        rebalance();
      }
    });
  }

  function onExit(slot: Slot, worker: Worker, code: number | null, signal: string | null): void {
    if (slot.worker !== worker) return;
    const wasUp = slot.up;
    slot.worker = undefined;
    slot.up = false;
    broadcast();
    rebalance();
    if (stopping) return;
    if (!started) {
      startFailed(new Error(`gateway worker ${slot.index} exited (code ${code}, signal ${signal}) before it listened; its log says why`));
      return;
    }
    if (wasUp && Date.now() - slot.upAt >= WORKER_STABLE_MS) slot.attempt = 0;
    const delayMs = jitteredBackoffMs(slot.attempt, WORKER_RESTART_BASE_MS, WORKER_RESTART_MAX_MS);
    slot.attempt++;
    restarts.inc();
    logger.error({ worker: slot.index, workerPid: worker.process.pid, code, signal, restartInMs: delayMs }, 'gateway worker died: its connections are gone, the other workers keep serving; restarting it');
    slot.restart = setTimeout(() => fork(slot), delayMs);
  }

  /** Order every worker's drain and wait for them to exit; kill any that outlive the deadline. */
  async function stopWorkers(): Promise<void> {
    stopping = true;
    for (const s of slots) {
      clearTimeout(s.restart);
      s.restart = undefined;
      post(s.worker, { type: 'rtc-edge:drain' });
    }
    const deadline = setTimeout(() => {
      for (const s of slots) {
        if (!s.worker) continue;
        logger.error({ worker: s.index, workerPid: s.worker.process.pid }, 'gateway worker did not finish its drain in time: killing it');
        s.worker.process.kill('SIGKILL');
      }
    }, config.gatewayDrainMs + WORKER_EXIT_GRACE_MS);
    await Promise.all([...exits]);
    clearTimeout(deadline);
  }

  const ctx: GatewayContext = {
    config,
    logger,
    registry,
    view,
    resolver: createRegistryResolver(view),
    assigner: createAssigner({ strategy: config.gatewayAssignStrategy, targetConnections: config.socketTargetConnections }),
    // The primary proxies nothing: the admin surface never reaches the proxy.
    proxy: new UpgradeProxy({ upstreamTimeoutMs: config.gatewayUpstreamTimeoutMs, maxHeaderBytes: config.gatewayMaxHeaderBytes, metrics, logger }),
    metrics,
    maxConnections: 0,
    trustedProxies: createCidrMatcher(config.gatewayTrustedProxies),
    podCidrs: config.gatewayPodCidrs.length > 0 ? createCidrMatcher(config.gatewayPodCidrs) : undefined,
    draining: false,
    workers: { allUp, primary: { metrics: aggregated } },
  };
  const admin = createGatewayServer(ctx, 'admin');
  const closeOwn = async () => {
    view.close();
    if (!deps.registry) await registry.close();
  };

  let adminPort: number;
  try {
    for (const s of slots) fork(s);
    await Promise.all([allStarted, view.ready()]);
    started = true;
    adminPort = await listen(admin, config.gatewayAdminPort, undefined);
  } catch (err) {
    await stopWorkers();
    await stopServer(admin);
    await closeOwn();
    throw err;
  }
  logger.info({ port, adminPort, workers: slots.length, registry: registry.kind }, 'gateway listening');

  let closing: Promise<void> | undefined;
  return {
    port,
    adminPort,
    pids: () => slots.map((s) => s.worker?.process.pid),
    close() {
      closing ??= (async () => {
        ctx.draining = true;
        logger.info({ workers: slots.filter((s) => s.worker).length, drainMs: config.gatewayDrainMs }, 'gateway draining: every worker fails readiness and closes its connections with 1001, paced');
        await stopWorkers();
        // The admin port stays up through the drain, so metrics show it; it closes last.
        await stopServer(admin);
        await closeOwn();
        logger.info('gateway stopped: every worker exited');
      })();
      return closing;
    },
  };
}
