/** Pod resolution: one small interface, three backends (`registry`, `endpointslices`, `dns`), one factory. */
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Config } from '../../src/config.js';
import type { RegistryView } from '../view.js';
import { createDnsResolver, type LookupFn } from './dns.js';
import { createEndpointSliceResolver } from './endpointslices.js';
import { createRegistryResolver } from './registry.js';
import type { Resolver } from './resolver.js';

export * from './resolver.js';
export type { LookupFn } from './dns.js';

/** What the factory may need; each backend uses its part. */
export interface ResolverDeps {
  logger: Logger;
  /** The registry view (`registry` backend). */
  view?: RegistryView;
  /** Kubernetes client config (`endpointslices`); default: in-cluster or KUBECONFIG. */
  kubeConfig?: KubeConfig;
  /** Name lookup (`dns`); default `dns.promises.lookup`. */
  lookup?: LookupFn;
}

/** Build the resolver named by `GATEWAY_RESOLVER`. */
export function createResolver(config: Config, deps: ResolverDeps): Resolver {
  const logger = deps.logger.child({ resolver: config.gatewayResolver });
  switch (config.gatewayResolver) {
    case 'registry':
      if (!deps.view) throw new Error('the registry resolver needs a registry view');
      return createRegistryResolver(deps.view);
    case 'endpointslices':
      return createEndpointSliceResolver({
        namespace: config.podNamespace,
        serviceName: config.socketServiceName,
        socketPort: config.socketPort,
        staleMs: config.gatewayRegistryStaleMs,
        logger,
        ...(deps.kubeConfig ? { kubeConfig: deps.kubeConfig } : {}),
      });
    case 'dns':
      return createDnsResolver({ template: config.gatewayDnsTemplate, timeoutMs: config.gatewayUpstreamTimeoutMs, logger, ...(deps.lookup ? { lookup: deps.lookup } : {}) });
  }
}
