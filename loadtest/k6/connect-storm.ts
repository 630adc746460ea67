/**
 * A burst of new connections through the gateway: every VU assigns CONNS pods (GET /ws/assign, blocking), then
 * opens all CONNS WebSockets at once, holds them for HOLD, and closes them. Reports connects per second over
 * the burst (first `new WebSocket` to last `open`, across VUs) and the handshake p95; raise VUS × CONNS until
 * a threshold fails to find the largest burst the gateway sustains.
 *
 *   k6 run -e BASE_URL=http://127.0.0.1:8080 -e VUS=20 -e CONNS=50 loadtest/k6/connect-storm.ts
 *
 * Variables: BASE_URL, VUS=20, CONNS=50 (per VU), HOLD=5s, HANDSHAKE_P95_MS=1000, SUMMARY_JSON.
 */
import exec from 'k6/execution';
import { Counter, Trend } from 'k6/metrics';
import type { Options } from 'k6/options';
import { WebSocket } from 'k6/websockets';
import { setTimeout } from 'k6/timers';
import { connectSuccess, handshake, unexpectedCloses } from './lib/metrics.ts';
import { assign, EXPECTED_CLOSE_CODES, WS_OPEN } from './lib/session.ts';
import { Env, wsBase } from './lib/settings.ts';
import { consoleText, summaryOutputs, type SummaryData } from './lib/summary.ts';

const env = new Env();
const BASE_URL = env.url('BASE_URL', 'http://127.0.0.1:8080');
const VUS = env.int('VUS', 20, 1, 1_000_000);
const CONNS = env.int('CONNS', 50, 1, 100_000);
const HOLD = env.duration('HOLD', '5s');
const HANDSHAKE_P95_MS = env.num('HANDSHAKE_P95_MS', 1000);
const SUMMARY_JSON = env.str('SUMMARY_JSON', 'connect-storm-summary.json');
env.done();

/** When each connection was started and opened, from the scenario start: max(opened) − min(started) is the burst. */
const startedAt = new Trend('storm_started_at', true);
const openedAt = new Trend('storm_opened_at', true);
const welcomed = new Counter('storm_welcomed');

export const options: Options = {
  scenarios: {
    storm: { executor: 'per-vu-iterations', vus: VUS, iterations: 1, maxDuration: '10m', gracefulStop: '0s' },
  },
  thresholds: {
    ws_connect_success: ['rate>=0.999'],
    ws_handshake: [`p(95)<${HANDSHAKE_P95_MS}`],
    ws_unexpected_closes: ['count==0'],
    checks: ['rate>=0.99'],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(95)', 'p(99)'],
};

/** Assign CONNS times, then open every connection at once, hold them, close them. */
export default function (): void {
  const t0 = exec.scenario.startTime;
  const sockets: WebSocket[] = [];
  let settled = 0;
  const settle = () => {
    if (++settled === CONNS) setTimeout(() => sockets.forEach((ws) => ws.readyState === WS_OPEN && ws.close(1000)), HOLD.ms);
  };
  const pods: string[] = [];
  for (let i = 0; i < CONNS; i++) {
    const pod = assign(BASE_URL);
    if (pod) pods.push(pod.url);
    else {
      connectSuccess.add(false);
      settle();
    }
  }
  for (const url of pods) {
    const started = Date.now();
    startedAt.add(started - t0);
    const ws = new WebSocket(`${wsBase(BASE_URL)}${url}`);
    sockets.push(ws);
    let open = false;
    let errorText = '';
    ws.addEventListener('open', () => {
      open = true;
      const now = Date.now();
      connectSuccess.add(true);
      handshake.add(now - started);
      openedAt.add(now - t0);
      settle();
    });
    ws.addEventListener('message', (e) => {
      const data = (e as { data?: unknown }).data;
      if (typeof data === 'string' && (JSON.parse(data) as { type?: string }).type === 'welcome') welcomed.add(1);
    });
    ws.addEventListener('error', (e) => {
      errorText = String((e as { error?: unknown }).error ?? '');
    });
    ws.addEventListener('close', (e) => {
      if (!open) {
        connectSuccess.add(false);
        settle();
        return;
      }
      const code = (e as { code?: unknown }).code ?? Number(/websocket: close (\d{4})/.exec(errorText)?.[1] ?? NaN);
      if (typeof code === 'number' && Number.isFinite(code) && !EXPECTED_CLOSE_CODES.includes(code)) unexpectedCloses.add(1, { code: String(code) });
    });
  }
}

/** Connects per second over the burst, the handshake p95, and the JSON summary (SUMMARY_JSON). */
export function handleSummary(data: SummaryData): Record<string, string> {
  const ok = data.metrics.ws_connect_success?.values;
  const first = data.metrics.storm_started_at?.values;
  const last = data.metrics.storm_opened_at?.values;
  const hs = data.metrics.ws_handshake?.values;
  const connects = ok?.passes ?? 0;
  const seconds = first && last ? (last.max - first.min) / 1000 : 0;
  const figures = {
    connections: VUS * CONNS,
    connected: connects,
    failed: ok?.fails ?? 0,
    burstSeconds: Number(seconds.toFixed(3)),
    connectsPerSecond: seconds > 0 ? Math.round(connects / seconds) : 0,
    handshakeP95Ms: Number((hs?.['p(95)'] ?? 0).toFixed(1)),
    handshakeP99Ms: Number((hs?.['p(99)'] ?? 0).toFixed(1)),
  };
  const line = `connect-storm: ${figures.connected}/${figures.connections} connections in ${figures.burstSeconds}s = ${figures.connectsPerSecond} connects/s; handshake p95 ${figures.handshakeP95Ms} ms, p99 ${figures.handshakeP99Ms} ms`;
  const text = consoleText(`connect-storm against ${BASE_URL} (${VUS} VUs × ${CONNS})`, data, ['ws_connect_success', 'ws_handshake', 'storm_started_at', 'storm_opened_at', 'storm_welcomed', 'ws_unexpected_closes', 'checks'], [line]);
  return summaryOutputs(text, { ...data, storm: figures } as SummaryData, SUMMARY_JSON);
}
