/** `rtc-edge dev`: defaults, banner, start-up failure, orderly close, the Redis variant and Ctrl-C via the CLI. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket } from 'ws';
import { EdgeClient } from '../examples/client.js';
import { loadConfig } from '../src/config.js';
import { devBanner, start as startDev } from '../app/dev.js';
import { createLogger } from '../src/logger.js';
import { createMemoryRegistry, createRedisRegistry } from '../src/registry/index.js';
import { freePort } from './support/net.js';
import { startRedis } from './support/redis.js';

const WS = WebSocket;
const QUICK = { GATEWAY_PORT: '0', HEARTBEAT_MS: '200', SCALER_INTERVAL_MS: '300', DRAIN_WINDOW_MS: '300', LOG_LEVEL: 'silent' };

async function until<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as T;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function clientsOf(url: string, n: number, autoReconnect = false) {
  return Array.from({ length: n }, () => {
    const client = new EdgeClient({ url, WebSocket: WS, autoReconnect, backoffInitialMs: 50 });
    const seen: string[] = [];
    client.on('welcome', (w) => seen.push(`welcome:${w.podId}`));
    client.on('reconnect', (r) => seen.push(`reconnect:${r.podId}`));
    client.on('close', (c) => seen.push(`close:${c.podId}:${c.code}`));
    client.on('error', (e) => seen.push(`error:${e.message}`));
    client.start();
    return { client, seen };
  });
}

test('dev defaults suit a laptop demo, and every variable set in the environment still wins', () => {
  const c = loadConfig({}, 'dev');
  assert.equal(c.scalerWorkload, 'local');
  assert.equal(c.socketTargetConnections, 100);
  assert.equal(c.scalerIntervalMs, 1000);
  assert.equal(c.scaleInStabilizationMs, 30_000);
  assert.equal(c.heartbeatMs, 1000);
  assert.equal(c.drainWindowMs, 5000);
  assert.equal(c.gatewayPort, 8080);
  assert.equal(c.socketMinReplicas, 2);
  const o = loadConfig({ SOCKET_TARGET_CONNECTIONS: '1000', SCALE_IN_STABILIZATION_MS: '300000', DRAIN_WINDOW_MS: '60000' }, 'dev');
  assert.deepEqual([o.socketTargetConnections, o.scaleInStabilizationMs, o.drainWindowMs], [1000, 300_000, 60_000]);
  // Other roles keep the production defaults.
  const g = loadConfig({}, 'scaler');
  assert.deepEqual([g.scalerWorkload, g.socketTargetConnections, g.scaleInStabilizationMs, g.drainWindowMs], ['kubernetes', 1000, 300_000, 60_000]);
});

test('the banner names the status page, the assign URL and commands that work after npm ci', () => {
  const text = devBanner('http://127.0.0.1:8080', loadConfig({}, 'dev'), 'memory');
  assert.match(text, /Status page +http:\/\/127\.0\.0\.1:8080\/\n/);
  assert.match(text, /Assign +http:\/\/127\.0\.0\.1:8080\/ws\/assign\n/);
  assert.match(text, /Try a client +node --import tsx examples\/client\.ts --url http:\/\/127\.0\.0\.1:8080\n/);
  assert.match(text, /Drive load +npm run load -- --clients 500 --duration 60s --url http:\/\/127\.0\.0\.1:8080\n/);
  assert.match(text, /2-50 socket nodes, target 100 connections each\), memory registry/);
  assert.match(text, /Scale-in waits 30s .* Ctrl-C drains the socket nodes over 5s/);
  assert.match(text, /In dev one port serves clients and the admin routes \(status page, \/api\/\*, \/metrics\)\. `rtc-edge gateway` serves only \/ws\/\*, \/healthz and \/readyz on GATEWAY_PORT and the admin routes on GATEWAY_ADMIN_PORT \(default 9090\)/);
});

test('a busy GATEWAY_PORT fails start-up with EADDRINUSE before any socket node starts', async () => {
  const blocker = http.createServer();
  blocker.listen(0, '127.0.0.1');
  await once(blocker, 'listening');
  const port = (blocker.address() as AddressInfo).port;
  const registry = createMemoryRegistry();
  try {
    const config = loadConfig({ ...QUICK, GATEWAY_PORT: String(port) }, 'dev');
    await assert.rejects(startDev(config, { logger: createLogger('silent'), registry, host: '127.0.0.1', banner: () => assert.fail('no banner on failure') }), /EADDRINUSE/);
    assert.deepEqual(await registry.list(), [], 'no socket node registered');
  } finally {
    blocker.close();
    await registry.close();
  }
});

test('close() drains every socket node (reconnect, then 1012), removes their entries, and stops the gateway', async () => {
  const registry = createMemoryRegistry();
  const dev = await startDev(loadConfig(QUICK, 'dev'), { logger: createLogger('silent'), registry, host: '127.0.0.1', banner: () => {} });
  const clients = clientsOf(dev.url, 6);
  let closedOk = false;
  try {
    await until('6 clients open', () => clients.every((c) => c.client.state === 'open'));
    assert.equal((await registry.list()).length, 2);
    assert.equal(dev.workload.kind, 'local');
    await dev.close();
    closedOk = true;
    // The close frame was sent before close() resolved; the client's close event follows its TCP close.
    await until('every client closed', () => clients.every((c) => c.client.state === 'stopped'), 10_000);
    for (const { seen } of clients) {
      assert.equal(seen.length, 3, JSON.stringify(seen));
      const pod = seen[0]!.slice('welcome:'.length);
      assert.deepEqual(seen, [`welcome:${pod}`, `reconnect:${pod}`, `close:${pod}:1012`]);
    }
    assert.deepEqual(await registry.list(), [], 'nodes removed their registry entries');
    await assert.rejects(fetch(`${dev.url}/healthz`), 'the gateway no longer listens');
    await dev.close(); // idempotent
  } finally {
    for (const c of clients) c.client.stop();
    if (!closedOk) await dev.close();
    await registry.close();
  }
});

test('with REDIS_URL the same stack runs on Redis: another process sees the pods and the scaler decision', async () => {
  const redis = await startRedis();
  const dev = await startDev(loadConfig({ ...QUICK, REDIS_URL: redis.url, REDIS_PREFIX: 'devtest:' }, 'dev'), { logger: createLogger('silent'), host: '127.0.0.1', banner: (t) => assert.match(t, /, redis registry/) });
  const observer = createRedisRegistry({ url: redis.url, prefix: 'devtest:' });
  // Gateways learn of pods through Redis pub/sub: a client that comes in the first instant may need one retry.
  const clients = clientsOf(dev.url, 3, true);
  try {
    assert.equal(dev.registry.kind, 'redis');
    await until('3 clients open', () => clients.every((c) => c.client.state === 'open')).catch((err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify(clients.map((c) => c.seen))}`);
    });
    const pods = await until('2 pods with 3 connections in Redis', async () => {
      const list = await observer.list();
      return list.length === 2 && list.reduce((n, p) => n + p.connections, 0) === 3 && list;
    });
    assert.deepEqual(pods.map((p) => p.ip), ['127.0.0.1', '127.0.0.1']);
    const decision = await until('a scaler decision in Redis', async () => (await observer.getScalerDecision()) ?? undefined);
    assert.equal(decision.desiredReplicas, 2);
  } finally {
    for (const c of clients) c.client.stop();
    await dev.close();
    await observer.close();
    await redis.stop();
  }
});

test('the CLI: `rtc-edge dev` prints the banner on stderr, keeps stdout JSON, serves everything on one port, and Ctrl-C (SIGINT) exits 0', async () => {
  // A free port named as GATEWAY_ADMIN_PORT: dev must not listen on it.
  const blocked = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'app/cli.ts', 'dev'], { env: { ...process.env, ...QUICK, GATEWAY_ADMIN_PORT: String(blocked), LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    await until('the banner', () => stderr.includes('Ctrl-C drains'), 30_000);
    const url = /Status page +(http:\/\/127\.0\.0\.1:\d+)\//.exec(stderr)![1]!;
    // One port for everything in dev, whatever GATEWAY_ADMIN_PORT says (see the env above).
    const pods = (await (await fetch(`${url}/api/pods`)).json()) as { pods: unknown[] };
    assert.equal(pods.pods.length, 2);
    assert.match(await (await fetch(`${url}/metrics`)).text(), /rtc_gateway_upgrades_total/);
    assert.equal((await fetch(`${url}/ws/assign`)).status, 200);
    assert.equal(await fetch(`http://127.0.0.1:${blocked}/metrics`).then((r) => r.status, () => 'refused'), 'refused', 'nothing listens on GATEWAY_ADMIN_PORT in dev');
    child.kill('SIGINT');
    const [code] = await once(child, 'exit');
    assert.equal(code, 0, stderr);
    const lines = stdout.split('\n').filter(Boolean);
    assert.ok(lines.length > 3);
    for (const line of lines) assert.doesNotThrow(() => JSON.parse(line), `stdout line is JSON: ${line}`);
    assert.ok(lines.some((l) => l.includes('"msg":"dev stack ready"')));
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  }
});

test('the CLI: SIGTERM the moment the banner appears still drains and exits 0 (the signal listeners predate start-up)', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'app/cli.ts', 'dev'], { env: { ...process.env, ...QUICK, LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (stderr.includes('Ctrl-C drains')) child.kill('SIGTERM');
  });
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  assert.deepEqual({ code, signal }, { code: 0, signal: null }, stderr);
  assert.ok(stdout.includes('"msg":"dev: stopped"'), 'it drained and stopped, not killed by the signal');
});
