/** Pod resolution: one small interface, three backends (`registry`, `endpointslices`, `dns`), one factory. */
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Config } from '../../src/config.js';
import type { RegistryView } from '../view.js';
import { createDnsResolver, type LookupFn } from './dns.js';
import { lazyResolver } from './lazy.js';
import { createRegistryResolver } from './registry.js';
import { withPodCidrs } from './pod-cidrs.js';
import type { Resolver } from './resolver.js';

export * from './resolver.js';
export type { LookupFn } from './dns.js';
export { withPodCidrs } from './pod-cidrs.js';

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

/** Build the resolver named by `GATEWAY_RESOLVER`, limited to GATEWAY_POD_CIDRS when that is set. */
export function createResolver(config: Config, deps: ResolverDeps): Resolver {
  const logger = deps.logger.child({ resolver: config.gatewayResolver });
  return withPodCidrs(createBackend(config, deps, logger), config.gatewayPodCidrs ?? [], logger);
}

function createBackend(config: Config, deps: ResolverDeps, logger: Logger): Resolver {
  switch (config.gatewayResolver) {
    case 'registry':
      if (!deps.view) throw new Error('the registry resolver needs a registry view');
      return createRegistryResolver(deps.view);
    case 'endpointslices':
      // @kubernetes/client-node is most of an idle gateway's memory: only this resolver loads it.
      return lazyResolver('endpointslices', async () => (await import('./endpointslices.js')).createEndpointSliceResolver({
        namespace: config.podNamespace,
        serviceName: config.socketServiceName,
        socketPort: config.socketPort,
        staleMs: config.gatewayRegistryStaleMs,
        logger,
        ...(deps.kubeConfig ? { kubeConfig: deps.kubeConfig } : {}),
      }));
    case 'dns':
      return createDnsResolver({ template: config.gatewayDnsTemplate, timeoutMs: config.gatewayUpstreamTimeoutMs, logger, ...(deps.lookup ? { lookup: deps.lookup } : {}) });
  }
}
