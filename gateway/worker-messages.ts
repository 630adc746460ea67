/** The IPC messages between the gateway's primary process and its workers (GATEWAY_WORKERS > 1). */
import type { MetricsRegistry } from '../src/metrics.js';

/** prom-client's JSON form of a registry's metrics. */
export type MetricsJson = Awaited<ReturnType<MetricsRegistry['getMetricsAsJSON']>>;

/** Worker → primary: listening on the shared port and serving. */
export interface UpMessage {
  type: 'rtc-edge:worker-up';
  port: number;
}
/** Primary → worker: whether every worker is up (each worker's /readyz needs all of them). */
export interface GroupMessage {
  type: 'rtc-edge:workers';
  allUp: boolean;
}
/** Primary → worker: send your metrics (for the admin port's aggregated /metrics). */
export interface MetricsRequest {
  type: 'rtc-edge:metrics?';
  id: number;
}
/** Worker → primary: the answer to a MetricsRequest (prom-client's JSON form). */
export interface MetricsReply {
  type: 'rtc-edge:metrics';
  id: number;
  metrics: MetricsJson;
}
/** Worker → primary: the client connections this worker holds now (sent when it changed, every WORKER_LOAD_REPORT_MS). */
export interface LoadMessage {
  type: 'rtc-edge:load';
  open: number;
}
/** Primary → worker: accept new connections on the shared port, or stop for now (accept balancing). */
export interface AcceptOrder {
  type: 'rtc-edge:accept';
  on: boolean;
}
/** Worker → primary: the order is carried out; whether this worker accepts now. */
export interface AcceptingMessage {
  type: 'rtc-edge:accepting';
  on: boolean;
}
/** Primary → worker: SIGTERM arrived; run the paced drain and exit. */
export interface DrainMessage {
  type: 'rtc-edge:drain';
}

export type ToPrimary = UpMessage | MetricsReply | LoadMessage | AcceptingMessage;
export type ToWorker = GroupMessage | MetricsRequest | DrainMessage | AcceptOrder;

/** The environment variable that tells a forked worker its slot (0-based, stable across restarts). */
export const WORKER_SLOT_ENV = 'RTC_EDGE_GATEWAY_WORKER';

/** True when `m` is an IPC message of this protocol with type `type`. */
export function isMessage<T extends ToPrimary | ToWorker>(m: unknown, type: T['type']): m is T {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === type;
}
