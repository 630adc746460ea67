/** Prometheus metrics of the scaler role. */
import { prom, type MetricsRegistry } from '../src/metrics.js';

/** The scaler's instruments, registered on one role registry. */
export interface ScalerMetrics {
  readonly registry: MetricsRegistry;
  desiredReplicas: prom.Gauge;
  currentReplicas: prom.Gauge;
  totalConnections: prom.Gauge;
  cordonedPods: prom.Gauge;
  isLeader: prom.Gauge;
  decisions: prom.Counter<'action' | 'reason'>;
  holds: prom.Counter<'reason'>;
  scaleOperations: prom.Counter<'direction'>;
  apiErrors: prom.Counter<'status' | 'verb' | 'resource'>;
  victims: prom.Counter<'honored'>;
  deletionCostPatches: prom.Counter;
  leaderTransitions: prom.Counter<'event'>;
}

/** Create the instruments on `registry`. */
export function createScalerMetrics(registry: MetricsRegistry): ScalerMetrics {
  const r = [registry];
  const victims = new prom.Counter({ name: 'rtc_scaler_scale_in_victims_total', help: 'pods removed by a scale-in, honored="true" when the pod was among the least-loaded', labelNames: ['honored'], registers: r });
  // Both children exist at 0 from the start: increase() ignores the sample a series first appears with.
  victims.labels('true').inc(0);
  victims.labels('false').inc(0);
  return {
    registry,
    // Registered only while leading (showTickGauges): a standby's last values would double-count on dashboards.
    desiredReplicas: new prom.Gauge({ name: 'rtc_scaler_desired_replicas', help: 'clamp(ceil(connections / SOCKET_TARGET_CONNECTIONS), min, max) at the last tick (leader only)', registers: [] }),
    currentReplicas: new prom.Gauge({ name: 'rtc_scaler_current_replicas', help: 'spec.replicas of the socket workload at the last tick (leader only)', registers: [] }),
    totalConnections: new prom.Gauge({ name: 'rtc_scaler_connections', help: 'connections over live registry entries at the last tick (leader only)', registers: [] }),
    cordonedPods: new prom.Gauge({ name: 'rtc_scaler_cordoned_pods', help: 'socket pods carrying the cordon mark as of the last tick that wrote the marks (leader only)', registers: [] }),
    isLeader: new prom.Gauge({ name: 'rtc_scaler_leader', help: '1 while this replica holds the scaler Lease and acts', registers: r }),
    decisions: new prom.Counter({ name: 'rtc_scaler_decisions_total', help: 'policy decisions by action and reason (one per tick while leading)', labelNames: ['action', 'reason'], registers: r }),
    holds: new prom.Counter({ name: 'rtc_scaler_holds_total', help: 'ticks that held the replica count because data was missing or a change was blocked', labelNames: ['reason'], registers: r }),
    scaleOperations: new prom.Counter({ name: 'rtc_scaler_scale_operations_total', help: 'scale subresource changes made, by direction', labelNames: ['direction'], registers: r }),
    apiErrors: new prom.Counter({ name: 'rtc_scaler_api_errors_total', help: 'failed Kubernetes API requests by HTTP status (0 = no answer)', labelNames: ['status', 'verb', 'resource'], registers: r }),
    victims,
    deletionCostPatches: new prom.Counter({ name: 'rtc_scaler_deletion_cost_patches_total', help: 'pod-deletion-cost annotation writes', registers: r }),
    leaderTransitions: new prom.Counter({ name: 'rtc_scaler_leader_transitions_total', help: 'Lease acquired / lost by this replica', labelNames: ['event'], registers: r }),
  };
}

/** Export the last-tick gauges (desired, current, connections, cordoned) only while leading; a standby drops them and their values. */
export function showTickGauges(m: ScalerMetrics, leading: boolean): void {
  for (const g of [m.desiredReplicas, m.currentReplicas, m.totalConnections, m.cordonedPods]) {
    const name = (g as unknown as { name: string }).name;
    const shown = m.registry.getSingleMetric(name) !== undefined;
    if (leading && !shown) m.registry.registerMetric(g);
    else if (!leading && shown) {
      m.registry.removeSingleMetric(name);
      g.reset();
    }
  }
}
