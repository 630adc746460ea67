/** Prometheus metrics: one prom-client Registry per role, so `dev` can run every role in one process. */
import client from 'prom-client';

export { client as prom };
export type MetricsRegistry = client.Registry;

/** A fresh registry with process metrics (prefixed by role) and a `role` default label. */
export function createMetricsRegistry(role: string, withProcessMetrics = true): client.Registry {
  const registry = new client.Registry();
  registry.setDefaultLabels({ role });
  if (withProcessMetrics) client.collectDefaultMetrics({ register: registry, prefix: 'rtc_' });
  return registry;
}

/** Content type of the Prometheus text exposition format. */
export const METRICS_CONTENT_TYPE = client.Registry.PROMETHEUS_CONTENT_TYPE;
