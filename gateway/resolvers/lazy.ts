/** A resolver whose backend module is imported when the gateway starts it, so its dependencies load only in the mode that uses them. */
import type { ResolverKind } from '../../src/config.js';
import type { Resolution, Resolver } from './resolver.js';

/** Wrap `load` (a dynamic import that builds the backend); `ready()` waits for it, and fails start-up if it fails. */
export function lazyResolver(kind: ResolverKind, load: () => Promise<Resolver>): Resolver {
  let backend: Resolver | undefined;
  const loading = load().then((r) => (backend = r));
  // ready() reports a failed import; until then nobody else must see it as an unhandled rejection.
  loading.catch(() => undefined);
  return {
    kind,
    resolve: (podId): Resolution | Promise<Resolution> => (backend ? backend.resolve(podId) : loading.then((r) => r.resolve(podId))),
    ready: () => loading.then((r) => r.ready()),
    async close() {
      const r = await loading.catch(() => undefined);
      await r?.close();
    },
  };
}
