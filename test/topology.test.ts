/**
 * The cluster topology on one machine: two `rtc-edge socket` processes and one `rtc-edge gateway`
 * process sharing a real redis-server, exactly as the chart wires them (minus Kubernetes).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { startRedis, type RedisServer } from './support/redis.js';
import { spawnRole, type RoleProcess } from './support/role-process.js';

const procs: RoleProcess[] = [];
let redis: RedisServer;

/** Spawn a role through the real CLI on the shared Redis and wait for the log line `ready`. */
async function role(name: string, ready: string, env: Record<string, string>): Promise<RoleProcess> {
  const p = await spawnRole(name, ready, { REDIS_URL: redis.url, HEARTBEAT_MS: '300', LOG_LEVEL: 'info', POD_IP: '127.0.0.1', ...env });
  procs.push(p);
  return p;
}

interface Conn {
  ws: WebSocket;
  messages: Record<string, unknown>[];
  welcome: Promise<Record<string, unknown>>;
  closed: Promise<number>;
}

function connect(url: string): Conn {
  const ws = new WebSocket(url);
  const messages: Record<string, unknown>[] = [];
  let onWelcome!: (m: Record<string, unknown>) => void;
  const welcome = new Promise<Record<string, unknown>>((r) => (onWelcome = r));
  ws.on('message', (d) => {
    const m = JSON.parse(String(d)) as Record<string, unknown>;
    messages.push(m);
    if (m.type === 'welcome') onWelcome(m);
  });
  ws.on('error', () => undefined);
  const closed = new Promise<number>((r) => ws.on('close', (code) => r(code)));
  return { ws, messages, welcome, closed };
}

/** An upgrade attempt through node:http (fetch refuses Upgrade headers): status, headers and JSON body. */
function upgrade(url: string): Promise<{ status: number; retryAfter: string | undefined; body: { error?: string } }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' } });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 101, retryAfter: undefined, body: {} });
    });
    req.on('response', (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'], body: JSON.parse(text) as { error?: string } }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function until<T>(fn: () => Promise<T | undefined>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await sleep(50);
  }
}

before(async () => {
  redis = await startRedis();
});
after(async () => {
  for (const p of procs) await p.kill();
  await redis.stop();
});

test('gateway + two socket processes on Redis: assign, pinned routing, drain and re-home, SIGTERM removal', async () => {
  const socketEnv = { SOCKET_PORT: '0', ADMIN_PORT: '0', DRAIN_WINDOW_MS: '600', DRAIN_TIMEOUT_MS: '5000' };
  const a = await role('socket', 'socket node listening', { ...socketEnv, POD_NAME: 'socket-topo-a' });
  const b = await role('socket', 'socket node listening', { ...socketEnv, POD_NAME: 'socket-topo-b' });
  // The test checks the spread over both pods; the default strategy (pack) fills one pod first.
  const gw = await role('gateway', 'gateway listening', { GATEWAY_ASSIGN_STRATEGY: 'spread', GATEWAY_PORT: '0', GATEWAY_ADMIN_PORT: '0', GATEWAY_DRAIN_MS: '300' });
  const http = `http://127.0.0.1:${gw.log.port as number}`;
  const ws = `ws://127.0.0.1:${gw.log.port as number}`;
  const admin = `http://127.0.0.1:${gw.log.adminPort as number}`;
  assert.notEqual(gw.log.adminPort, gw.log.port, 'a role gateway serves its admin routes on their own port');
  assert.equal((await fetch(`${http}/api/pods`)).status, 404, 'the client-facing port does not serve /api/pods');
  const pods = async () => ((await (await fetch(`${admin}/api/pods`)).json()) as { pods: { podId: string; draining: boolean; connections: number }[] }).pods;
  await until(async () => ((await pods()).length === 2 ? true : undefined), 'both pods visible to the gateway');

  // New clients: assign, then connect to the pinned URL; each lands on the pod it was given.
  const clients: { podId: string; conn: Conn }[] = [];
  for (let i = 0; i < 20; i++) {
    const { podId, url } = (await (await fetch(`${http}/ws/assign`)).json()) as { podId: string; url: string };
    assert.equal(url, `/ws/${podId}/connect`);
    const conn = connect(`${ws}${url}?client=${i}`);
    assert.equal((await conn.welcome).podId, podId, 'welcomed by the assigned pod');
    clients.push({ podId, conn });
  }
  const onA = clients.filter((c) => c.podId === 'socket-topo-a');
  assert.ok(onA.length >= 5 && onA.length <= 15, `assignment spread over both pods (${onA.length} of 20 on a)`);
  await until(async () => ((await pods()).reduce((s, p) => s + p.connections, 0) === 20 ? true : undefined), 'heartbeats carry the connection counts');

  // The kubelet's preStop: /drain on a's admin port. Its clients get reconnect, then 1012, through the gateway.
  const drain = fetch(`http://127.0.0.1:${a.log.adminPort as number}/drain`);
  await until(async () => ((await pods()).find((p) => p.podId === 'socket-topo-a')?.draining ? true : undefined), 'draining visible at the gateway', 3000);
  const pinned = await upgrade(`${http}/ws/socket-topo-a/connect`);
  assert.equal(pinned.status, 503);
  assert.equal(pinned.body.error, 'pod_draining');
  assert.ok(pinned.retryAfter, 'Retry-After set');
  for (let i = 0; i < 10; i++) assert.equal(((await (await fetch(`${http}/ws/assign`)).json()) as { podId: string }).podId, 'socket-topo-b');

  const result = (await (await drain).json()) as { drained: number; remaining: number };
  assert.deepEqual(result, { drained: onA.length, remaining: 0 });
  for (const c of onA) {
    assert.equal(await c.conn.closed, 1012);
    const types = c.conn.messages.map((m) => m.type);
    assert.deepEqual(types, ['welcome', 'reconnect'], 'reconnect notice before the close');
    assert.equal(c.conn.messages[1]!.assignUrl, '/ws/assign');
  }
  for (const c of clients.filter((x) => x.podId === 'socket-topo-b')) assert.equal(c.conn.ws.readyState, WebSocket.OPEN, 'b untouched');

  // Re-home a's clients through /ws/assign.
  for (const c of onA) {
    const { url } = (await (await fetch(`${http}/ws/assign`)).json()) as { url: string };
    const conn = connect(`${ws}${url}`);
    assert.equal((await conn.welcome).podId, 'socket-topo-b');
    c.conn = conn;
  }

  // SIGTERM after the drain: exit 0 and the entry leaves every reader at once (pub/sub), not after 3 heartbeats.
  a.child.kill('SIGTERM');
  assert.equal(await a.exited, 0);
  const t0 = Date.now();
  await until(async () => ((await pods()).map((p) => p.podId).join() === 'socket-topo-b' ? true : undefined), 'a removed', 3000);
  assert.ok(Date.now() - t0 < 900, 'removal reached the gateway before the entry could expire');
  const gone = await upgrade(`${http}/ws/socket-topo-a/connect`);
  assert.equal(gone.status, 404);
  assert.equal(gone.body.error, 'pod_not_found');
  assert.equal((await upgrade(`${http}/ws/socket-topo-b/connect`)).status, 101);

  // Gateway SIGTERM: proxied clients are closed with 1001 after GATEWAY_DRAIN_MS, exit 0.
  gw.child.kill('SIGTERM');
  for (const c of clients) assert.equal(await c.conn.closed, 1001);
  assert.equal(await gw.exited, 0);
  b.child.kill('SIGTERM');
  assert.equal(await b.exited, 0);
});
