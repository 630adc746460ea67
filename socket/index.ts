/**
 * `rtc-edge socket`: a uWebSockets.js socket node. WebSockets on SOCKET_PORT (`/ws/connect`), admin on
 * ADMIN_PORT, a registry heartbeat, and the paced drain of DESIGN.md.
 */
import type { Config } from '../src/config.js';
import { CloseCode, RECONNECT_REASON_KEY_MOVED } from '../src/constants.js';
import { createMetricsRegistry, registerRegistryMetrics } from '../src/metrics.js';
import { createRegistry } from '../src/registry/index.js';
import { settledWithin, type PodRecord, type RegistryStatus } from '../src/registry/registry.js';
import type { RoleDeps, RoleHandle } from '../src/role.js';
import { createAdminApp } from './admin.js';
import { watchCordon } from './cordon.js';
import { CloseReason } from './constants.js';
import { retryAfterMs, runDrain, type DrainResult } from './drain.js';
import { defaultHandler, loadHandler, normalizeHandler, type MessageHandler } from './handler.js';
import { createHeartbeat, withTimeout, type Heartbeat } from './heartbeat.js';
import { createKeyKeeper } from './keys.js';
import { createSocketMetrics } from './metrics.js';
import * as protocol from './protocol.js';
import { createSocketServer } from './server.js';
import type { Session } from './session.js';
import { assertNativeUws, listen, uWS, type us_listen_socket } from './uws.js';

export type { MessageHandler, HandlerInit, HandlerModule, Session, ClientMessage, UpgradeRequest, UpgradeResult, UpgradeRefusal, RefusalStatus } from './handler.js';
export { refuseUpgrade } from './handler.js';
export type { DrainResult } from './drain.js';

/** A running socket node. */
export interface SocketNodeHandle extends RoleHandle {
  readonly podId: string;
  /** Bound WebSocket port (config may say 0). */
  readonly port: number;
  /** Bound admin port. */
  readonly adminPort: number;
  connections(): number;
  /** What /readyz answers: not draining and not retiring (the scaler is about to remove it). */
  ready(): boolean;
  /** Same as GET /drain on the admin port: idempotent, every caller awaits the same drain. */
  drain(): Promise<DrainResult>;
  /** SIGTERM path: drain first if no drain ran yet, close listen sockets, remove the registry entry, resolve. */
  close(): Promise<void>;
}

/** Dependencies of a socket node. */
export interface SocketDeps extends RoleDeps {
  /** Use this handler instead of loading `config.socketHandler`. */
  handler?: MessageHandler;
  /** Listen address of both ports (default: every interface). `dev` and tests pass 127.0.0.1. */
  host?: string;
}

/** Start a socket node: both ports listening and the first heartbeat attempted when this resolves. */
export async function start(config: Config, deps: SocketDeps): Promise<SocketNodeHandle> {
  assertNativeUws();
  const podId = config.podName;
  const logger = deps.logger.child({ podId });
  const handler = deps.handler
    ? normalizeHandler(deps.handler, 'deps.handler')
    : config.socketHandler
      ? await loadHandler(config.socketHandler, { podId, logger: logger.child({ component: 'handler' }), config })
      : defaultHandler;

  const ownsRegistry = !deps.registry;
  const registry = deps.registry ?? createRegistry(config, logger);
  const state = { draining: false };
  const sessions = new Set<Session>(); // open connections; its size is the count a heartbeat reports
  const connections = () => sessions.size;
  let heartbeat: Heartbeat | undefined;
  // Process metrics only when the node owns its process (CLI); embedded nodes (dev, tests) leave them to the host.
  const metricsRegistry = createMetricsRegistry('socket', ownsRegistry);
  registerRegistryMetrics(metricsRegistry, registry);
  const metrics = createSocketMetrics(metricsRegistry, {
    connections,
    draining: () => state.draining,
    registryUp: () => heartbeat?.healthy ?? false,
  });
  metrics.drainTimeout.set(config.drainTimeoutMs / 1000);

  const cordon = watchCordon({ registry, podId, maxNotReadyMs: config.socketNotReadyMaxMs, logger });
  const keys = createKeyKeeper({
    registry,
    podId,
    heartbeatMs: config.heartbeatMs,
    graceMs: config.socketKeyGraceMs,
    cordoned: () => cordon.cordoned(),
    moved: (moved) => {
      for (const session of moved) {
        session.send(protocol.reconnect(retryAfterMs(), session.key, RECONNECT_REASON_KEY_MOVED));
        session.close(CloseCode.SERVICE_RESTART, RECONNECT_REASON_KEY_MOVED);
      }
    },
    logger,
  });
  const wsApp = createSocketServer({ config, podId, handler, logger, metrics, sessions, keys, isDraining: () => state.draining });

  let drainPromise: Promise<DrainResult> | undefined;
  const admin = createAdminApp(
    { podId, connections, draining: () => state.draining, retiring: () => cordon.retiring(), cordoned: () => cordon.cordoned(), registryStatus: (): RegistryStatus => registry.status(), drain: () => drain() },
    metricsRegistry,
    logger,
  );

  const listenSockets: us_listen_socket[] = [];
  const closeListenSockets = () => {
    for (const s of listenSockets.splice(0)) uWS.us_listen_socket_close(s);
  };
  let port: number;
  let adminPort: number;
  try {
    const ws = await listen(wsApp, config.socketPort, deps.host);
    listenSockets.push(ws.socket);
    const adm = await listen(admin, config.adminPort, deps.host);
    listenSockets.push(adm.socket);
    port = ws.port;
    adminPort = adm.port;
  } catch (err) {
    closeListenSockets();
    cordon.stop();
    keys.stop();
    if (ownsRegistry) await registry.close();
    throw err;
  }

  const startedAt = Date.now();
  const record = (): PodRecord => ({
    podId,
    ip: config.podIp,
    port,
    adminPort,
    connections: connections(),
    draining: state.draining,
    startedAt,
    updatedAt: Date.now(),
    heartbeatMs: config.heartbeatMs,
  });
  const hb = (heartbeat = createHeartbeat({ registry, intervalMs: config.heartbeatMs, record, logger, metrics }));
  // Cordon mark and key claims follow the heartbeat period (a claim lives 3 of them unless renewed).
  const cordonTimer = setInterval(() => {
    void cordon.refresh();
    void keys.renew();
  }, config.heartbeatMs);
  cordonTimer.unref();

  const notify = (session: Session, retryMs = retryAfterMs()) => {
    session.send(protocol.reconnect(retryMs, session.key));
    metrics.drainNotices.inc();
    session.close(CloseCode.SERVICE_RESTART, CloseReason.DRAINING);
  };
  const event = (kind: 'drain-start' | 'drain-done', message: string) =>
    registry.pushEvent({ at: Date.now(), kind, podId, message }).catch((err: unknown) => logger.debug({ err }, 'registry event not recorded'));

  function drain(): Promise<DrainResult> {
    drainPromise ??= (async () => {
      state.draining = true; // readiness fails and upgrades are refused from here on
      const t0 = performance.now();
      metrics.drainStarted.set(Date.now() / 1000);
      const open = sessions.size;
      logger.info({ connections: open, windowMs: config.drainWindowMs, timeoutMs: config.drainTimeoutMs }, 'drain started');
      void event('drain-start', `draining ${open} connections over ${config.drainWindowMs} ms`);
      // Registry first, so reconnecting clients are not assigned back here; then their keys are free to move.
      await hb.beat();
      await keys.releaseAll();
      // A room (the sessions of one key) is notified in one slot with one retryAfterMs, so it re-forms on the
      // new owner at once instead of being split over two pods for the window.
      const roomRetryMs = new Map<string, number>();
      const result = await runDrain({
        targets: [...sessions],
        groupOf: (session) => session.key,
        windowMs: config.drainWindowMs,
        timeoutMs: Math.max(0, config.drainTimeoutMs - (performance.now() - t0)),
        notify: (session) => {
          if (session.key === undefined) return notify(session);
          let retryMs = roomRetryMs.get(session.key);
          if (retryMs === undefined) roomRetryMs.set(session.key, (retryMs = retryAfterMs()));
          notify(session, retryMs);
        },
        openConnections: connections,
      });
      const seconds = (performance.now() - t0) / 1000;
      metrics.drainDuration.set(seconds);
      metrics.drainRemaining.set(result.remaining);
      logger.info({ ...result, durationMs: Math.round(seconds * 1000) }, result.remaining > 0 ? 'drain timed out' : 'drain finished');
      void event('drain-done', `drained ${result.drained}, ${result.remaining} remaining`);
      void hb.beat();
      return result;
    })();
    return drainPromise;
  }

  let closing: Promise<void> | undefined;
  function close(): Promise<void> {
    closing ??= (async () => {
      if (!drainPromise) logger.info('stop requested without a prior drain: draining first (bounded by DRAIN_TIMEOUT_MS)');
      await drain();
      await hb.stop(); // no beat may land after the removal below
      clearInterval(cordonTimer);
      cordon.stop();
      keys.stop();
      closeListenSockets();
      for (const session of [...sessions]) notify(session); // left over after a drain timeout
      try {
        await withTimeout(registry.remove(podId), config.heartbeatMs, 'registry remove');
      } catch (err) {
        logger.warn({ err }, 'registry entry not removed; readers drop it after 3 missed heartbeats');
      }
      if (ownsRegistry) await registry.close();
      logger.info('socket node stopped');
    })();
    return closing;
  }

  await settledWithin(registry, config.heartbeatMs);
  await Promise.all([hb.beat(), cordon.refresh()]);
  logger.info(
    { port, adminPort, ip: config.podIp, registry: registry.kind, handler: config.socketHandler ?? (deps.handler ? 'custom' : 'default') },
    'socket node listening',
  );

  return {
    podId,
    port,
    adminPort,
    connections,
    ready: () => !state.draining && !cordon.retiring(),
    drain,
    close,
  };
}
