/** Every environment variable of rtc-edge, parsed, typed and validated in one place. */
import os from 'node:os';
import net from 'node:net';
import { DNS1123_LABEL, DNS1123_SUBDOMAIN, DEFAULT_REDIS_PREFIX, POD_MAX_HEAD_BYTES } from './constants.js';
import { parseRedisUrl, withRedisPassword } from './registry/redis-url.js';
import { parseCidrList } from './cidr.js';
import { redactUrl, scrub, urlSecrets } from './redact.js';
import { availableCpus } from './cpus.js';

export type Role = 'gateway' | 'socket' | 'scaler' | 'dev' | 'status';
export type ResolverKind = 'registry' | 'endpointslices' | 'dns';
export type WorkloadKind = 'kubernetes' | 'local';
export type AssignStrategyKind = 'spread' | 'pack';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/** The typed configuration every role receives. */
export interface Config {
  gatewayPort: number;
  gatewayAdminPort: number;
  socketPort: number;
  adminPort: number;
  podName: string;
  podIp: string;
  podNamespace: string;
  redisUrl: string | undefined;
  redisPrefix: string;
  heartbeatMs: number;
  gatewayResolver: ResolverKind;
  gatewayDnsTemplate: string;
  socketServiceName: string;
  gatewayUpstreamTimeoutMs: number;
  gatewayHandshakeTimeoutMs: number;
  /** Gateway worker processes behind the one listen port (GATEWAY_WORKERS); 1 = the gateway is a single process. */
  gatewayWorkers: number;
  gatewayMaxConnections: number;
  gatewayMaxHeaderBytes: number;
  gatewayDrainMs: number;
  gatewayRegistryStaleMs: number;
  gatewayAssignStrategy: AssignStrategyKind;
  /** CIDRs the gateway may dial (`addr/prefix`); empty = any address. */
  gatewayPodCidrs: string[];
  gatewayTrustedProxies: string[];
  socketTrustedProxies: string[];
  scalerWorkload: WorkloadKind;
  socketWorkloadName: string;
  socketMinReplicas: number;
  socketMaxReplicas: number;
  socketTargetConnections: number;
  socketMaxPayloadBytes: number;
  socketMaxBackpressureBytes: number;
  socketIdleTimeoutS: number;
  socketHandler: string | undefined;
  socketUpgradeTimeoutMs: number;
  socketNotReadyMaxMs: number;
  /** How long a socket node keeps a key's claim after the key's last session closed (a reconnect keeps the key here). */
  socketKeyGraceMs: number;
  scalerLeaseName: string;
  scalerIntervalMs: number;
  scaleInStabilizationMs: number;
  scaleInMaxStep: number;
  /** Connections one placement key counts as in the scaler's deletion cost and cordon choice (README "Keys in the scaler"). */
  scalerKeyWeight: number;
  drainWindowMs: number;
  drainTimeoutMs: number;
  logLevel: LogLevel;
}

type Env = Record<string, string | undefined>;
type Parser<T> = (raw: string) => T | { error: string };

/** One literal holds every default (pino style); `dev` overrides a few below. */
export const DEFAULTS = {
  GATEWAY_PORT: '8080',
  GATEWAY_ADMIN_PORT: '9090',
  SOCKET_PORT: '8080',
  ADMIN_PORT: '9090',
  POD_NAMESPACE: 'rtc',
  REDIS_PREFIX: DEFAULT_REDIS_PREFIX,
  HEARTBEAT_MS: '2000',
  GATEWAY_RESOLVER: 'registry',
  GATEWAY_DNS_TEMPLATE: '{podId}.socket.rtc.svc.cluster.local:8080',
  SOCKET_SERVICE_NAME: 'socket',
  GATEWAY_UPSTREAM_TIMEOUT_MS: '5000',
  GATEWAY_HANDSHAKE_TIMEOUT_MS: '10000',
  GATEWAY_MAX_CONNECTIONS: '9500',
  GATEWAY_MAX_HEADER_BYTES: String(POD_MAX_HEAD_BYTES),
  GATEWAY_DRAIN_MS: '10000',
  GATEWAY_REGISTRY_STALE_MS: '30000',
  GATEWAY_ASSIGN_STRATEGY: 'pack',
  SCALER_WORKLOAD: 'kubernetes',
  SOCKET_WORKLOAD_NAME: 'socket',
  SOCKET_MIN_REPLICAS: '2',
  SOCKET_MAX_REPLICAS: '50',
  SOCKET_TARGET_CONNECTIONS: '1000',
  SOCKET_MAX_PAYLOAD_BYTES: '1048576',
  SOCKET_MAX_BACKPRESSURE_BYTES: '1048576',
  SOCKET_IDLE_TIMEOUT_S: '120',
  SOCKET_NOT_READY_MAX_MS: '60000',
  SOCKET_UPGRADE_TIMEOUT_MS: '3000',
  SOCKET_KEY_GRACE_MS: '5000',
  SCALER_LEASE_NAME: 'rtc-edge-scaler',
  SCALER_INTERVAL_MS: '5000',
  SCALE_IN_STABILIZATION_MS: '300000',
  SCALE_IN_MAX_STEP: '1',
  SCALER_KEY_WEIGHT: '10',
  DRAIN_WINDOW_MS: '60000',
  DRAIN_TIMEOUT_MS: '300000',
  LOG_LEVEL: 'info',
} as const satisfies Record<string, string>;

/**
 * Defaults that differ for `rtc-edge dev`: a laptop demo where a few hundred clients show scale-out, scale-in
 * follows within a minute of the load ending, and Ctrl-C returns within seconds. Any variable set wins.
 */
export const DEV_DEFAULTS: Partial<Record<keyof typeof DEFAULTS, string>> = {
  SCALER_WORKLOAD: 'local',
  SOCKET_TARGET_CONNECTIONS: '100',
  SCALER_INTERVAL_MS: '1000',
  SCALE_IN_STABILIZATION_MS: '30000',
  HEARTBEAT_MS: '1000',
  DRAIN_WINDOW_MS: '5000',
};

/** Variables whose userinfo is a credential: echoed redacted in configuration errors. */
const SECRET_URLS = new Set(['REDIS_URL']);

/** Thrown by loadConfig; `problems` names every bad variable. */
export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

const int = (min: number, max = Number.MAX_SAFE_INTEGER): Parser<number> => (raw) => {
  if (!/^-?\d+$/.test(raw.trim())) return { error: `expected an integer between ${min} and ${max}` };
  const n = Number(raw);
  return n >= min && n <= max ? n : { error: `expected an integer between ${min} and ${max}` };
};
const port: Parser<number> = (raw) => {
  const r = int(0, 65535)(raw);
  return typeof r === 'number' ? r : { error: 'expected a TCP port 0-65535 (0 = any free port)' };
};
const oneOf = <T extends string>(...values: T[]): Parser<T> => (raw) =>
  (values as string[]).includes(raw) ? (raw as T) : { error: `expected one of ${values.join(', ')}` };
const matching = (re: RegExp, what: string): Parser<string> => (raw) => (re.test(raw) ? raw : { error: `expected ${what}` });
const nonEmpty: Parser<string> = (raw) => (raw.length > 0 ? raw : { error: 'expected a non-empty string' });
const ipAddress: Parser<string> = (raw) => (net.isIP(raw) ? raw : { error: 'expected an IPv4 or IPv6 address' });
const redisUrl: Parser<string> = (raw) => {
  const problem = (url: string) => {
    try {
      parseRedisUrl(url);
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  };
  const found = problem(raw);
  if (found === undefined) return raw;
  // The parser may quote a fragment of the value; explain the redacted form instead, so no password is echoed.
  const shown = problem(redactUrl(raw)) ?? 'the user:password part is malformed (percent-encode reserved characters such as / @ : #)';
  return { error: `${scrub(shown, urlSecrets(raw))}; expected redis://[user:pass@]host:port[/db], rediss://…, redis+sentinel://h1:p1,h2:p2/<master> or redis+cluster://h1:p1,h2:p2` };
};
const cidrList: Parser<string[]> = (raw) => {
  try {
    return parseCidrList(raw);
  } catch (err) {
    return { error: `${(err as Error).message}; expected comma-separated CIDRs like 10.0.0.0/8,fd00::/8 (a bare address is /32 or /128)` };
  }
};
// No activation: with no pods there are no connections, so desired would stay 0 and /ws/assign answer 503 forever.
const minReplicas: Parser<number> = (raw) =>
  raw.trim() === '0' ? { error: 'must be at least 1: with 0 pods there are no connections to scale on, so nothing would ever start one and /ws/assign would answer 503 forever (scale-to-zero with activation is not supported)' } : int(1, 10_000)(raw);
const MAX_PORT = 65535;
const dnsTemplate: Parser<string> = (raw) => {
  const port = /:(\d{1,5})$/.exec(raw)?.[1];
  return raw.includes('{podId}') && port !== undefined && Number(port) >= 1 && Number(port) <= MAX_PORT ? raw : { error: 'expected a host template containing {podId} and ending in :<port> (1-65535)' };
};
const idleTimeout: Parser<number> = (raw) => {
  const n = int(0, 960)(raw);
  return typeof n === 'number' && (n === 0 || (n >= 8 && n % 4 === 0)) ? n : { error: 'expected 0 (off) or a multiple of 4 between 8 and 960 seconds' };
};

function defaultPodName(): string {
  const h = os.hostname().toLowerCase().replace(/[^a-z0-9-]/g, '-').replace(/^-+|-+$/g, '').slice(0, 63).replace(/-+$/, '');
  return h || 'rtc-edge';
}

function defaultPodIp(): string {
  for (const addrs of Object.values(os.networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

/**
 * Read and validate every variable. Throws ConfigError naming every bad variable at once.
 * `overrides` (used by `dev` and tests) win over `env`.
 */
export function loadConfig(env: Env = process.env, role: Role = 'gateway', overrides: Partial<Config> = {}): Config {
  const problems: string[] = [];
  const defaults: Record<string, string> = { ...DEFAULTS, ...(role === 'dev' ? DEV_DEFAULTS : {}) };
  function read<T>(name: string, parse: Parser<T>, fallback?: () => T): T {
    const raw = env[name];
    if (raw === undefined || raw === '') {
      if (name in defaults) return parse(defaults[name]!) as T;
      return fallback ? fallback() : (undefined as T);
    }
    const v = parse(raw);
    if (v !== null && typeof v === 'object' && 'error' in v) {
      problems.push(`${name}=${JSON.stringify(SECRET_URLS.has(name) ? redactUrl(raw) : raw)}: ${(v as { error: string }).error}`);
      return undefined as T;
    }
    return v as T;
  }

  // From a Secret (the chart's generated password); merged into REDIS_URL here, so it never sits in a ConfigMap.
  const redisPassword = read('REDIS_PASSWORD', nonEmpty);
  const cfg: Config = {
    gatewayPort: read('GATEWAY_PORT', port),
    gatewayAdminPort: read('GATEWAY_ADMIN_PORT', port),
    socketPort: read('SOCKET_PORT', port),
    adminPort: read('ADMIN_PORT', port),
    podName: read('POD_NAME', matching(DNS1123_LABEL, 'a DNS-1123 label (the pod name)'), defaultPodName),
    podIp: read('POD_IP', ipAddress, defaultPodIp),
    podNamespace: read('POD_NAMESPACE', matching(DNS1123_LABEL, 'a DNS-1123 label (a namespace)')),
    redisUrl: read('REDIS_URL', redisUrl),
    redisPrefix: read('REDIS_PREFIX', nonEmpty),
    heartbeatMs: read('HEARTBEAT_MS', int(100, 60_000)),
    gatewayResolver: read('GATEWAY_RESOLVER', oneOf<ResolverKind>('registry', 'endpointslices', 'dns')),
    gatewayDnsTemplate: read('GATEWAY_DNS_TEMPLATE', dnsTemplate),
    socketServiceName: read('SOCKET_SERVICE_NAME', matching(DNS1123_LABEL, 'a DNS-1123 label (a Service name)')),
    gatewayUpstreamTimeoutMs: read('GATEWAY_UPSTREAM_TIMEOUT_MS', int(1, 600_000)),
    gatewayHandshakeTimeoutMs: read('GATEWAY_HANDSHAKE_TIMEOUT_MS', int(100, 600_000)),
    // Unset: the CPUs this process may use (cgroup quota included); `dev` is one process by design.
    gatewayWorkers: read('GATEWAY_WORKERS', int(1, 256), () => (role === 'dev' ? 1 : availableCpus())),
    gatewayMaxConnections: read('GATEWAY_MAX_CONNECTIONS', int(1, 1_000_000)),
    gatewayMaxHeaderBytes: read('GATEWAY_MAX_HEADER_BYTES', int(1024, POD_MAX_HEAD_BYTES)),
    gatewayDrainMs: read('GATEWAY_DRAIN_MS', int(0, 3_600_000)),
    gatewayRegistryStaleMs: read('GATEWAY_REGISTRY_STALE_MS', int(0, 3_600_000)),
    gatewayAssignStrategy: read('GATEWAY_ASSIGN_STRATEGY', oneOf<AssignStrategyKind>('spread', 'pack')),
    gatewayPodCidrs: read('GATEWAY_POD_CIDRS', cidrList, () => []),
    gatewayTrustedProxies: read('GATEWAY_TRUSTED_PROXIES', cidrList, () => []),
    socketTrustedProxies: read('SOCKET_TRUSTED_PROXIES', cidrList, () => []),
    scalerWorkload: read('SCALER_WORKLOAD', oneOf<WorkloadKind>('kubernetes', 'local')),
    socketWorkloadName: read('SOCKET_WORKLOAD_NAME', matching(DNS1123_SUBDOMAIN, 'a Kubernetes object name (DNS-1123 subdomain)')),
    socketMinReplicas: read('SOCKET_MIN_REPLICAS', minReplicas),
    socketMaxReplicas: read('SOCKET_MAX_REPLICAS', int(1, 10_000)),
    socketTargetConnections: read('SOCKET_TARGET_CONNECTIONS', int(1, 10_000_000)),
    socketMaxPayloadBytes: read('SOCKET_MAX_PAYLOAD_BYTES', int(16, 64 * 1024 * 1024)),
    socketMaxBackpressureBytes: read('SOCKET_MAX_BACKPRESSURE_BYTES', int(1024, 256 * 1024 * 1024)),
    socketIdleTimeoutS: read('SOCKET_IDLE_TIMEOUT_S', idleTimeout),
    socketHandler: read('SOCKET_HANDLER', nonEmpty),
    socketUpgradeTimeoutMs: read('SOCKET_UPGRADE_TIMEOUT_MS', int(1, 600_000)),
    socketNotReadyMaxMs: read('SOCKET_NOT_READY_MAX_MS', int(1000, 3_600_000)),
    socketKeyGraceMs: read('SOCKET_KEY_GRACE_MS', int(0, 3_600_000)),
    scalerLeaseName: read('SCALER_LEASE_NAME', matching(DNS1123_SUBDOMAIN, 'a Kubernetes object name (DNS-1123 subdomain)')),
    scalerIntervalMs: read('SCALER_INTERVAL_MS', int(50, 3_600_000)),
    scaleInStabilizationMs: read('SCALE_IN_STABILIZATION_MS', int(0, 86_400_000)),
    scaleInMaxStep: read('SCALE_IN_MAX_STEP', int(1, 10_000)),
    scalerKeyWeight: read('SCALER_KEY_WEIGHT', int(0, 1_000_000)),
    drainWindowMs: read('DRAIN_WINDOW_MS', int(0, 3_600_000)),
    drainTimeoutMs: read('DRAIN_TIMEOUT_MS', int(0, 3_600_000)),
    logLevel: read('LOG_LEVEL', oneOf<LogLevel>('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent')),
  };

  // Cross-field checks only where both sides parsed.
  if (redisPassword !== undefined) {
    if (cfg.redisUrl) cfg.redisUrl = withRedisPassword(cfg.redisUrl, redisPassword);
    else if (env.REDIS_URL === undefined || env.REDIS_URL === '') problems.push('REDIS_PASSWORD is set but REDIS_URL is not: the password needs a Redis to go with');
  }
  if (cfg.socketMinReplicas !== undefined && cfg.socketMaxReplicas !== undefined && cfg.socketMinReplicas > cfg.socketMaxReplicas) {
    problems.push(`SOCKET_MIN_REPLICAS=${cfg.socketMinReplicas} is greater than SOCKET_MAX_REPLICAS=${cfg.socketMaxReplicas}`);
  }
  if (cfg.drainWindowMs !== undefined && cfg.drainTimeoutMs !== undefined && cfg.drainWindowMs > cfg.drainTimeoutMs) {
    problems.push(`DRAIN_WINDOW_MS=${cfg.drainWindowMs} is longer than DRAIN_TIMEOUT_MS=${cfg.drainTimeoutMs}: the drain would time out before every notice is sent`);
  }
  if (role === 'socket' && cfg.socketPort !== undefined && cfg.socketPort !== 0 && cfg.socketPort === cfg.adminPort) {
    problems.push(`SOCKET_PORT and ADMIN_PORT are both ${cfg.socketPort}: admin endpoints must not share the WebSocket port`);
  }
  if (role === 'dev' && cfg.gatewayWorkers !== undefined && cfg.gatewayWorkers > 1) {
    problems.push(`GATEWAY_WORKERS=${cfg.gatewayWorkers}: rtc-edge dev runs every role in one process; gateway workers need the gateway role (rtc-edge gateway)`);
  }
  if (role === 'gateway' && cfg.gatewayPort !== undefined && cfg.gatewayPort !== 0 && cfg.gatewayPort === cfg.gatewayAdminPort) {
    problems.push(`GATEWAY_PORT and GATEWAY_ADMIN_PORT are both ${cfg.gatewayPort}: /metrics and /api/* must not share the client-facing port`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return { ...cfg, ...overrides };
}
