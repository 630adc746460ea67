/** Gateway Prometheus metrics. Hot-path updates are O(1) and allocation-free (label children are cached). */
import { prom, type MetricsRegistry } from '../src/metrics.js';
import { HANDSHAKE_BUCKETS_S, PREINITIALIZED_UPGRADE_CODES } from './constants.js';

/** The gateway's metric handles. */
export interface GatewayMetrics {
  readonly registry: MetricsRegistry;
  /** Count one upgrade attempt by the HTTP status it ended with (101 = proxied). */
  upgrade(code: number): void;
  /** Upstream handshake latency (upgrade request parsed → 101 forwarded), seconds. */
  handshake(seconds: number): void;
  /** A proxied connection opened (+1) or closed (-1). */
  active(delta: 1 | -1): void;
  /** Bytes relayed (client socket, handshake included) since the last count of this connection. */
  bytes(fromClient: number, toClient: number): void;
  /** A plain HTTP request by route and status. */
  request(route: string, code: number): void;
  /** accept()/connect() failed for lack of descriptors. */
  fdExhausted(where: 'accept' | 'connect'): void;
  /** The effective GATEWAY_MAX_CONNECTIONS (lowered to fit the descriptor limit), for limit alerts. */
  maxConnections(limit: number): void;
}

/**
 * Create the gateway metrics on `registry`; `registryState` reports the registry view (0 fresh, 1 stale,
 * 2 unavailable); `countLiveBytes` adds what live connections relayed so far, at scrape time.
 */
export function createGatewayMetrics(registry: MetricsRegistry, registryState: () => number, countLiveBytes: () => void = () => undefined): GatewayMetrics {
  const upgrades = new prom.Counter({ name: 'rtc_gateway_upgrades_total', help: 'WebSocket upgrade requests by the HTTP status they ended with (101 = proxied)', labelNames: ['code'], registers: [registry] });
  const requests = new prom.Counter({ name: 'rtc_gateway_http_requests_total', help: 'Plain HTTP requests by route and status', labelNames: ['route', 'code'], registers: [registry] });
  const handshake = new prom.Histogram({ name: 'rtc_gateway_handshake_seconds', help: 'Upstream WebSocket handshake latency: upgrade request parsed to 101 forwarded', buckets: HANDSHAKE_BUCKETS_S, registers: [registry] });
  const active = new prom.Gauge({ name: 'rtc_gateway_active_connections', help: 'Proxied WebSocket connections currently open', registers: [registry] });
  const bytes = new prom.Counter({ name: 'rtc_gateway_relayed_bytes_total', help: 'Bytes relayed through proxied connections, live ones included (client side, handshake included)', labelNames: ['direction'], registers: [registry], collect: countLiveBytes });
  const fd = new prom.Counter({ name: 'rtc_gateway_fd_exhausted_total', help: 'accept() or upstream connect() failures for lack of file descriptors (EMFILE/ENFILE)', labelNames: ['where'], registers: [registry] });
  const max = new prom.Gauge({ name: 'rtc_gateway_max_connections', help: 'Proxied connections this gateway accepts before it refuses with 503 (GATEWAY_MAX_CONNECTIONS, lowered to fit the descriptor limit)', registers: [registry] });
  new prom.Gauge({ name: 'rtc_gateway_registry_state', help: 'Registry view: 0 fresh, 1 stale (serving the last known view), 2 unavailable (answering 503)', registers: [registry], aggregator: 'max', collect() { this.set(registryState()); } });

  // labels() alone exports nothing: inc(0) makes the series exist at 0.
  const upgradeChildren = new Map<number, prom.Counter.Internal>(PREINITIALIZED_UPGRADE_CODES.map((code) => [code, upgrades.labels(String(code))]));
  for (const child of upgradeChildren.values()) child.inc(0);
  const requestChildren = new Map<string, prom.Counter.Internal>();
  fd.labels('accept').inc(0);
  fd.labels('connect').inc(0);
  const fromClient = bytes.labels('client_to_pod');
  const toClient = bytes.labels('pod_to_client');
  return {
    registry,
    upgrade(code) {
      let c = upgradeChildren.get(code);
      if (!c) upgradeChildren.set(code, (c = upgrades.labels(String(code))));
      c.inc();
    },
    handshake: (s) => handshake.observe(s),
    active: (d) => active.inc(d),
    bytes(a, b) {
      if (a > 0) fromClient.inc(a);
      if (b > 0) toClient.inc(b);
    },
    request(route, code) {
      const key = `${route} ${code}`;
      let c = requestChildren.get(key);
      if (!c) requestChildren.set(key, (c = requests.labels(route, String(code))));
      c.inc();
    },
    fdExhausted: (where) => fd.labels(where).inc(),
    maxConnections: (limit) => max.set(limit),
  };
}
