/**
 * `rtc-edge dev` (what `npm start` runs): the whole stack in one process. A memory registry (Redis when REDIS_URL
 * is set), the scaler with the `local` workload (socket nodes started in-process on loopback ports), and the
 * gateway on GATEWAY_PORT, which in dev alone also serves the admin routes (status page, /api/*, /metrics). close() stops the scaler, drains every socket node (clients get `reconnect`), then
 * stops the gateway and the registry.
 */
import type { Config } from '../src/config.js';
import { ASSIGN_PATH } from '../src/constants.js';
import { createRegistry } from '../src/registry/index.js';
import type { Registry } from '../src/registry/registry.js';
import type { RoleDeps, RoleHandle } from '../src/role.js';
import type { Workload } from '../scaler/workload/workload.js';

/** Socket nodes listen and register on loopback; the banner's URLs use it too. */
export const DEV_HOST = '127.0.0.1';

/** A running dev stack. */
export interface DevHandle extends RoleHandle {
  /** Bound gateway port. */
  readonly port: number;
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  readonly registry: Registry;
  readonly workload: Workload;
}

/** Dependencies of the dev composition. */
export interface DevDeps extends RoleDeps {
  /** Receives the start-up banner (default: stderr, so stdout stays JSON log lines). */
  banner?: (text: string) => void;
  /** Gateway listen address (default: every interface, like `rtc-edge gateway`). */
  host?: string;
}

/** The human start-up banner: where to look and one command to try. */
export function devBanner(url: string, config: Config, registryKind: string): string {
  return [
    '',
    `rtc-edge dev is running: gateway, scaler (local workload, ${config.socketMinReplicas}-${config.socketMaxReplicas} socket nodes, target ${config.socketTargetConnections} connections each), ${registryKind} registry`,
    '',
    `  Status page     ${url}/`,
    `  Assign          ${url}${ASSIGN_PATH}`,
    `  Try a client    node --import tsx examples/client.ts --url ${url}`,
    `  Drive load      npm run load -- --clients 500 --duration 60s --url ${url}`,
    `  Terminal view   npx rtc-edge status --url ${url} --watch`,
    '',
    `In dev one port serves clients and the admin routes (status page, /api/*, /metrics). \`rtc-edge gateway\` serves only /ws/*, /healthz and /readyz on GATEWAY_PORT and the admin routes on GATEWAY_ADMIN_PORT (default 9090).`,
    '',
    `Scale-in waits ${config.scaleInStabilizationMs / 1000}s (SCALE_IN_STABILIZATION_MS). Ctrl-C drains the socket nodes over ${config.drainWindowMs / 1000}s (DRAIN_WINDOW_MS), then exits.`,
    '',
  ].join('\n');
}

/** Start the stack. */
export async function start(config: Config, deps: DevDeps): Promise<DevHandle> {
  const logger = deps.logger;
  const ownsRegistry = !deps.registry;
  const registry = deps.registry ?? createRegistry(config, logger);
  // Socket nodes report the address the gateway dials; in dev that is loopback, whatever POD_IP detection found.
  const devConfig: Config = { ...config, scalerWorkload: 'local', podIp: DEV_HOST };
  const stops: Array<{ name: string; close: () => Promise<void> }> = [];
  const stopAll = async () => {
    for (const s of stops.splice(0).reverse()) {
      try {
        await s.close();
      } catch (err) {
        logger.error({ err, part: s.name }, 'dev: stop failed');
      }
    }
    if (ownsRegistry) await registry.close();
  };

  try {
    const scaler = await import('../scaler/index.js');
    const gateway = await import('../gateway/index.js');

    // Gateway first: a busy GATEWAY_PORT fails start-up before any socket node starts.
    const gw = await gateway.start(devConfig, { logger, registry, singlePort: true, ...(deps.host ? { host: deps.host } : {}) });
    stops.push({ name: 'gateway', close: () => gw.close() });
    // The scaler owns the local workload: its close() stops the loop, then drains and stops every socket node.
    // It closes before the gateway so the reconnect notices still travel through the proxied connections.
    const sc = await scaler.start(devConfig, { logger, registry, admin: false });
    stops.push({ name: 'scaler', close: () => sc.close() });
    const workload = sc.workload;

    const url = `http://${DEV_HOST}:${gw.port}`;
    logger.info({ url, statusPage: `${url}/`, assign: `${url}${ASSIGN_PATH}`, registry: registry.kind }, 'dev stack ready');
    (deps.banner ?? ((t: string) => process.stderr.write(t)))(devBanner(url, devConfig, registry.kind));

    let closing: Promise<void> | undefined;
    return {
      port: gw.port,
      url,
      registry,
      workload,
      close() {
        closing ??= (async () => {
          logger.info('dev: stopping: scaler, then drain and stop the socket nodes, then the gateway');
          await stopAll();
          logger.info('dev: stopped');
        })();
        return closing;
      },
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
