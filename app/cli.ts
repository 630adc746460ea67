#!/usr/bin/env node
/** `rtc-edge <role>`: gateway, socket, scaler, dev (all in one process) or status. */
import cluster from 'node:cluster';
import { parseArgs } from 'node:util';
import { WORKER_SLOT_ENV } from '../gateway/worker-messages.js';
import { ConfigError, loadConfig, type Role } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import type { RoleHandle } from '../src/role.js';

const HELP = `Usage: rtc-edge <role> [options]

Roles:
  gateway   HTTP gateway: /ws/<podId>/connect proxying, /ws/assign, /healthz, /readyz on GATEWAY_PORT;
            status page, /api/*, /metrics on GATEWAY_ADMIN_PORT (default 9090); GATEWAY_WORKERS
            processes behind the one port (default: the CPUs available)
  socket    uWebSockets.js socket node: /ws/connect, admin /drain /healthz /readyz /metrics
  scaler    deletion-cost aware autoscaler for the socket Deployment
  dev       the whole stack in one process (memory registry, local workload); one port
            serves clients and the admin routes
  status    print the pods and recent events of a running gateway
            --url <gateway admin url>: GATEWAY_ADMIN_PORT of a gateway (http://<host>:9090),
                  the one port of dev (default http://127.0.0.1:8080)
            --watch  --interval <ms>
            --key <key>: the pod that owns this placement key (exit 3 when none does)

Every setting is an environment variable; see README.md. A bad value stops start-up
with exit code 2 and one message naming every bad variable.

Options:
  -h, --help     show this help
  -v, --version  show the version
`;

const ROLES = ['gateway', 'socket', 'scaler', 'dev', 'status'] as const;

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
      url: { type: 'string' },
      watch: { type: 'boolean' },
      interval: { type: 'string' },
      key: { type: 'string' },
    },
  });
  } catch (err) {
    process.stderr.write(`rtc-edge: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.version) {
    const { createRequire } = await import('node:module');
    const pkg = createRequire(import.meta.url)('../../package.json') as { version: string };
    process.stdout.write(`${pkg.version}\n`);
    return 0;
  }
  const role = positionals[0] as Role | undefined;
  if (values.help || !role) {
    process.stdout.write(HELP);
    return role || values.help ? 0 : 1;
  }
  if (!(ROLES as readonly string[]).includes(role)) {
    process.stderr.write(`rtc-edge: unknown role "${role}"; expected one of ${ROLES.join(', ')}\n\n${HELP}`);
    return 1;
  }
  if (role === 'status') {
    const { runStatus } = await import('./status-cli.js');
    return runStatus({ url: values.url ?? 'http://127.0.0.1:8080', watch: values.watch ?? false, intervalMs: Number(values.interval ?? 2000), ...(values.key !== undefined ? { key: values.key } : {}) });
  }

  let config;
  try {
    config = loadConfig(process.env, role);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`rtc-edge ${role}: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const gatewayWorkers = role === 'gateway' && config.gatewayWorkers > 1;
  const worker = gatewayWorkers && cluster.isWorker ? process.env[WORKER_SLOT_ENV] : undefined;
  const logger = createLogger(config.logLevel).child(worker === undefined ? { role } : { role, worker: Number(worker) });
  // A stray rejection inside a library (a Redis or Kubernetes client callback) must not take down every
  // WebSocket this process holds: log it loudly instead of letting Node 20 exit.
  process.on('unhandledRejection', (err) => logger.error({ err }, 'unhandled promise rejection (kept running)'));
  // Listening from before start-up: a signal just after the role announced itself (dev's banner) found no
  // listener yet and took Node's default action, an exit by signal without a drain. One during start-up is kept.
  let early: NodeJS.Signals | undefined;
  let onSignal: (signal: NodeJS.Signals) => void = (signal) => void (early ??= signal);
  process.on('SIGTERM', (signal) => onSignal(signal));
  // Ctrl-C reaches a worker too, but the primary orders the drain of all of them as one.
  process.on('SIGINT', worker === undefined ? (signal) => onSignal(signal) : () => undefined);
  let handle: RoleHandle;
  // A worker drains when the primary says so (or is gone), through the same stop path as a signal.
  let requestStop: (signal: NodeJS.Signals) => void = () => undefined;
  try {
    if (gatewayWorkers && cluster.isPrimary) handle = await (await import('../gateway/workers.js')).startWorkers(config, { logger });
    else if (gatewayWorkers) handle = await (await import('../gateway/worker.js')).startWorker(config, { logger }, () => requestStop('SIGTERM'));
    else if (role === 'gateway') handle = await (await import('../gateway/index.js')).start(config, { logger });
    else if (role === 'socket') handle = await (await import('../socket/index.js')).start(config, { logger });
    else if (role === 'scaler') handle = await (await import('../scaler/index.js')).start(config, { logger });
    else handle = await (await import('./dev.js')).start(config, { logger });
  } catch (err) {
    logger.fatal({ err }, 'start-up failed');
    return 1;
  }

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: exiting now');
        resolve(1);
        return;
      }
      stopping = true;
      logger.info({ signal }, 'shutting down');
      handle.close().then(
        () => resolve(0),
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    onSignal = stop;
    requestStop = (signal) => {
      if (!stopping) stop(signal);
    };
    if (early) stop(early);
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Roles close their own handles; anything left (a stuck socket) must not keep a stopped process alive.
    setTimeout(() => process.exit(code), 1000).unref();
  },
  (err: unknown) => {
    process.stderr.write(`rtc-edge: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);
