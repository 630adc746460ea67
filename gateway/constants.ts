/** Gateway-only tunables that are not operator settings (operator settings live in src/config.ts). */

/** Exact paths of the gateway's plain HTTP routes. */
export const GatewayPath = {
  STATUS_PAGE: '/',
  HEALTHZ: '/healthz',
  READYZ: '/readyz',
  METRICS: '/metrics',
  API_PODS: '/api/pods',
  API_EVENTS: '/api/events',
  /** `/api/keys/<key>`: the owner of one placement key. */
  API_KEYS_PREFIX: '/api/keys/',
} as const;

/** After the gateway ends its side of a socket (error answer, 1001 at shutdown), the peer has this long to close. */
export const CLOSE_GRACE_MS = 5000;
/** A repeated condition (descriptor exhaustion, socket limit) is logged at most once per this period. */
export const LOG_REPEAT_MS = 5000;
/** Client sockets accepted beyond the proxied ones (plain requests such as `/ws/assign`, heads being read). */
export const SOCKET_HEADROOM = 200;
/** Sockets accepted past that ceiling only to be answered `503` + `Retry-After` at once; past these, closed unanswered. */
export const REFUSAL_RESERVE = 200;
/** Descriptors kept free beyond two per proxied connection: listen sockets, registry, logs, plus the two above. */
export const FD_RESERVE = 100 + SOCKET_HEADROOM + REFUSAL_RESERVE;
/** How often Node checks pending requests against the header/request timeouts (slowloris). */
export const CONNECTIONS_CHECK_INTERVAL_MS = 250;
/** Keep-alive for plain HTTP requests (assign, api, metrics). */
export const KEEP_ALIVE_TIMEOUT_MS = 5000;
/** `Retry-After` (seconds) on 503 pod_draining / no_pods_available / overload answers. */
export const RETRY_AFTER_S = 1;
/** Largest `X-Request-Id` accepted from a client; longer or odd ones are replaced. */
export const MAX_REQUEST_ID_LENGTH = 128;
/** How many of each pod's placement keys `/api/pods` lists (beside the count of all), read with the view's sync. */
export const API_PODS_KEYS_LISTED = 20;
/** How many events `GET /api/events` returns. */
export const API_EVENTS_LIMIT = 50;
/** Handshake latency histogram buckets (seconds). */
export const HANDSHAKE_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/**
 * Upgrade statuses the chart's alerts divide by or count, exported at 0 from the start: Prometheus' rate() and
 * increase() never count the sample a series first appears with, so a child created by its first 502 would hide it.
 */
export const PREINITIALIZED_UPGRADE_CODES = [101, 502, 503, 504] as const;
/** Retry bounds of the EndpointSlice watch after an error (ms). */
export const WATCH_RETRY_MIN_MS = 200;
export const WATCH_RETRY_MAX_MS = 10_000;
/** A dead gateway worker is restarted after a capped, jittered backoff (src/backoff.ts) between these bounds. */
export const WORKER_RESTART_BASE_MS = 500;
export const WORKER_RESTART_MAX_MS = 30_000;
/** A worker that served this long before it died restarts from the shortest backoff again. */
export const WORKER_STABLE_MS = 30_000;
/** How long the primary waits for each worker's metrics before answering /metrics without them. */
export const WORKER_METRICS_TIMEOUT_MS = 2000;
/** How often a worker tells the primary how many client connections it holds (only when the number changed). */
export const WORKER_LOAD_REPORT_MS = 100;
/**
 * Accept balancing between workers: a worker stops accepting while it holds more than the least-loaded worker plus
 * this slack (at least WORKER_BALANCE_SLACK_MIN connections, or WORKER_BALANCE_SLACK_RATIO of the least-loaded's),
 * and accepts again at half the slack.
 */
export const WORKER_BALANCE_SLACK_MIN = 32;
export const WORKER_BALANCE_SLACK_RATIO = 0.05;
/** After the drain order, a worker gets GATEWAY_DRAIN_MS plus this long to exit before it is killed. */
export const WORKER_EXIT_GRACE_MS = 3 * CLOSE_GRACE_MS;
