/** The reference client (examples/client.ts) against a throwaway gateway built from node:http and `ws`. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import {
  EdgeClient,
  backoffDelay,
  reconnectDelay,
  statusFromConnectError,
  toWebSocketUrl,
  type ClientEvents,
  type RetryCause,
  type WebSocketConstructor,
} from '../examples/client.js';
import { parseDuration, parseLoadArgs, runLoad } from '../examples/load.js';

const WS = WebSocket;

interface FakeGateway {
  url: string;
  /** Answers of /ws/assign, consumed in order; the last one repeats. */
  assigns: Array<{ status: number; body: unknown }>;
  /** When set, answers /ws/assign instead of `assigns`. */
  assignFn?: () => { status: number; body: unknown };
  /** Connect answers by pod id: 'ok' upgrades, a number answers that HTTP status. */
  pods: Map<string, 'ok' | number>;
  /** Server-side sockets by pod id. */
  sockets: Map<string, WebSocket[]>;
  assignCount: number;
  connectPaths: string[];
  close(): Promise<void>;
}

async function fakeGateway(): Promise<FakeGateway> {
  const wss = new WebSocketServer({ noServer: true });
  const gw: FakeGateway = {
    url: '',
    assigns: [],
    pods: new Map(),
    sockets: new Map(),
    assignCount: 0,
    connectPaths: [],
    close: async () => {},
  };
  const server = http.createServer((req, res) => {
    if (req.url === '/ws/assign') {
      const a = gw.assignFn?.() ?? gw.assigns[Math.min(gw.assignCount, gw.assigns.length - 1)] ?? { status: 503, body: { error: 'no_pods_available', message: 'none' } };
      gw.assignCount++;
      res.writeHead(a.status, { 'content-type': 'application/json' }).end(JSON.stringify(a.body));
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not_found","message":"no such route"}');
  });
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    gw.connectPaths.push(req.url ?? '');
    const m = /^\/ws\/([a-z0-9-]+)\/connect(\?.*)?$/.exec(req.url ?? '');
    const answer = m ? gw.pods.get(m[1]!) ?? 404 : 404;
    if (answer !== 'ok') {
      const body = JSON.stringify({ error: answer === 404 ? 'pod_not_found' : 'pod_draining', message: 'x' });
      socket.end(`HTTP/1.1 ${answer} X\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const podId = m![1]!;
      const list = gw.sockets.get(podId) ?? [];
      list.push(ws);
      gw.sockets.set(podId, list);
      ws.send(JSON.stringify({ type: 'welcome', podId, sessionId: `s-${list.length}` }));
      ws.on('message', (data) => {
        const msg = JSON.parse(String(data)) as { type: string; t?: unknown };
        if (msg.type === 'ping') ws.send(JSON.stringify({ type: 'pong', t: msg.t }));
      });
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  gw.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  gw.close = async () => {
    for (const c of wss.clients) c.terminate();
    wss.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  };
  return gw;
}

function ok(podId: string) {
  return { status: 200, body: { podId, url: `/ws/${podId}/connect` } };
}

function collect<K extends keyof ClientEvents>(client: EdgeClient, event: K): Array<ClientEvents[K]> {
  const out: Array<ClientEvents[K]> = [];
  client.on(event, (p) => out.push(p));
  return out;
}

async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('pure helpers: backoff is capped and jittered, drain delay adds jitter to retryAfterMs, URLs and statuses', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 10].map((a) => backoffDelay(a, 100, 1000, () => 1)), [100, 200, 400, 800, 1000, 1000]);
  assert.equal(backoffDelay(5, 100, 1000, () => 0), 0);
  assert.equal(backoffDelay(2, 100, 1000, () => 0.5), 200);
  assert.equal(reconnectDelay(1000, 0.5, () => 0), 1000);
  assert.equal(reconnectDelay(1000, 0.5, () => 1), 1500);
  assert.equal(reconnectDelay(-5, 0.5, () => 1), 0);
  assert.equal(reconnectDelay(Number.NaN, 0.5, () => 1), 0);
  assert.equal(toWebSocketUrl('http://127.0.0.1:8080', '/ws/p-1/connect'), 'ws://127.0.0.1:8080/ws/p-1/connect');
  assert.equal(toWebSocketUrl('https://edge.example.com/', '/ws/p-1/connect', 'token=a'), 'wss://edge.example.com/ws/p-1/connect?token=a');
  assert.equal(toWebSocketUrl('http://127.0.0.1:8080', '/ws/p-1/connect?key=room:1', 'token=a'), 'ws://127.0.0.1:8080/ws/p-1/connect?key=room:1&token=a', "the assign's ?key= is kept");
  assert.equal(statusFromConnectError({ message: 'Unexpected server response: 404' }), 404);
  assert.equal(statusFromConnectError({ error: { message: 'Unexpected server response: 503' } }), 503);
  assert.equal(statusFromConnectError({ type: 'error' }), undefined);
  assert.equal(statusFromConnectError(null), undefined);
});

test('constructor rejects a missing WebSocket constructor and a bad URL with a clear error', () => {
  assert.throws(() => new EdgeClient({ url: 'http://127.0.0.1:1', WebSocket: undefined as unknown as WebSocketConstructor }), /WebSocket constructor/);
  assert.throws(() => new EdgeClient({ url: 'not a url', WebSocket: WS }), TypeError);
  for (const key of ['', 'a b', 'x'.repeat(129), 'room/1']) assert.throws(() => new EdgeClient({ url: 'http://127.0.0.1:1', WebSocket: WS, key }), /options\.key/, key);
});

test('assigns, connects to the pinned URL, gets the welcome and a pong', async () => {
  const gw = await fakeGateway();
  gw.pods.set('pod-a', 'ok');
  gw.assigns.push(ok('pod-a'));
  const client = new EdgeClient({ url: gw.url, WebSocket: WS, query: 'room=7' });
  try {
    const welcome = client.once('welcome');
    client.start();
    assert.deepEqual(await welcome, { podId: 'pod-a', sessionId: 's-1' });
    assert.equal(client.state, 'open');
    assert.equal(client.podId, 'pod-a');
    assert.deepEqual(gw.connectPaths, ['/ws/pod-a/connect?room=7']);
    const pong = new Promise((resolve) => client.on('message', (m) => m.type === 'pong' && resolve(m)));
    assert.equal(client.send({ type: 'ping', t: 42 }), true);
    assert.deepEqual(await pong, { type: 'pong', t: 42 });
  } finally {
    client.stop();
    await gw.close();
  }
  assert.equal(client.state, 'stopped');
  assert.equal(client.send({ type: 'ping' }), false);
});

test('a drain notice then close 1012 re-assigns after retryAfterMs (with jitter) and lands on the new pod', async () => {
  const gw = await fakeGateway();
  gw.pods.set('pod-a', 'ok');
  gw.pods.set('pod-b', 'ok');
  gw.assigns.push(ok('pod-a'), ok('pod-b'));
  const client = new EdgeClient({ url: gw.url, WebSocket: WS, random: () => 1, reconnectJitter: 0.5 });
  const retries = collect(client, 'retry');
  const closes = collect(client, 'close');
  const notices = collect(client, 'reconnect');
  try {
    client.start();
    await client.once('welcome');
    const server = gw.sockets.get('pod-a')![0]!;
    const t0 = Date.now();
    server.send(JSON.stringify({ type: 'reconnect', reason: 'draining', retryAfterMs: 200, assignUrl: '/ws/assign' }));
    server.close(1012, 'draining');
    const w = await client.once('welcome');
    const elapsed = Date.now() - t0;
    assert.equal(w.podId, 'pod-b');
    assert.deepEqual(notices, [{ reason: 'draining', retryAfterMs: 200, podId: 'pod-a' }]);
    assert.equal(closes.length, 1);
    assert.equal(closes[0]!.code, 1012);
    assert.equal(closes[0]!.podId, 'pod-a');
    assert.equal(retries.length, 1);
    assert.equal(retries[0]!.cause, 'reconnect_notice');
    // random() = 1 → 200 + 0.5 × 200 = 300 ms after the notice; never earlier than retryAfterMs.
    assert.ok(retries[0]!.delayMs <= 300 && retries[0]!.delayMs > 150, `delay ${retries[0]!.delayMs}`);
    assert.ok(elapsed >= 280, `re-assigned after ${elapsed} ms, expected ≥ 300 ms`);
    assert.equal(gw.assignCount, 2);
    assert.equal(client.stats.reconnectNotices, 1);
  } finally {
    client.stop();
    await gw.close();
  }
});

test('404 pod_not_found and 503 pod_draining on connect re-assign at once; other failures back off exponentially', async () => {
  const gw = await fakeGateway();
  gw.pods.set('gone', 404);
  gw.pods.set('draining', 503);
  gw.pods.set('pod-c', 'ok');
  gw.assigns.push(ok('gone'), ok('draining'), ok('pod-c'));
  const client = new EdgeClient({ url: gw.url, WebSocket: WS, random: () => 1, immediateJitterMs: 20, backoffInitialMs: 1000 });
  const retries = collect(client, 'retry');
  try {
    client.start();
    const w = await client.once('welcome');
    assert.equal(w.podId, 'pod-c');
    assert.deepEqual(retries.map((r) => [r.cause, r.delayMs]), [['pod_not_found', 20], ['pod_draining', 20]] satisfies Array<[RetryCause, number]>);
  } finally {
    client.stop();
    await gw.close();
  }
});

test('no_pods_available and broken answers back off 2^n up to the cap, and a welcome resets the backoff', async () => {
  const gw = await fakeGateway();
  gw.pods.set('pod-d', 'ok');
  const none = { status: 503, body: { error: 'no_pods_available', message: 'none' } };
  gw.assigns.push(none, none, { status: 200, body: { nope: true } }, none, none, ok('pod-d'));
  const client = new EdgeClient({ url: gw.url, WebSocket: WS, random: () => 1, backoffInitialMs: 10, backoffMaxMs: 40 });
  const retries = collect(client, 'retry');
  const errors = collect(client, 'error');
  try {
    client.start();
    await client.once('welcome');
    assert.deepEqual(retries.map((r) => r.delayMs), [10, 20, 40, 40, 40]);
    assert.deepEqual(retries.map((r) => r.cause), ['no_pods_available', 'no_pods_available', 'assign_failed', 'no_pods_available', 'no_pods_available']);
    assert.match(errors[0]!.message, /assign answered 503 no_pods_available/);
    // An unexpected close of a healthy connection starts again from the first step.
    gw.sockets.get('pod-d')![0]!.terminate();
    await until(() => retries.length === 6, 'retry after close');
    assert.deepEqual([retries[5]!.cause, retries[5]!.delayMs], ['closed', 10]);
    await client.once('welcome');
  } finally {
    client.stop();
    await gw.close();
  }
});

test('an unreachable gateway backs off; stop() cancels the pending retry and nothing runs afterwards', async () => {
  const gw = await fakeGateway();
  const url = gw.url;
  await gw.close();
  const client = new EdgeClient({ url, WebSocket: WS, random: () => 1, backoffInitialMs: 30 });
  const retries = collect(client, 'retry');
  client.start();
  await until(() => retries.length >= 2, 'two retries');
  assert.deepEqual(retries.slice(0, 2).map((r) => [r.cause, r.delayMs]), [['assign_failed', 30], ['assign_failed', 60]]);
  client.stop();
  const n = client.stats.assigns;
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(client.stats.assigns, n);
  assert.equal(client.state, 'stopped');
});

test('autoReconnect false: one connection, then stopped after the drain close', async () => {
  const gw = await fakeGateway();
  gw.pods.set('pod-e', 'ok');
  gw.assigns.push(ok('pod-e'));
  const client = new EdgeClient({ url: gw.url, WebSocket: WS, autoReconnect: false });
  try {
    client.start();
    await client.once('welcome');
    const stopped = new Promise<void>((resolve) => client.on('state', (s) => s === 'stopped' && resolve()));
    gw.sockets.get('pod-e')![0]!.close(1012, 'draining');
    await stopped;
    assert.equal(gw.assignCount, 1);
  } finally {
    client.stop();
    await gw.close();
  }
});

test('load driver: flag parsing names every bad flag; durations accept ms, s, m, h', () => {
  assert.equal(parseDuration('60s'), 60_000);
  assert.equal(parseDuration('2m'), 120_000);
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('1.5h'), 5_400_000);
  assert.equal(parseDuration('90'), 90_000);
  assert.ok(Number.isNaN(parseDuration('soon')));
  const o = parseLoadArgs(['--clients', '500', '--duration', '60s']);
  assert.deepEqual(o, { url: 'http://127.0.0.1:8080', clients: 500, durationMs: 60_000, rampMs: 10_000, pingMs: 5_000, reportMs: 1_000 });
  assert.equal(parseLoadArgs(['--duration', '3s']).rampMs, 1_000);
  assert.throws(() => parseLoadArgs(['--clients', '0', '--duration', 'x', '--url', 'ftp://a']), (err: Error) => {
    assert.match(err.message, /--clients 0/);
    assert.match(err.message, /--duration x/);
    assert.match(err.message, /--url ftp:\/\/a/);
    return true;
  });
});

test('load driver: ramps clients onto the pods, follows a drain to the other pod, closes everything at the end', async () => {
  const gw = await fakeGateway();
  gw.pods.set('pod-a', 'ok');
  gw.pods.set('pod-b', 'ok');
  // Alternate assignments until pod-a drains, then only pod-b.
  let drained = false;
  gw.assignFn = () => (drained || gw.assignCount % 2 === 1 ? ok('pod-b') : ok('pod-a'));
  const lines: string[] = [];
  const abort = new AbortController();
  const run = runLoad({ url: gw.url, clients: 20, durationMs: 20_000, rampMs: 200, pingMs: 100, reportMs: 100, signal: abort.signal, write: (l) => lines.push(l) });
  try {
    await until(() => (gw.sockets.get('pod-a')?.length ?? 0) + (gw.sockets.get('pod-b')?.length ?? 0) === 20, '20 connections');
    const onA = gw.sockets.get('pod-a')!.length;
    assert.ok(onA >= 5 && onA <= 15, `pod-a got ${onA} of 20`);
    drained = true;
    for (const s of gw.sockets.get('pod-a')!) {
      s.send(JSON.stringify({ type: 'reconnect', reason: 'draining', retryAfterMs: 10, assignUrl: '/ws/assign' }));
      s.close(1012, 'draining');
    }
    await until(() => gw.sockets.get('pod-b')!.filter((s) => s.readyState === WebSocket.OPEN).length === 20, 'all 20 on pod-b');
    await until(() => lines.some((l) => /open 20\/20 · pods 1 \[pod-b:20\]/.test(l)), 'a progress line with 20 on pod-b');
    abort.abort();
    const summary = await run;
    assert.equal(summary.clients, 20);
    assert.equal(summary.openAtEnd, 20);
    assert.equal(summary.peakOpen, 20);
    assert.equal(summary.reconnectNotices, onA);
    assert.equal(summary.welcomes, 20 + onA);
    assert.equal(summary.podsSeen, 2);
    assert.deepEqual(summary.perPod, { 'pod-b': 20 });
    assert.ok(summary.rttMs.samples > 0, 'pings were answered');
    await until(() => gw.sockets.get('pod-b')!.every((s) => s.readyState === WebSocket.CLOSED), 'server sides closed');
  } finally {
    abort.abort();
    await run;
    await gw.close();
  }
});

test('load driver CLI: a bad flag exits 2 with the usage', async () => {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/load.ts', '--clients', 'many'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const [code] = await once(child, 'exit');
  assert.equal(code, 2);
  assert.match(err, /--clients many: expected an integer/);
  assert.match(err, /Usage: npm run load/);
});
