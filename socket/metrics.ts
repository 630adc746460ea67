/** The socket node's Prometheus metrics, on one prom-client registry per node. */
import { prom, type MetricsRegistry } from '../src/metrics.js';

/** Live values the gauges read at scrape time (no per-event gauge updates). */
export interface GaugeSources {
  connections(): number;
  draining(): boolean;
  registryUp(): boolean;
}

/** Every metric of a socket node. */
export function createSocketMetrics(registry: MetricsRegistry, sources: GaugeSources) {
  const registers = [registry];
  /** A gauge whose value `read` gives at scrape time. */
  const sampled = (name: string, help: string, read: () => number) =>
    new prom.Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(read());
      },
    });
  return {
    connections: sampled('rtc_socket_connections', 'Open WebSocket connections', () => sources.connections()),
    connectionsOpened: new prom.Counter({ name: 'rtc_socket_connections_opened_total', help: 'WebSocket connections opened', registers }),
    connectionsClosed: new prom.Counter({ name: 'rtc_socket_connections_closed_total', help: 'WebSocket connections closed', registers }),
    upgradesRejected: new prom.Counter({
      name: 'rtc_socket_upgrades_rejected_total',
      help: 'WebSocket upgrades refused, by error code',
      labelNames: ['error'] as const,
      registers,
    }),
    messagesReceived: new prom.Counter({
      name: 'rtc_socket_messages_received_total',
      help: 'Frames received, by kind (text or binary)',
      labelNames: ['kind'] as const,
      registers,
    }),
    messageErrors: new prom.Counter({
      name: 'rtc_socket_message_errors_total',
      help: 'Client frames answered with an error message or close, by error code',
      labelNames: ['error'] as const,
      registers,
    }),
    backpressureDropped: new prom.Counter({
      name: 'rtc_socket_backpressure_closed_total',
      help: 'Connections closed because a send hit SOCKET_MAX_BACKPRESSURE_BYTES',
      registers,
    }),
    handlerErrors: new prom.Counter({ name: 'rtc_socket_handler_errors_total', help: 'Application handler throws and rejections', registers }),
    draining: sampled('rtc_socket_draining', '1 while the node drains', () => (sources.draining() ? 1 : 0)),
    drainNotices: new prom.Counter({ name: 'rtc_socket_drain_notices_total', help: 'Reconnect notices sent (each followed by close 1012)', registers }),
    drainStarted: new prom.Gauge({ name: 'rtc_socket_drain_started_timestamp_seconds', help: 'Unix time the running (or last) drain started; 0 before any drain', registers }),
    drainTimeout: new prom.Gauge({ name: 'rtc_socket_drain_timeout_seconds', help: 'DRAIN_TIMEOUT_MS in seconds: a drain answers /drain after at most this long', registers }),
    drainDuration: new prom.Gauge({ name: 'rtc_socket_drain_duration_seconds', help: 'Duration of the last drain', registers }),
    drainRemaining: new prom.Gauge({ name: 'rtc_socket_drain_remaining', help: 'Connections still open when the last drain answered', registers }),
    heartbeats: new prom.Counter({
      name: 'rtc_socket_heartbeats_total',
      help: 'Registry heartbeats, by result (ok or error)',
      labelNames: ['result'] as const,
      registers,
    }),
    heartbeatDuration: new prom.Histogram({
      name: 'rtc_socket_heartbeat_duration_seconds',
      help: 'Time of one registry heartbeat (building the record and the registry write)',
      buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    }),
    registryUp: sampled('rtc_socket_registry_up', '1 while the last registry heartbeat succeeded', () => (sources.registryUp() ? 1 : 0)),
  };
}

/** The metric set of one node. */
export type SocketMetrics = ReturnType<typeof createSocketMetrics>;
