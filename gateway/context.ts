/** What the gateway's request handlers share. */
import type { Logger } from 'pino';
import type { CidrMatcher } from '../src/cidr.js';
import type { Config } from '../src/config.js';
import type { Registry } from '../src/registry/registry.js';
import type { Assigner } from './assign.js';
import type { GatewayMetrics } from './metrics.js';
import type { UpgradeProxy } from './proxy.js';
import type { Resolver } from './resolvers/resolver.js';
import type { RegistryView } from './view.js';

/** One of GATEWAY_WORKERS (> 1) as the worker sees its group: the primary tells it whether every worker is up. */
export interface WorkerGroup {
  /** True while every worker of the gateway is up: /readyz fails otherwise. */
  allUp(): boolean;
  /** Set in the primary, which serves the admin port: /metrics answers every process's metrics, aggregated. */
  primary?: { metrics(): Promise<string> };
}

/** The running gateway's parts. */
export interface GatewayContext {
  readonly config: Config;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly view: RegistryView;
  readonly resolver: Resolver;
  readonly assigner: Assigner;
  readonly proxy: UpgradeProxy;
  readonly metrics: GatewayMetrics;
  /** Proxied + in-flight connections allowed (GATEWAY_MAX_CONNECTIONS, lowered to fit the descriptor limit). */
  readonly maxConnections: number;
  /** GATEWAY_TRUSTED_PROXIES: peers whose forwarding headers are extended rather than replaced. */
  readonly trustedProxies: CidrMatcher;
  /** GATEWAY_POD_CIDRS as a matcher; undefined when the list is empty (every address may be dialed). */
  readonly podCidrs: CidrMatcher | undefined;
  /** Set when this gateway is one of GATEWAY_WORKERS > 1 processes. */
  readonly workers?: WorkerGroup;
  /** Set by close(): readiness fails and new upgrades get 503 gateway_draining. */
  draining: boolean;
}
