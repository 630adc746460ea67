/** `registry` resolver (default): the pod's own heartbeat address, from the gateway's cached view. */
import type { RegistryView } from '../view.js';
import { Resolved, type Resolver } from './resolver.js';

/** Resolve pod ids from the registry view: unknown → 404, draining → 503, registry down too long → 503. */
export function createRegistryResolver(view: RegistryView): Resolver {
  return {
    kind: 'registry',
    resolve(podId) {
      if (view.state() === 'unavailable') return Resolved.REGISTRY_UNAVAILABLE;
      const pod = view.get(podId);
      if (!pod) return Resolved.NOT_FOUND;
      if (pod.draining) return Resolved.DRAINING;
      return { host: pod.ip, port: pod.port };
    },
    ready: () => view.ready(),
    close: async () => undefined,
  };
}
