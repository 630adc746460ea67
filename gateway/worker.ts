/**
 * One gateway worker process (GATEWAY_WORKERS > 1, forked by gateway/workers.ts): a full gateway on the shared
 * client-facing port, with its own descriptor budget, registry view and pub/sub. It answers the primary's metrics
 * requests, follows its drain order, and drains by itself when the primary is gone.
 */
import type { Config } from '../src/config.js';
import type { RoleDeps } from '../src/role.js';
import { start, type GatewayHandle } from './index.js';
import { WORKER_LOAD_REPORT_MS } from './constants.js';
import { isMessage, type AcceptingMessage, type AcceptOrder, type DrainMessage, type GroupMessage, type LoadMessage, type MetricsReply, type MetricsRequest, type ToPrimary, type UpMessage } from './worker-messages.js';

function send(message: ToPrimary): void {
  // The channel closes when the primary dies; the 'disconnect' handler drains this worker then.
  if (process.connected) process.send!(message);
}

/**
 * Start this worker's gateway and wire it to the primary; `stop` is called when the primary orders the drain
 * (SIGTERM reached it) or is gone, and must close the returned handle (the CLI's own stop path).
 */
export async function startWorker(config: Config, deps: RoleDeps, stop: () => void): Promise<GatewayHandle> {
  let allUp = false;
  let handle: GatewayHandle | undefined;
  process.on('message', (m: unknown) => {
    if (isMessage<GroupMessage>(m, 'rtc-edge:workers')) allUp = m.allUp;
    else if (isMessage<DrainMessage>(m, 'rtc-edge:drain')) stop();
    else if (isMessage<AcceptOrder>(m, 'rtc-edge:accept') && handle) {
      void handle.setAccepting(m.on).then((on) => send({ type: 'rtc-edge:accepting', on } satisfies AcceptingMessage));
    } else if (isMessage<MetricsRequest>(m, 'rtc-edge:metrics?') && handle) {
      const { id } = m;
      handle.metrics.getMetricsAsJSON().then(
        (metrics) => send({ type: 'rtc-edge:metrics', id, metrics } satisfies MetricsReply),
        (err: unknown) => deps.logger.error({ err }, 'collecting metrics for the primary failed'),
      );
    }
  });
  process.on('disconnect', () => {
    deps.logger.warn('the gateway primary process is gone: draining this worker');
    stop();
  });
  handle = await start(config, { ...deps, worker: { allUp: () => allUp } });
  send({ type: 'rtc-edge:worker-up', port: handle.port } satisfies UpMessage);
  // The primary balances accepts by these numbers (gateway/workers.ts).
  let reported = 0;
  const gateway = handle;
  setInterval(() => {
    const open = gateway.load();
    if (open === reported) return;
    reported = open;
    send({ type: 'rtc-edge:load', open } satisfies LoadMessage);
  }, WORKER_LOAD_REPORT_MS).unref();
  return handle;
}
