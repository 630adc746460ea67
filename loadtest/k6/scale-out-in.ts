/**
 * Ramp WebSocket clients past several pods' worth of connections, hold, ramp down, and watch the socket pods
 * scale out and back in. Each VU is one drain-aware client (lib/session.ts); a second scenario polls
 * `/api/pods` on ADMIN_URL and reports the scale-out and scale-in times.
 *
 *   k6 run -e BASE_URL=http://127.0.0.1:8080 loadtest/k6/scale-out-in.ts
 *
 * Variables (laptop defaults, for `rtc-edge dev`): BASE_URL, ADMIN_URL (default BASE_URL), VUS=400, RAMP_UP=30s,
 * HOLD=30s, RAMP_DOWN=10s, SCALE_IN_WAIT=60s, PING_MS=2000, PING_P95_MS=250, RETRY_MS=500, JITTER=0.5,
 * POLL=1s, EXPECT_SCALE=false (true: fail unless the pods scaled out and back in), SUMMARY_JSON.
 */
import { check, sleep } from 'k6';
import exec from 'k6/execution';
import http from 'k6/http';
import { Gauge, Trend } from 'k6/metrics';
import type { Options } from 'k6/options';
import { EdgeSession } from './lib/session.ts';
import { Env } from './lib/settings.ts';
import { consoleText, summaryOutputs, type SummaryData } from './lib/summary.ts';

const env = new Env();
const BASE_URL = env.url('BASE_URL', 'http://127.0.0.1:8080');
const ADMIN_URL = env.url('ADMIN_URL', BASE_URL);
const VUS = env.int('VUS', 400, 1, 1_000_000);
const RAMP_UP = env.duration('RAMP_UP', '30s');
const HOLD = env.duration('HOLD', '30s');
const RAMP_DOWN = env.duration('RAMP_DOWN', '10s');
const SCALE_IN_WAIT = env.duration('SCALE_IN_WAIT', '60s');
const PING_MS = env.int('PING_MS', 2000, 0, 3_600_000);
const PING_P95_MS = env.num('PING_P95_MS', 250);
const RETRY_MS = env.int('RETRY_MS', 500, 0, 600_000);
const JITTER = env.num('JITTER', 0.5);
const POLL = env.duration('POLL', '1s');
const EXPECT_SCALE = env.flag('EXPECT_SCALE', false);
const SUMMARY_JSON = env.str('SUMMARY_JSON', 'scale-out-in-summary.json');
env.done();

/** When the clients are gone: the scale-in clock starts here. */
const LOAD_MS = RAMP_UP.ms + HOLD.ms + RAMP_DOWN.ms;

const pods = new Gauge('pods');
const scaleOutTime = new Trend('scale_out_time', true);
const scaleInTime = new Trend('scale_in_time', true);

export const options: Options = {
  scenarios: {
    clients: {
      executor: 'ramping-vus',
      startVUs: 0,
      stages: [
        { duration: RAMP_UP.text, target: VUS },
        { duration: HOLD.text, target: VUS },
        { duration: RAMP_DOWN.text, target: 0 },
      ],
      // A VU leaving the ramp closes its connection at once: that is the load going away.
      gracefulRampDown: '0s',
      gracefulStop: '0s',
    },
    pods: {
      executor: 'ramping-vus',
      exec: 'observe',
      startVUs: 1,
      stages: [{ duration: `${LOAD_MS + SCALE_IN_WAIT.ms}ms`, target: 1 }],
      gracefulStop: '0s',
    },
  },
  thresholds: {
    ws_connect_success: ['rate>=0.999'],
    checks: ['rate>=0.99'],
    ping_rtt: [`p(95)<${PING_P95_MS}`],
    ws_unexpected_closes: ['count==0'],
    'lost_messages{during:steady}': ['count==0'],
    ...(EXPECT_SCALE ? { scale_out_time: ['max>0'], scale_in_time: ['max>0'] } : {}),
  },
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(95)', 'p(99)'],
};

/** The live pods on ADMIN_URL/api/pods (the gateway's admin port; the same port in `rtc-edge dev`). */
function livePods(): number | undefined {
  const res = http.get(`${ADMIN_URL}/api/pods`, { tags: { name: 'api_pods' } });
  const list = res.status === 200 ? (res.json() as { pods?: unknown }).pods : undefined;
  return check(res, { '/api/pods lists the pods': () => Array.isArray(list) }) ? (list as unknown[]).length : undefined;
}

/** The pod count before any client connects: the minimum the scaler keeps. */
export function setup(): { baseline: number } {
  const res = http.get(`${ADMIN_URL}/api/pods`);
  if (res.status !== 200) throw new Error(`${ADMIN_URL}/api/pods answered ${res.status || res.error}: set ADMIN_URL to the gateway's admin port (GATEWAY_ADMIN_PORT)`);
  return { baseline: ((res.json() as { pods: unknown[] }).pods ?? []).length };
}

/** One client per VU, connected until the ramp takes the VU away. */
export default function (): void {
  new EdgeSession({ baseUrl: BASE_URL, pingMs: PING_MS, jitter: JITTER, retryMs: RETRY_MS }).start();
}

let scaledOutAt: number | undefined;
let scaledIn = false;

/** The `pods` scenario: poll the pod count, time the first scale-out and the return to the baseline. */
export function observe(data: { baseline: number }): void {
  const t = Date.now() - exec.scenario.startTime;
  const n = livePods();
  if (n !== undefined) {
    pods.add(n);
    if (scaledOutAt === undefined && n > data.baseline) {
      scaledOutAt = t;
      scaleOutTime.add(t);
    }
    if (scaledOutAt !== undefined && !scaledIn && t >= LOAD_MS && n <= data.baseline) {
      scaledIn = true;
      scaleInTime.add(t - LOAD_MS);
    }
  }
  sleep(POLL.ms / 1000);
}

/** Console figures and the JSON summary (SUMMARY_JSON). */
export function handleSummary(data: SummaryData): Record<string, string> {
  const out = data.metrics.scale_out_time?.values;
  const back = data.metrics.scale_in_time?.values;
  const peak = data.metrics.pods?.values;
  const lines = [
    `pods: ${peak ? `${peak.min} → peak ${peak.max} → ${peak.value}` : 'not observed'}`,
    `scale-out: ${out?.max ? `first new pod ${(out.max / 1000).toFixed(1)}s after the start (ramp ${RAMP_UP.text} to ${VUS} clients)` : 'not observed'}`,
    `scale-in: ${back?.max !== undefined && out?.max ? `back to the baseline ${(back.max / 1000).toFixed(1)}s after the clients left` : 'not observed'}`,
  ];
  const text = consoleText(`scale-out-in against ${BASE_URL}`, data, ['ws_connect_success', 'checks', 'ping_rtt', 'ws_handshake', 'reconnects', 'rehome_time', 'lost_messages', 'lost_messages{during:steady}', 'ws_unexpected_closes', 'pods', 'scale_out_time', 'scale_in_time'], lines);
  return summaryOutputs(text, data, SUMMARY_JSON);
}
