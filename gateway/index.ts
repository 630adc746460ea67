/**
 * `rtc-edge gateway`: pod-pinned WebSocket routing (`/ws/<podId>/connect` → that pod's `/ws/connect`),
 * `/ws/assign`, `/api/pods`, `/api/events`, health, metrics and the status page.
 */
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Config } from '../src/config.js';
import { createMetricsRegistry } from '../src/metrics.js';
import { createRegistry } from '../src/registry/index.js';
import type { RoleDeps, RoleHandle } from '../src/role.js';
import { createAssigner } from './assign.js';
import { FD_RESERVE, CLOSE_GRACE_MS } from './constants.js';
import type { GatewayContext } from './context.js';
import { createGatewayMetrics } from './metrics.js';
import { UpgradeProxy } from './proxy.js';
import { createResolver, type LookupFn } from './resolvers/index.js';
import { createGatewayServer } from './server.js';
import { createRegistryView, VIEW_STATE_VALUE } from './view.js';

/** A running gateway. */
export interface GatewayHandle extends RoleHandle {
  /** Bound port (config may say 0). */
  readonly port: number;
  /** Proxied connections currently open. */
  connections(): number;
  /** Graceful stop: readiness 503, stop accepting, keep proxied connections for GATEWAY_DRAIN_MS, then close them with 1001. */
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
  const view = createRegistryView(registry, { logger, staleMs: config.gatewayRegistryStaleMs, refreshMs: config.heartbeatMs });
  const resolver = createResolver(config, { logger, view, ...(deps.kubeConfig ? { kubeConfig: deps.kubeConfig } : {}), ...(deps.lookup ? { lookup: deps.lookup } : {}) });
  // Process metrics only when the gateway owns its process (CLI); embedded gateways leave them to the host.
  const metrics = createGatewayMetrics(createMetricsRegistry('gateway', ownsRegistry), () => VIEW_STATE_VALUE[view.state()]);
  const limit = fdLimit();
  const maxConnections = effectiveMaxConnections(config.gatewayMaxConnections, limit);
  if (maxConnections < config.gatewayMaxConnections) {
    logger.warn({ configured: config.gatewayMaxConnections, fdLimit: limit, maxConnections }, 'GATEWAY_MAX_CONNECTIONS lowered to fit the file descriptor limit (two per proxied connection)');
  }
  const proxy = new UpgradeProxy({ upstreamTimeoutMs: config.gatewayUpstreamTimeoutMs, maxHeaderBytes: config.gatewayMaxHeaderBytes, metrics, logger });
  const ctx: GatewayContext = { config, logger, registry, view, resolver, assigner: createAssigner({ strategy: config.gatewayAssignStrategy, targetConnections: config.socketTargetConnections }), proxy, metrics, maxConnections, draining: false };
  const server = createGatewayServer(ctx);

  const cleanup = async () => {
    view.close();
    await resolver.close();
    if (ownsRegistry) await registry.close();
  };
  try {
    await Promise.all([view.ready(), resolver.ready()]);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.gatewayPort, deps.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    await cleanup();
    throw err;
  }
  const port = (server.address() as AddressInfo).port;
  logger.info({ port, resolver: resolver.kind, registry: registry.kind, maxConnections }, 'gateway listening');

  let closing: Promise<void> | undefined;
  return {
    port,
    connections: () => proxy.active.size,
    close() {
      closing ??= (async () => {
        ctx.draining = true;
        logger.info({ proxied: proxy.active.size, drainMs: config.gatewayDrainMs }, 'gateway draining: readiness fails, no new connections');
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        await proxy.whenIdle(config.gatewayDrainMs);
        const left = proxy.active.size;
        await proxy.closeAll();
        server.closeAllConnections();
        await Promise.race([closed, new Promise((r) => setTimeout(r, CLOSE_GRACE_MS).unref())]);
        await cleanup();
        logger.info({ closedWith1001: left }, 'gateway stopped');
      })();
      return closing;
    },
  };
}
