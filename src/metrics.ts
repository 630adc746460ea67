/** Prometheus metrics: one prom-client Registry per role, so `dev` can run every role in one process. */
import client from 'prom-client';

export { client as prom };
export type MetricsRegistry = client.Registry;

/**
 * prom-client's gauges that end in `_total`, which `promtool check metrics` rejects (a `_total` suffix means a
 * counter). Each is the sum over the `type` label of the same gauge without the suffix, which stays.
 */
const GAUGES_NAMED_LIKE_COUNTERS = ['rtc_nodejs_active_handles_total', 'rtc_nodejs_active_requests_total', 'rtc_nodejs_active_resources_total'];

/**
 * How often the event-loop delay histogram (`rtc_nodejs_eventloop_lag_p99_seconds` and its siblings) samples, in
 * ms. prom-client's default is 10: a timer that wakes an idle process 100 times a second, which costs 13–24 ms of
 * CPU per second in each pod on a virtual machine (a wake-up there is 130–240 µs; nginx, idle, costs 0). At 100 ms
 * an idle process spends about 2 ms per second on it, and the histogram still takes 10 samples a second: every
 * stall of 100 ms or more is seen, and shorter ones in proportion to their length (README "Metrics").
 */
export const EVENT_LOOP_SAMPLE_MS = 100;

/** A fresh registry with process metrics (prefixed by role) and a `role` default label. */
export function createMetricsRegistry(role: string, withProcessMetrics = true): client.Registry {
  const registry = new client.Registry();
  registry.setDefaultLabels({ role });
  if (withProcessMetrics) {
    client.collectDefaultMetrics({ register: registry, prefix: 'rtc_', eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
    for (const name of GAUGES_NAMED_LIKE_COUNTERS) registry.removeSingleMetric(name);
  }
  return registry;
}

/** Content type of the Prometheus text exposition format. */
export const METRICS_CONTENT_TYPE = client.Registry.PROMETHEUS_CONTENT_TYPE;

/** `rtc_registry_invalid_records_total` on `metrics`, read from the registry's own count at scrape time. */
export function registerRegistryMetrics(metrics: client.Registry, registry: { invalidRecords(): number }): void {
  new client.Counter({
    name: 'rtc_registry_invalid_records_total',
    help: 'Registry records skipped on read because they failed validation (each skipped read counts; the log names each pod id once)',
    registers: [metrics],
    collect() {
      this.reset();
      this.inc(registry.invalidRecords());
    },
  });
}
