/** The scaler's admin server on ADMIN_PORT: /healthz (fails when the loop stalls) and /metrics. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { errorReply, jsonReply, sendReply } from '../src/http.js';
import { METRICS_CONTENT_TYPE, type MetricsRegistry } from '../src/metrics.js';
import { HEALTH_STALL_GRACE_MS, HEALTH_STALL_INTERVALS } from './constants.js';

/** What the admin endpoints read from the scaler. */
export interface ScalerAdminDeps {
  port: number;
  /** Listen address (default all interfaces). */
  host: string | undefined;
  intervalMs: number;
  now: () => number;
  /** When the last tick completed. */
  lastTickAt: () => number;
  isLeader: () => boolean;
  identity: string;
  workloadKind: string;
  metricsRegistry: MetricsRegistry;
  logger: Logger;
}

/** A listening admin server. */
export interface ScalerAdmin {
  readonly port: number;
  close(): Promise<void>;
}

/** Listen on the admin port; rejects when the port cannot be bound. */
export async function startScalerAdmin(deps: ScalerAdminDeps): Promise<ScalerAdmin> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendReply(res, errorReply('EDGE_ERR_METHOD_NOT_ALLOWED'));
    } else if (path === '/healthz') {
      const lastTickAt = deps.lastTickAt();
      const stalled = deps.now() - lastTickAt > HEALTH_STALL_INTERVALS * deps.intervalMs + HEALTH_STALL_GRACE_MS;
      sendReply(res, jsonReply(stalled ? 503 : 200, { status: stalled ? 'stalled' : 'ok', leader: deps.isLeader(), identity: deps.identity, workload: deps.workloadKind, lastTickAt }));
    } else if (path === '/metrics') {
      deps.metricsRegistry.metrics().then(
        (text) => sendReply(res, { status: 200, body: text, contentType: METRICS_CONTENT_TYPE }),
        (err: unknown) => {
          deps.logger.error({ err }, 'metrics collection failed');
          sendReply(res, errorReply('EDGE_ERR_INTERNAL'));
        },
      );
    } else {
      sendReply(res, errorReply('EDGE_ERR_NOT_FOUND'));
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(deps.port, deps.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
