/**
 * The admin port (ADMIN_PORT): `GET|POST /drain`, `/healthz`, `/readyz`, `/metrics`. A second uWS app on the
 * same event loop: no second HTTP stack, and no Node `http` request timeout (300 s by default, equal to
 * DRAIN_TIMEOUT_MS) that would cut the kubelet's preStop `/drain` request at the drain deadline.
 */
import type { Logger } from 'pino';
import type { RegistryStatus } from '../src/registry/registry.js';
import { METRICS_CONTENT_TYPE, type MetricsRegistry } from '../src/metrics.js';
import type { DrainResult } from './drain.js';
import { errorReply, jsonReply, type Reply } from '../src/http.js';
import { replyAsync, writeReply } from './http.js';
import { uWS, type HttpResponse, type TemplatedApp } from './uws.js';

/** What the admin endpoints read from the node. */
export interface AdminNode {
  readonly podId: string;
  connections(): number;
  draining(): boolean;
  /** The scaler is about to remove this pod (bounded): not ready, still serving. */
  retiring(): boolean;
  /** No new clients are assigned here. */
  cordoned(): boolean;
  registryStatus(): RegistryStatus;
  drain(): Promise<DrainResult>;
}

type Method = 'get' | 'post';

/** Build the uWS app of the admin port (not listening yet). */
export function createAdminApp(node: AdminNode, metrics: MetricsRegistry, logger: Logger): TemplatedApp {
  const app = uWS.App();
  const onError = (err: unknown) => logger.error({ err }, 'admin request failed');

  const route = (path: string, methods: Method[], answer: (res: HttpResponse) => void) => {
    app.any(path, (res, req) => {
      try {
        if (!(methods as string[]).includes(req.getMethod())) {
          writeReply(res, errorReply('EDGE_ERR_METHOD_NOT_ALLOWED', undefined, { allow: methods.join(', ').toUpperCase() }));
          return;
        }
        answer(res);
      } catch (err) {
        onError(err);
        writeReply(res, errorReply('EDGE_ERR_INTERNAL'));
      }
    });
  };

  route('/drain', ['get', 'post'], (res) => replyAsync(res, async () => jsonReply(200, await node.drain()), onError));
  route('/healthz', ['get'], (res) =>
    writeReply(
      res,
      jsonReply(200, { status: 'ok', podId: node.podId, connections: node.connections(), draining: node.draining(), cordoned: node.cordoned(), retiring: node.retiring(), registry: node.registryStatus() }),
    ),
  );
  route('/readyz', ['get'], (res) =>
    writeReply(res, node.draining() ? errorReply('EDGE_ERR_NODE_DRAINING') : node.retiring() ? errorReply('EDGE_ERR_NODE_RETIRING') : jsonReply(200, { ready: true, podId: node.podId })),
  );
  route('/metrics', ['get'], (res) =>
    replyAsync(res, async (): Promise<Reply> => ({ status: 200, body: await metrics.metrics(), contentType: METRICS_CONTENT_TYPE }), onError),
  );
  app.any('/*', (res) => {
    try {
      writeReply(res, errorReply('EDGE_ERR_NOT_FOUND'));
    } catch (err) {
      onError(err);
    }
  });
  return app;
}
