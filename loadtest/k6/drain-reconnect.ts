/**
 * Pin many connections to one socket pod, drain that pod mid-run, and require every client to be back on
 * another pod within the drain window plus its own backoff (the notice's retryAfterMs plus jitter).
 *
 *   k6 run -e BASE_URL=http://127.0.0.1:8080 loadtest/k6/drain-reconnect.ts
 *
 * The drain: POST DRAIN_URL, by default the pod's admin `/drain` at `http://<ip>:<adminPort>` as /api/pods
 * lists it (reachable in `rtc-edge dev`, where pods listen on loopback). In a cluster, port-forward the pod's
 * admin port and pass DRAIN_URL, or set DRAIN=external and delete the pod (`kubectl delete pod`; its preStop
 * hook drains it) at DRAIN_AT.
 *
 * Variables: BASE_URL, ADMIN_URL (default BASE_URL), POD (the pod to drain; default the first live one), VUS=50
 * (clients, one connection each), DRAIN_AT=5s,
 * DRAIN_WINDOW_MS=5000 (the pods' DRAIN_WINDOW_MS; 5000 is dev's default), DRAIN_URL, DRAIN=admin|external,
 * SLACK_MS=2000 (assign and handshake time allowed on top), PING_MS=1000, JITTER=0.5, RETRY_MS=500, SUMMARY_JSON.
 */
import { check, sleep } from 'k6';
import exec from 'k6/execution';
import http from 'k6/http';
import { Counter, Rate, Trend } from 'k6/metrics';
import type { Options } from 'k6/options';
import { clearTimeout, setTimeout } from 'k6/timers';
import { EdgeSession } from './lib/session.ts';
import { Env } from './lib/settings.ts';
import { consoleText, summaryOutputs, type SummaryData } from './lib/summary.ts';

const env = new Env();
const BASE_URL = env.url('BASE_URL', 'http://127.0.0.1:8080');
const ADMIN_URL = env.url('ADMIN_URL', BASE_URL);
const VUS = env.int('VUS', 50, 1, 1_000_000);
const DRAIN_AT = env.duration('DRAIN_AT', '5s');
const DRAIN_WINDOW_MS = env.int('DRAIN_WINDOW_MS', 5000, 0, 3_600_000);
const DRAIN_URL = env.str('DRAIN_URL', '');
const POD = env.str('POD', '');
const DRAIN = env.str('DRAIN', 'admin');
const SLACK_MS = env.int('SLACK_MS', 2000, 0, 600_000);
const PING_MS = env.int('PING_MS', 1000, 0, 3_600_000);
const JITTER = env.num('JITTER', 0.5);
const RETRY_MS = env.int('RETRY_MS', 500, 0, 600_000);
const SUMMARY_JSON = env.str('SUMMARY_JSON', 'drain-reconnect-summary.json');
env.done();
if (DRAIN !== 'admin' && DRAIN !== 'external') throw new Error(`invalid -e variables:\n  DRAIN=${DRAIN}: expected admin or external`);

/** The node's retryAfterMs is at most this (socket/constants.ts: 250 ms floor + 2000 ms jitter); only bounds the wait. */
const RETRY_AFTER_MAX_MS = 2250;
/** How long a client waits for its re-home before it counts as not re-homed. */
const DEADLINE_MS = DRAIN_AT.ms + DRAIN_WINDOW_MS + RETRY_AFTER_MAX_MS * (1 + JITTER) + SLACK_MS;
/** After the re-home, pings and echoes on the new pod for this long before the client ends. */
const SETTLE_MS = Math.max(2 * PING_MS, 500);

const rehomedInTime = new Rate('rehomed_in_time');
const rehomeAfterDrain = new Trend('rehome_after_drain', true);
const drained = new Counter('drained_connections');

export const options: Options = {
  scenarios: {
    clients: { executor: 'per-vu-iterations', vus: VUS, iterations: 1, exec: 'client', maxDuration: `${Math.ceil(DEADLINE_MS + SETTLE_MS + 30_000)}ms`, gracefulStop: '0s' },
    drainer: { executor: 'per-vu-iterations', vus: 1, iterations: 1, exec: 'drain', maxDuration: `${Math.ceil(DEADLINE_MS + SETTLE_MS + 30_000)}ms`, gracefulStop: '0s' },
  },
  thresholds: {
    rehomed_in_time: ['rate==1'],
    ws_connect_success: ['rate>=0.999'],
    ws_unexpected_closes: ['count==0'],
    'lost_messages{during:steady}': ['count==0'],
    checks: ['rate>=0.99'],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(95)', 'p(99)'],
};

interface Target {
  podId: string;
  drainUrl: string;
}

/** Pick the pod to drain (the first live, non-draining one) and where its `/drain` is. */
export function setup(): Target {
  const res = http.get(`${ADMIN_URL}/api/pods`);
  if (res.status !== 200) throw new Error(`${ADMIN_URL}/api/pods answered ${res.status || res.error}: set ADMIN_URL to the gateway's admin port (GATEWAY_ADMIN_PORT)`);
  const list = ((res.json() as { pods?: Array<{ podId: string; ip: string; adminPort?: number | null; draining: boolean }> }).pods ?? []).filter((p) => !p.draining);
  if (list.length < 2) throw new Error(`drain-reconnect needs at least 2 live pods to re-home to, /api/pods lists ${list.length}`);
  const pod = POD ? list.find((p) => p.podId === POD) : list[0];
  if (!pod) throw new Error(`POD=${POD} is not a live, non-draining pod in /api/pods (${list.map((p) => p.podId).join(', ')})`);
  let drainUrl = DRAIN_URL;
  if (!drainUrl && DRAIN === 'admin') {
    if (!pod.adminPort) throw new Error(`/api/pods gives no adminPort for ${pod.podId}: pass DRAIN_URL (e.g. a port-forward of its admin port) or DRAIN=external`);
    drainUrl = `http://${pod.ip.includes(':') ? `[${pod.ip}]` : pod.ip}:${pod.adminPort}/drain`;
  }
  return { podId: pod.podId, drainUrl };
}

/** The `drainer` scenario: at DRAIN_AT, POST the pod's /drain (answered once its connections are gone). */
export function drain(target: Target): void {
  sleep(DRAIN_AT.ms / 1000);
  if (DRAIN === 'external') return;
  const res = http.post(target.drainUrl, null, { timeout: `${DRAIN_WINDOW_MS + 60_000}ms`, tags: { name: 'drain' } });
  const body = res.status === 200 ? (res.json() as { drained?: number; remaining?: number }) : {};
  check(res, { 'drain answers 200 with nothing remaining': () => body.remaining === 0 });
  drained.add(body.drained ?? 0);
}

/** The `clients` scenario: connect to the target pod, wait for its drain, re-home, settle, end. */
export function client(target: Target): void {
  const drainStart = exec.scenario.startTime + DRAIN_AT.ms;
  let first = true;
  let deadline: number | undefined;
  const session: EdgeSession = new EdgeSession({
    baseUrl: BASE_URL,
    pingMs: PING_MS,
    jitter: JITTER,
    retryMs: RETRY_MS,
    pinnedPod: target.podId,
    onWelcome: (podId, rehomed) => {
      if (first) {
        first = false;
        check(podId, { 'first welcome comes from the pinned pod': (p) => p === target.podId });
        return;
      }
      if (!rehomed || deadline === undefined) return;
      clearTimeout(deadline);
      deadline = undefined;
      const sinceDrain = Date.now() - drainStart;
      rehomeAfterDrain.add(sinceDrain);
      // The drain window (when the notice may come) plus this client's own wait, plus assign and handshake.
      rehomedInTime.add(sinceDrain <= DRAIN_WINDOW_MS + rehomed.notice.retryAfterMs * (1 + JITTER) + SLACK_MS);
      setTimeout(() => session.stop(), SETTLE_MS);
    },
  });
  deadline = setTimeout(() => {
    deadline = undefined;
    rehomedInTime.add(false);
    session.stop();
  }, DEADLINE_MS);
  session.start();
}

/** Console figures and the JSON summary (SUMMARY_JSON). */
export function handleSummary(data: SummaryData & { setup_data?: Target }): Record<string, string> {
  const ok = data.metrics.rehomed_in_time?.values;
  const lines = [`drained pod: ${data.setup_data?.podId ?? 'unknown'}`, `re-homed in time: ${ok ? `${ok.passes} of ${ok.passes + ok.fails}` : 'no client reported'}`];
  const text = consoleText(`drain-reconnect against ${BASE_URL}`, data, ['rehomed_in_time', 'rehome_after_drain', 'rehome_time', 'reconnects', 'drained_connections', 'ws_connect_success', 'lost_messages', 'lost_messages{during:steady}', 'ws_unexpected_closes', 'checks', 'ping_rtt'], lines);
  return summaryOutputs(text, data, SUMMARY_JSON);
}
