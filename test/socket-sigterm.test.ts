/** The real CLI (`rtc-edge socket`) as Kubernetes runs it: SIGTERM with and without a preStop drain, native check. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import readline from 'node:readline';
import { createRedisRegistry, type Registry } from '../src/registry/index.js';
import { startRedis, type RedisServer } from './support/redis.js';
import { Client, waitFor } from './socket-support.js';

interface Cli {
  child: ChildProcess;
  lines: Record<string, unknown>[];
  port: number;
  adminPort: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawn `node --import tsx src/cli.ts socket` and wait for its start-up log. */
async function spawnSocket(env: Record<string, string>): Promise<Cli> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'app/cli.ts', 'socket'], {
    env: { ...process.env, SOCKET_PORT: '0', ADMIN_PORT: '0', POD_IP: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
  const lines: Record<string, unknown>[] = [];
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const listening = new Promise<Record<string, unknown>>((resolve, reject) => {
    readline.createInterface({ input: child.stdout! }).on('line', (l) => {
      try {
        const rec = JSON.parse(l) as Record<string, unknown>;
        lines.push(rec);
        if (rec.msg === 'socket node listening') resolve(rec);
      } catch {
        /* not a log line */
      }
    });
    void exited.then(({ code }) => reject(new Error(`socket CLI exited (${code}) before listening: ${stderr}`)));
  });
  const rec = await listening;
  return { child, lines, port: rec.port as number, adminPort: rec.adminPort as number, exited };
}

describe('rtc-edge socket (CLI) shutdown', () => {
  let redis: RedisServer;
  let reader: Registry;
  const children: ChildProcess[] = [];
  before(async () => {
    redis = await startRedis();
    reader = createRedisRegistry({ url: redis.url, prefix: 'rtc:' });
  });
  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await reader.close();
    await redis.stop();
  });

  test('SIGTERM without a prior drain: clients get reconnect + 1012, the entry is removed, exit 0', async () => {
    const podId = `sigterm-a-${process.pid}`;
    // HEARTBEAT_MS=10000: the entry would live 30 s, so only an explicit removal explains its absence.
    const cli = await spawnSocket({ REDIS_URL: redis.url, POD_NAME: podId, HEARTBEAT_MS: '10000', DRAIN_WINDOW_MS: '300' });
    children.push(cli.child);
    const c = await Client.open(`ws://127.0.0.1:${cli.port}/ws/connect`);
    assert.equal((await c.json()).podId, podId);
    const entry = await waitFor(() => reader.get(podId));
    assert.equal(entry.adminPort, cli.adminPort);

    cli.child.kill('SIGTERM');
    const notice = await c.json();
    assert.equal(notice.type, 'reconnect');
    assert.equal((await c.closed).code, 1012);
    assert.deepEqual(await cli.exited, { code: 0, signal: null });
    assert.equal(await reader.get(podId), undefined);
    const msgs = cli.lines.map((l) => l.msg);
    assert.ok(msgs.includes('stop requested without a prior drain: draining first (bounded by DRAIN_TIMEOUT_MS)'));
    assert.ok(msgs.includes('socket node stopped'));
  });

  test('preStop /drain then SIGTERM: the drain answers with counts, SIGTERM exits 0 at once and removes the entry', async () => {
    const podId = `sigterm-b-${process.pid}`;
    const cli = await spawnSocket({ REDIS_URL: redis.url, POD_NAME: podId, HEARTBEAT_MS: '10000', DRAIN_WINDOW_MS: '300' });
    children.push(cli.child);
    const clients = await Promise.all([1, 2, 3].map(() => Client.open(`ws://127.0.0.1:${cli.port}/ws/connect`)));
    const health = (await (await fetch(`http://127.0.0.1:${cli.adminPort}/healthz`)).json()) as { connections: number };
    assert.equal(health.connections, 3);
    assert.equal((await reader.get(podId))?.draining, false);
    const res = await fetch(`http://127.0.0.1:${cli.adminPort}/drain`);
    assert.deepEqual(await res.json(), { drained: 3, remaining: 0 });
    assert.equal((await reader.get(podId))?.draining, true);
    for (const c of clients) assert.equal((await c.closed).code, 1012);

    const t0 = Date.now();
    cli.child.kill('SIGTERM');
    assert.deepEqual(await cli.exited, { code: 0, signal: null });
    assert.ok(Date.now() - t0 < 5000, 'no second drain after the preStop drain');
    assert.equal(await reader.get(podId), undefined);
    assert.ok(!cli.lines.some((l) => String(l.msg).startsWith('stop requested without a prior drain')));
  });
});

describe('native uWebSockets.js check', () => {
  test('the socket role refuses to start on the pure-JS fallback', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'app/cli.ts', 'socket'], {
      env: { ...process.env, UWS_USE_FALLBACK: '1', SOCKET_PORT: '0', ADMIN_PORT: '0', POD_IP: '127.0.0.1', LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 1);
    assert.match(out, /uWebSockets\.js native binary did not load/);
    assert.doesNotMatch(out, /socket node listening/);
  });

  test('isNativeUws tells the binding from a JS function', async () => {
    const { isNativeUws, assertNativeUws, uWS } = await import('../socket/uws.js');
    assert.equal(isNativeUws(uWS.App), true);
    assert.equal(isNativeUws(function App() {}), false);
    assert.throws(() => assertNativeUws(() => undefined), /native binary did not load/);
  });
});
