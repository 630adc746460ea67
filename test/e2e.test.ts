/**
 * Acceptance of `rtc-edge dev`, tried as a new user would: the real composition (gateway, scaler, local workload
 * of uWebSockets.js socket nodes, memory registry) driven by the reference client over real WebSockets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { WebSocket } from 'ws';
import { EdgeClient } from '../examples/client.js';
import { loadConfig } from '../src/config.js';
import { start as startDev, type DevHandle } from '../app/dev.js';
import { createLogger } from '../src/logger.js';

const WS = WebSocket;
const FAST = { SOCKET_TARGET_CONNECTIONS: '20', SCALER_INTERVAL_MS: '300', SCALE_IN_STABILIZATION_MS: '2000', DRAIN_WINDOW_MS: '1000', HEARTBEAT_MS: '200' };
const CLIENTS = 100;

type Seen = { kind: 'welcome' | 'reconnect'; podId: string } | { kind: 'close'; podId: string; code: number };

interface Tracked {
  client: EdgeClient;
  seen: Seen[];
}

function track(url: string, opts: { autoReconnect?: boolean } = {}): Tracked {
  // Drain notices from the node carry retryAfterMs; a short backoff keeps the test quick when all pods drain.
  const client = new EdgeClient({ url, WebSocket: WS, backoffInitialMs: 50, backoffMaxMs: 500, ...opts });
  const seen: Seen[] = [];
  client.on('welcome', (w) => seen.push({ kind: 'welcome', podId: w.podId }));
  client.on('reconnect', (r) => seen.push({ kind: 'reconnect', podId: r.podId ?? '?' }));
  client.on('close', (c) => seen.push({ kind: 'close', podId: c.podId ?? '?', code: c.code }));
  return { client, seen };
}

async function until<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    last = await fn();
    if (last) return last as T;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface ApiPods {
  pods: Array<{ podId: string; connections: number; draining: boolean; deletionCost: number | null }>;
  desiredReplicas: number | null;
  currentReplicas: number | null;
  totalConnections: number;
}

async function apiPods(url: string): Promise<ApiPods> {
  const res = await fetch(`${url}/api/pods`);
  assert.equal(res.status, 200);
  return (await res.json()) as ApiPods;
}

/** Open clients per pod, as the clients themselves see it. */
function perPod(clients: Tracked[]): Map<string, Tracked[]> {
  const m = new Map<string, Tracked[]>();
  for (const t of clients) {
    if (t.client.state !== 'open' || !t.client.podId) continue;
    const list = m.get(t.client.podId) ?? [];
    list.push(t);
    m.set(t.client.podId, list);
  }
  return m;
}

test('dev: 100 clients scale out to ≥ 5 pods (none above half); when most leave it returns to 2, the busiest pod survives, and clients of removed pods get reconnect before 1012', async (tc) => {
  const config = loadConfig({ ...FAST, GATEWAY_PORT: '0', LOG_LEVEL: 'silent' }, 'dev');
  let banner = '';
  const dev: DevHandle = await startDev(config, { logger: createLogger('silent'), host: '127.0.0.1', banner: (t) => (banner += t) });
  const clients: Tracked[] = [];
  try {
    assert.match(banner, new RegExp(`Status page +${dev.url}/`));
    const initial = await until('2 live pods at start', async () => {
      const p = await apiPods(dev.url);
      return p.pods.length === 2 && p;
    });
    assert.equal(initial.totalConnections, 0);

    // Scale-out: clients arrive over ~3 s, as users do, not in one instant.
    const tOut = Date.now();
    for (let i = 0; i < CLIENTS; i++) {
      const t = track(dev.url);
      clients.push(t);
      t.client.start();
      await new Promise((r) => setTimeout(r, 30));
    }
    await until('all 100 clients open', () => clients.every((t) => t.client.state === 'open'));
    const scaled = await until('≥ 5 pods that heartbeat 100 connections', async () => {
      const p = await apiPods(dev.url);
      return p.pods.filter((x) => !x.draining).length >= 5 && p.totalConnections === CLIENTS && p;
    });
    const byPod = perPod(clients);
    tc.diagnostic(`scale-out: ${scaled.pods.length} pods ${Date.now() - tOut} ms after the first client; clients per pod ${[...byPod.values()].map((l) => l.length).sort((a, b) => b - a).join('/')}`);
    const busiestShare = Math.max(...scaled.pods.map((p) => p.connections));
    assert.ok(busiestShare <= CLIENTS / 2, `busiest pod holds ${busiestShare} of ${CLIENTS} (registry view)`);
    assert.ok(Math.max(...[...byPod.values()].map((l) => l.length)) <= CLIENTS / 2, 'no pod above half the clients (client view)');
    assert.equal(scaled.desiredReplicas, 5);
    assert.ok(clients.every((t) => t.seen.filter((s) => s.kind === 'reconnect').length === 0), 'no drain during scale-out');

    // Scale-in: most clients leave. Keep the busiest pod's clients (up to 24) and ≤ 2 on each other pod,
    // so the remaining load needs only the minimum of 2 pods.
    const ranked = [...byPod.entries()].sort((a, b) => b[1].length - a[1].length);
    const [busiest, busiestClients] = ranked[0]!;
    assert.ok(busiestClients.length > ranked[1]![1].length || busiestClients.length >= 3, 'a busiest pod exists');
    const keepBusiest = busiestClients.slice(0, 24);
    const perOther = Math.min(2, Math.floor((40 - keepBusiest.length) / (ranked.length - 1)));
    const kept = new Set<Tracked>(keepBusiest);
    const keptElsewhere = new Map<Tracked, string>();
    for (const [podId, list] of ranked.slice(1)) {
      for (const t of list.slice(0, perOther)) {
        kept.add(t);
        keptElsewhere.set(t, podId);
      }
    }
    assert.ok(keptElsewhere.size >= 3, 'clients stay on the pods that will be removed');
    for (const t of clients) if (!kept.has(t)) t.client.stop(1000, 'user left');
    const keptCount = kept.size;
    assert.ok(keptCount <= 40 && keptCount < CLIENTS / 2, `${keptCount} clients stay`);

    const tIn = Date.now();
    const final = await until('back to 2 pods, none draining, workload at 2', async () => {
      const p = await apiPods(dev.url);
      const workloadPods = (await dev.workload.observe()).pods.filter((x) => !x.terminating);
      return p.pods.length === 2 && p.pods.every((x) => !x.draining) && workloadPods.length === 2 && p.currentReplicas === 2 && p;
    });
    const survivors = new Set(final.pods.map((p) => p.podId));
    tc.diagnostic(`scale-in: ${ranked.length} → 2 pods ${Date.now() - tIn} ms after ${CLIENTS - keptCount} clients left (stabilization 2000 ms, drain window 1000 ms)`);
    assert.ok(survivors.has(busiest), `the busiest pod ${busiest} (${busiestClients.length} clients) survives; survivors: ${[...survivors].join(', ')}`);
    assert.equal(final.desiredReplicas, 2);

    // Every kept client ends up open on a surviving pod.
    await until('kept clients back on surviving pods', () => [...kept].every((t) => t.client.state === 'open' && survivors.has(t.client.podId!)));
    for (const t of keepBusiest) assert.equal(t.seen.filter((s) => s.kind === 'close').length, 0, 'clients of the busiest pod were never disturbed');

    // Clients of removed pods: every close from a removed pod was a 1012 preceded by that pod's reconnect notice.
    let notified = 0;
    for (const [t, firstPod] of keptElsewhere) {
      const closes = t.seen.filter((s): s is Extract<Seen, { kind: 'close' }> => s.kind === 'close');
      if (survivors.has(firstPod)) {
        assert.equal(closes.filter((c) => c.podId === firstPod).length, 0, 'a client on a surviving pod stays');
        continue;
      }
      assert.ok(closes.length >= 1, `client on removed pod ${firstPod} was moved`);
      for (let i = 0; i < t.seen.length; i++) {
        const s = t.seen[i]!;
        if (s.kind !== 'close') continue;
        assert.equal(s.code, 1012, `close from ${s.podId} is 1012 Service Restart`);
        const before = t.seen[i - 1];
        assert.deepEqual(before, { kind: 'reconnect', podId: s.podId }, `reconnect from ${s.podId} came right before its close: ${JSON.stringify(t.seen)}`);
        assert.ok(!survivors.has(s.podId), 'only removed pods drain');
        notified++;
      }
    }
    assert.ok(notified >= 3, `${notified} drain notices checked`);
  } finally {
    for (const t of clients) t.client.stop();
    await dev.close();
  }
});

test('dev CLI: SIGTERM drains the socket nodes (connected clients get reconnect, then 1012) and exits 0 within the drain window', async (tc) => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'app/cli.ts', 'dev'], {
    env: { ...process.env, ...FAST, GATEWAY_PORT: '0', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const clients: Tracked[] = [];
  try {
    const port = await until('the gateway start-up log line', () => {
      for (const line of stdout.split('\n')) {
        if (!line.includes('"gateway listening"')) continue;
        return (JSON.parse(line) as { port: number }).port;
      }
      return undefined;
    }, 30_000);
    const url = `http://127.0.0.1:${port}`;
    await until('the banner', () => stderr.includes('Ctrl-C drains the socket nodes'), 10_000);
    assert.match(stderr, new RegExp(`Status page +${url}/\\n`));
    assert.match(stderr, new RegExp(`Assign +${url}/ws/assign\\n`));
    assert.match(stderr, new RegExp(`node --import tsx examples/client.ts --url ${url}\\n`));

    for (let i = 0; i < 10; i++) {
      const t = track(url);
      clients.push(t);
      t.client.start();
    }
    await until('10 clients open', () => clients.every((t) => t.client.state === 'open'), 30_000);

    const t0 = Date.now();
    child.kill('SIGTERM');
    const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
    const elapsed = Date.now() - t0;
    assert.equal(signal, null);
    assert.equal(code, 0, `exit code; stderr:\n${stderr}`);
    // The drain is paced over DRAIN_WINDOW_MS (1 s); the margin absorbs a busy 2-core machine, not a design delay.
    assert.ok(elapsed < 1000 + 6000, `exited ${elapsed} ms after SIGTERM`);
    for (const t of clients) {
      const i = t.seen.findIndex((s) => s.kind === 'close');
      assert.ok(i > 0, `client saw a close: ${JSON.stringify(t.seen)}`);
      const close = t.seen[i] as Extract<Seen, { kind: 'close' }>;
      assert.equal(close.code, 1012);
      assert.deepEqual(t.seen[i - 1], { kind: 'reconnect', podId: close.podId });
    }
    assert.match(stdout, /"msg":"dev: stopped"/);
    tc.diagnostic(`dev CLI exited ${elapsed} ms after SIGTERM (DRAIN_WINDOW_MS=1000)`);
  } finally {
    for (const t of clients) t.client.stop();
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  }
});
