/**
 * `rtc-edge gateway`: pod-pinned WebSocket routing (`/ws/<podId>/connect` → that pod's `/ws/connect`),
 * `/ws/assign` and the probes on GATEWAY_PORT; `/api/pods`, `/api/events`, metrics and the status page on
 * GATEWAY_ADMIN_PORT (both on GATEWAY_PORT when `singlePort`, as `rtc-edge dev` does).
 */
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { KubeConfig } from '@kubernetes/client-node';
import { createCidrMatcher } from '../src/cidr.js';
import type { Config } from '../src/config.js';
import { createMetricsRegistry, registerRegistryMetrics, type MetricsRegistry } from '../src/metrics.js';
import { createRegistry } from '../src/registry/index.js';
import type { RoleDeps, RoleHandle } from '../src/role.js';
import { createAssigner } from './assign.js';
import { API_PODS_KEYS_LISTED, FD_RESERVE, CLOSE_GRACE_MS } from './constants.js';
import type { GatewayContext, WorkerGroup } from './context.js';
import { createGatewayMetrics } from './metrics.js';
import { UpgradeProxy } from './proxy.js';
import { createResolver, withPodCidrs, type LookupFn, type Resolver } from './resolvers/index.js';
import { createGatewayServer, type GatewayServer } from './server.js';
import { createRegistryView, VIEW_STATE_VALUE } from './view.js';

/** A running gateway. */
export interface GatewayHandle extends RoleHandle {
  /** Bound client-facing port (config may say 0). */
  readonly port: number;
  /** Bound admin port (`/metrics`, `/api/*`, the status page); equal to `port` when `singlePort`; 0 in a worker (the primary serves it). */
  readonly adminPort: number;
  /** This gateway's metrics (a worker hands them to the primary, which serves them aggregated). */
  readonly metrics: MetricsRegistry;
  /** Proxied connections currently open. */
  connections(): number;
  /** Client connections open in every phase (what a worker reports to the primary for accept balancing). */
  load(): number;
  /**
   * Accept new connections on the client-facing port, or stop for now (a worker above its share; the primary
   * decides). Resolves with whether it accepts afterwards; a draining gateway never accepts again.
   */
  setAccepting(on: boolean): Promise<boolean>;
  /** Graceful stop: readiness 503, stop accepting, close proxied connections with 1001 paced over GATEWAY_DRAIN_MS. */
  close(): Promise<void>;
}

/** Dependencies of a gateway; tests and `dev` pass their own. */
export interface GatewayDeps extends RoleDeps {
  /** Listen address (default: every interface). */
  host?: string;
  /** For the `endpointslices` resolver (default: in-cluster or KUBECONFIG). */
  kubeConfig?: KubeConfig;
  /** For the `dns` resolver (default: dns.promises.lookup). */
  lookup?: LookupFn;
  /** Serve the admin routes on GATEWAY_PORT too and ignore GATEWAY_ADMIN_PORT (`rtc-edge dev` only). */
  singlePort?: boolean;
  /** Use this resolver instead of the one GATEWAY_RESOLVER names (tests inject hostile answers). */
  resolver?: Resolver;
  /** Run as one of GATEWAY_WORKERS: the primary serves GATEWAY_ADMIN_PORT, and /readyz needs every worker up. */
  worker?: WorkerGroup;
}

/** Listen on `port` (0 = any free port); resolves the bound port. */
export function listen(server: GatewayServer, port: number, host: string | undefined): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Stop accepting and resolve once the server closed, or after CLOSE_GRACE_MS. */
export function stopServer(server: GatewayServer): Promise<void> {
  if (!server.listening) return Promise.resolve();
  // The listening handle closes at once; the accepted connections are the gateway's own (not net.Server's) to wait for.
  server.close();
  const closed = server.connectionsClosed();
  server.closeAllConnections();
  return Promise.race([closed, new Promise<void>((r) => setTimeout(r, CLOSE_GRACE_MS).unref())]);
}

/** Soft RLIMIT_NOFILE of this process (Linux /proc), or undefined when unknown. */
export function fdLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** GATEWAY_MAX_CONNECTIONS, lowered so that two descriptors per connection plus a reserve fit the fd limit. */
export function effectiveMaxConnections(configured: number, limit: number | undefined): number {
  if (limit === undefined) return configured;
  return Math.max(1, Math.min(configured, Math.floor((limit - FD_RESERVE) / 2)));
}

/** Start the gateway; resolves once it listens and has its first registry view (or gave up waiting). */
export async function start(config: Config, deps: GatewayDeps): Promise<GatewayHandle> {
  const logger = deps.logger.child({ component: 'gateway' });
  const ownsRegistry = !deps.registry;
  const registry = deps.registry ?? createRegistry(config, logger);
  const view = createRegistryView(registry, { logger, staleMs: config.gatewayRegistryStaleMs, refreshMs: config.heartbeatMs, keysListed: API_PODS_KEYS_LISTED });
  // GATEWAY_POD_CIDRS holds for an injected resolver too; createResolver applies it to the ones it builds.
  const resolver = deps.resolver ? withPodCidrs(deps.resolver, config.gatewayPodCidrs, logger) : createResolver(config, { logger, view, ...(deps.kubeConfig ? { kubeConfig: deps.kubeConfig } : {}), ...(deps.lookup ? { lookup: deps.lookup } : {}) });
  // Process metrics only when the gateway owns its process (CLI); embedded gateways leave them to the host.
  let proxyRef: UpgradeProxy | undefined;
  const metrics = createGatewayMetrics(createMetricsRegistry('gateway', ownsRegistry), () => VIEW_STATE_VALUE[view.state()], () => proxyRef?.countLiveBytes());
  registerRegistryMetrics(metrics.registry, registry);
  const limit = fdLimit();
  const maxConnections = effectiveMaxConnections(config.gatewayMaxConnections, limit);
  metrics.maxConnections(maxConnections);
  if (maxConnections < config.gatewayMaxConnections) {
    logger.warn({ configured: config.gatewayMaxConnections, fdLimit: limit, maxConnections }, 'GATEWAY_MAX_CONNECTIONS lowered to fit the file descriptor limit (two per proxied connection)');
  }
  const proxy = (proxyRef = new UpgradeProxy({ upstreamTimeoutMs: config.gatewayUpstreamTimeoutMs, maxHeaderBytes: config.gatewayMaxHeaderBytes, metrics, logger }));
  const ctx: GatewayContext = { config, logger, registry, view, resolver, assigner: createAssigner({ strategy: config.gatewayAssignStrategy, targetConnections: config.socketTargetConnections }), proxy, metrics, maxConnections, trustedProxies: createCidrMatcher(config.gatewayTrustedProxies), podCidrs: config.gatewayPodCidrs.length > 0 ? createCidrMatcher(config.gatewayPodCidrs) : undefined, draining: false, ...(deps.worker ? { workers: deps.worker } : {}) };
  const single = deps.singlePort === true;
  const server = createGatewayServer(ctx, single ? 'combined' : 'client');
  const admin = single || deps.worker ? undefined : createGatewayServer(ctx, 'admin');

  const cleanup = async () => {
    view.close();
    await resolver.close();
    if (ownsRegistry) await registry.close();
  };
  let port: number;
  let adminPort: number;
  try {
    await Promise.all([view.ready(), resolver.ready()]);
    port = await listen(server, config.gatewayPort, deps.host);
    adminPort = admin ? await listen(admin, config.gatewayAdminPort, deps.host) : single ? port : 0;
  } catch (err) {
    await stopServer(server);
    await cleanup();
    throw err;
  }
  // A worker's line is not the gateway's: the primary logs 'gateway listening' once every worker is up.
  logger.info({ port, ...(adminPort ? { adminPort } : {}), resolver: resolver.kind, registry: registry.kind, maxConnections }, deps.worker ? 'gateway worker listening' : 'gateway listening');

  let closing: Promise<void> | undefined;
  let switching: Promise<boolean> = Promise.resolve(true);
  const switchAccepting = async (on: boolean): Promise<boolean> => {
    if (ctx.draining) return false;
    if (on === server.listening) return on;
    if (!on) {
      server.pauseAccepting();
      return false;
    }
    try {
      // The same address and port as at start-up: a worker joins the primary's shared listening socket again.
      await listen(server, config.gatewayPort, deps.host);
    } catch (err) {
      logger.error({ err }, 'gateway worker could not listen again after pausing its accepts; the primary retries');
    }
    // A drain that began while it listened again closes it as the drain closed it before.
    if (ctx.draining && server.listening) server.close();
    return server.listening;
  };
  return {
    port,
    adminPort,
    metrics: metrics.registry,
    connections: () => proxy.active.size,
    load: () => server.openConnections(),
    setAccepting(on) {
      switching = switching.then(() => switchAccepting(on));
      return switching;
    },
    close() {
      closing ??= (async () => {
        ctx.draining = true;
        logger.info({ proxied: proxy.active.size, drainMs: config.gatewayDrainMs }, 'gateway draining: readiness fails, no new connections; closing proxied connections with 1001, paced');
        server.close();
        const closed = server.connectionsClosed();
        server.closeIdleConnections();
        const result = await proxy.closeAll(config.gatewayDrainMs);
        server.closeAllConnections();
        await Promise.race([closed, new Promise((r) => setTimeout(r, CLOSE_GRACE_MS).unref())]);
        // The admin port stays up through the drain, so metrics show it; it closes last.
        if (admin) await stopServer(admin);
        await cleanup();
        logger.info({ closedWith1001: result.drained, destroyed: result.remaining }, 'gateway stopped');
      })();
      return closing;
    },
  };
}
