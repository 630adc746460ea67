/**
 * `npm run bench:socket`: one socket node in a child process holding ~20,000 idle WebSockets opened by two
 * client processes (raw TCP sockets doing a minimal handshake, so the clients stay cheap). Measures the node's
 * RSS per 1,000 connections (against a bare uWebSockets.js server under the same load), the registry heartbeat
 * time at 0 and at full load, echo round-trips on loopback, and the admin port's /healthz latency.
 * RSS growth is measured on anonymous resident memory (see rssAnon). Prints a table and writes
 * artifacts/bench-socket.json. Loopback only; bounded to a few minutes.
 *
 * Options: --connections N (default 19,900: a process may hold at most 20,000 fds, the node needs a few for
 * itself), --clients P (client processes, default 2), --no-bare (skip the bare uWS comparison).
 */
import { fork, execFileSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';

const SELF = fileURLToPath(import.meta.url);
const ROOT = path.resolve(path.dirname(SELF), '..');
const HOST = '127.0.0.1';
const HEARTBEAT_MS = 250;
const HEARTBEAT_SAMPLE_MS = 3000;
const ECHO_ROUNDS = 2000;
const HEALTHZ_ROUNDS = 200;
const CONNECT_IN_FLIGHT = 200; // per client process; stays below the listen backlog
const SETTLE_MS = 1500;
const MIB = 1024 * 1024;

type Msg = Record<string, unknown> & { type: string };

// ---------------------------------------------------------------- child roles

/** The socket node under test (role "node") or a bare uWS server with the same welcome (role "bare"). */
async function runServer(kind: 'node' | 'bare'): Promise<void> {
  const send = (m: Msg) => process.send!(m);
  let connections: () => number;
  let close: () => Promise<void>;
  let port: number;
  let adminPort = 0;
  if (kind === 'node') {
    const { loadConfig } = await import('../src/config.js');
    const { createLogger } = await import('../src/logger.js');
    const { start } = await import('../socket/index.js');
    const config = loadConfig(
      {
        ...process.env,
        SOCKET_PORT: '0',
        ADMIN_PORT: '0',
        POD_NAME: 'bench-socket',
        POD_IP: HOST,
        HEARTBEAT_MS: String(HEARTBEAT_MS),
        SOCKET_IDLE_TIMEOUT_S: '960', // idle clients are not pinged away during the run
        DRAIN_WINDOW_MS: '0',
        LOG_LEVEL: 'warn',
      },
      'socket',
    );
    const node = await start(config, { logger: createLogger('warn'), host: HOST });
    ({ port, adminPort } = node);
    connections = node.connections;
    close = node.close;
  } else {
    const { uWS } = await import('../socket/uws.js');
    let open = 0;
    const app = uWS.App().ws('/ws/connect', {
      idleTimeout: 960,
      open: (ws) => {
        open++;
        ws.send('{"type":"welcome"}');
      },
      message: (ws, m, b) => void ws.send(m, b),
      close: () => void open--,
    });
    const listenSocket = await new Promise<unknown>((resolve) => app.listen(HOST, 0, resolve));
    port = uWS.us_socket_local_port(listenSocket as never);
    connections = () => open;
    close = async () => uWS.us_listen_socket_close(listenSocket as never);
  }
  process.on('message', (m: Msg) => {
    if (m.type === 'rss') {
      // Two GCs a turn apart, so the figure is live memory rather than garbage awaiting collection.
      globalThis.gc?.();
      setImmediate(() => {
        globalThis.gc?.();
        const mu = process.memoryUsage();
        send({ type: 'rss', rss: mu.rss, rssAnon: rssAnon(), heapUsed: mu.heapUsed, external: mu.external, connections: connections() });
      });
    } else if (m.type === 'close') {
      void close().then(() => {
        send({ type: 'closed' });
        process.exit(0);
      });
    }
  });
  send({ type: 'ready', port, adminPort });
}

/** Client process: `count` raw WebSocket connections, each counted once its welcome frame arrived. */
function runClients(): void {
  const sockets: net.Socket[] = [];
  process.on('message', (m: Msg) => {
    if (m.type !== 'connect') return;
    const port = m.port as number;
    const count = m.count as number;
    const request = Buffer.from(
      `GET /ws/connect HTTP/1.1\r\nHost: ${HOST}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    let started = 0;
    let established = 0;
    let failed = 0;
    const t0 = performance.now();
    const finishOne = (ok: boolean) => {
      if (ok) established++;
      else failed++;
      if (established + failed === count) process.send!({ type: 'connected', established, failed, ms: performance.now() - t0 });
      else if (started < count) openOne();
    };
    const openOne = () => {
      started++;
      const s = net.connect(port, HOST);
      let buf = Buffer.alloc(0);
      let done = false;
      const settle = (ok: boolean) => {
        if (done) return;
        done = true;
        finishOne(ok);
      };
      s.on('connect', () => s.write(request));
      s.on('data', (chunk: Buffer) => {
        if (done) return;
        buf = Buffer.concat([buf, chunk]);
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        if (!buf.subarray(0, 12).toString().includes(' 101')) return settle(false);
        if (buf.length > end + 4) settle(true); // the welcome frame follows the 101 headers
      });
      s.on('error', () => settle(false));
      s.on('close', () => settle(false));
      sockets.push(s);
    };
    for (let i = 0; i < Math.min(CONNECT_IN_FLIGHT, count); i++) openOne();
  });
  process.send!({ type: 'ready' });
}

// ---------------------------------------------------------------- orchestration helpers

function spawnRole(role: string, extraEnv: Record<string, string> = {}): ChildProcess {
  return fork(SELF, [role], {
    cwd: ROOT,
    execArgv: ['--import', 'tsx', '--expose-gc'],
    env: { ...process.env, ...extraEnv },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

function nextMessage(child: ChildProcess, type: string, timeoutMs = 120_000): Promise<Msg> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for "${type}" from pid ${child.pid}`)), timeoutMs);
    const onMsg = (m: Msg) => {
      if (m.type !== type) return;
      clearTimeout(timer);
      child.off('message', onMsg);
      child.off('exit', onExit);
      resolve(m);
    };
    const onExit = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`pid ${child.pid} exited (${code}) while waiting for "${type}"`));
    };
    child.on('message', onMsg);
    child.once('exit', onExit);
  });
}

/**
 * Anonymous resident memory (heap, buffers, uWS state) from /proc: the part that grows with connections. Total
 * RSS also counts file-backed pages (the node binary) that the kernel may drop at any time, which makes
 * differences of a few MiB meaningless on a host reclaiming memory. Falls back to RSS off Linux.
 */
function rssAnon(): number {
  try {
    const kb = /^RssAnon:\s+(\d+) kB$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1];
    if (kb) return Number(kb) * 1024;
  } catch {
    /* not Linux */
  }
  return process.memoryUsage().rss;
}

async function rss(child: ChildProcess): Promise<{ rss: number; rssAnon: number; heapUsed: number; external: number; connections: number }> {
  child.send({ type: 'rss' });
  return (await nextMessage(child, 'rss')) as never;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const progress = (msg: string) => process.stderr.write(`bench-socket: ${msg}\n`);
const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

/** Sequential echo round-trips on one connection: p50/p99/max in ms. */
async function echoRtt(port: number, rounds: number): Promise<{ p50: number; p99: number; max: number; rounds: number }> {
  const ws = new WebSocket(`ws://${HOST}:${port}/ws/connect`);
  await once(ws, 'message'); // the welcome (may arrive in the same chunk as the 101, so not after 'open')
  const msg = JSON.stringify({ type: 'echo', data: 'x'.repeat(32) });
  const samples: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    ws.send(msg);
    await once(ws, 'message');
    samples.push(performance.now() - t0);
  }
  ws.close();
  await once(ws, 'close');
  samples.sort((a, b) => a - b);
  return { p50: quantile(samples, 0.5), p99: quantile(samples, 0.99), max: samples.at(-1)!, rounds };
}

/** GET /healthz latency on the admin port (a new TCP connection each time, as a kubelet probe does). */
async function healthzLatency(adminPort: number, rounds: number): Promise<{ p50: number; p99: number }> {
  const samples: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    const res = await fetch(`http://${HOST}:${adminPort}/healthz`);
    await res.arrayBuffer();
    samples.push(performance.now() - t0);
  }
  samples.sort((a, b) => a - b);
  return { p50: quantile(samples, 0.5), p99: quantile(samples, 0.99) };
}

/** Mean heartbeat time (ms) over the beats of the next `ms`, from the node's Prometheus histogram. */
async function heartbeatMean(adminPort: number, ms: number): Promise<{ meanMs: number; beats: number }> {
  const read = async () => {
    const text = await (await fetch(`http://${HOST}:${adminPort}/metrics`)).text();
    const num = (name: string) => Number(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
    return { sum: num('rtc_socket_heartbeat_duration_seconds_sum'), count: num('rtc_socket_heartbeat_duration_seconds_count') };
  };
  const a = await read();
  await sleep(ms);
  const b = await read();
  const beats = b.count - a.count;
  return { meanMs: beats > 0 ? ((b.sum - a.sum) / beats) * 1000 : NaN, beats };
}

/** Open `total` connections from `clients` processes; resolves the count and the time it took. */
async function connectAll(port: number, total: number, clients: ChildProcess[]): Promise<{ established: number; failed: number; ms: number }> {
  const share = Math.ceil(total / clients.length);
  const results = await Promise.all(
    clients.map((c, i) => {
      const count = Math.min(share, total - i * share);
      const done = nextMessage(c, 'connected', 150_000);
      c.send({ type: 'connect', port, count });
      return done;
    }),
  );
  return {
    established: results.reduce((n, r) => n + (r.established as number), 0),
    failed: results.reduce((n, r) => n + (r.failed as number), 0),
    ms: Math.max(...results.map((r) => r.ms as number)),
  };
}

function redisAvailable(): boolean {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** One load phase against a server child: baseline RSS, connect, loaded RSS. */
async function loadPhase(kind: 'node' | 'bare', total: number, clientCount: number, env: Record<string, string>, extra?: (ready: Msg) => Promise<Record<string, unknown>>) {
  progress(`${kind}: starting`);
  const server = spawnRole(kind, env);
  const ready = await nextMessage(server, 'ready', 30_000);
  const port = ready.port as number;
  const clients = Array.from({ length: clientCount }, () => spawnRole('clients'));
  try {
    await Promise.all(clients.map((c) => nextMessage(c, 'ready', 30_000)));
    await sleep(SETTLE_MS);
    const base = await rss(server);
    const before = extra ? await extra(ready) : {};
    progress(`${kind}: opening ${total} connections from ${clientCount} client processes`);
    const conn = await connectAll(port, total, clients);
    progress(`${kind}: ${conn.established} open (${conn.failed} failed) in ${Math.round(conn.ms)} ms`);
    await sleep(SETTLE_MS);
    const loaded = await rss(server);
    const after = extra ? await extra(ready) : {};
    const perThousandMiB = (loaded.rssAnon - base.rssAnon) / MIB / (loaded.connections / 1000);
    return { kind, port, base, loaded, conn, perThousandMiB, before, after };
  } finally {
    for (const c of clients) c.kill('SIGKILL');
    server.send({ type: 'close' });
    await nextMessage(server, 'closed', 30_000).catch(() => undefined);
    server.kill('SIGKILL');
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { connections: { type: 'string', default: '19900' }, clients: { type: 'string', default: '2' }, 'no-bare': { type: 'boolean', default: false } },
  });
  const total = Number(values.connections);
  const clientCount = Number(values.clients);
  const started = performance.now();

  let redis: { url: string; stop(): Promise<void> } | undefined;
  if (redisAvailable()) redis = await (await import('../test/support/redis.js')).startRedis();
  const env: Record<string, string> = redis ? { REDIS_URL: redis.url } : {};
  if (!redis) delete process.env.REDIS_URL;

  try {
    const measure = async (ready: Msg) => ({
      heartbeat: await heartbeatMean(ready.adminPort as number, HEARTBEAT_SAMPLE_MS),
      echo: await echoRtt(ready.port as number, ECHO_ROUNDS),
      healthz: await healthzLatency(ready.adminPort as number, HEALTHZ_ROUNDS),
    });
    const node = await loadPhase('node', total, clientCount, env, measure);
    const bare = values['no-bare'] ? undefined : await loadPhase('bare', total, clientCount, {});

    type Measured = Awaited<ReturnType<typeof measure>>;
    const b = node.before as Measured;
    const a = node.after as Measured;
    const result = {
      at: new Date().toISOString(),
      node: process.version,
      cpus: (await import('node:os')).cpus().length,
      registry: redis ? 'redis' : 'memory',
      connections: { requested: total, established: node.conn.established, failed: node.conn.failed, connectMs: Math.round(node.conn.ms) },
      rss: {
        baselineMiB: +(node.base.rss / MIB).toFixed(1),
        loadedMiB: +(node.loaded.rss / MIB).toFixed(1),
        anonBaselineMiB: +(node.base.rssAnon / MIB).toFixed(1),
        anonLoadedMiB: +(node.loaded.rssAnon / MIB).toFixed(1),
        perThousandMiB: +node.perThousandMiB.toFixed(3),
        heapUsedBaselineMiB: +(node.base.heapUsed / MIB).toFixed(1),
        heapUsedLoadedMiB: +(node.loaded.heapUsed / MIB).toFixed(1),
        bareUwsPerThousandMiB: bare ? +bare.perThousandMiB.toFixed(3) : null,
        targetPerThousandMiB: 1,
      },
      heartbeat: {
        idleMeanMs: +b.heartbeat.meanMs.toFixed(3),
        loadedMeanMs: +a.heartbeat.meanMs.toFixed(3),
        idleBeats: b.heartbeat.beats,
        loadedBeats: a.heartbeat.beats,
        intervalMs: HEARTBEAT_MS,
      },
      echoRttMs: {
        idle: { p50: +b.echo.p50.toFixed(3), p99: +b.echo.p99.toFixed(3), max: +b.echo.max.toFixed(3) },
        loaded: { p50: +a.echo.p50.toFixed(3), p99: +a.echo.p99.toFixed(3), max: +a.echo.max.toFixed(3) },
        rounds: ECHO_ROUNDS,
      },
      adminHealthzMs: { idle: { p50: +b.healthz.p50.toFixed(3), p99: +b.healthz.p99.toFixed(3) }, loaded: { p50: +a.healthz.p50.toFixed(3), p99: +a.healthz.p99.toFixed(3) } },
      durationS: +((performance.now() - started) / 1000).toFixed(1),
    };

    const n = result.connections.established;
    const rows: Array<[string, string, string]> = [
      ['connections held (node)', `${n.toLocaleString('en')} of ${total.toLocaleString('en')}`, `${result.connections.failed} failed, opened in ${result.connections.connectMs} ms`],
      ['RSS baseline -> loaded', `${result.rss.baselineMiB} -> ${result.rss.loadedMiB} MiB`, `anonymous ${result.rss.anonBaselineMiB} -> ${result.rss.anonLoadedMiB} MiB; V8 heap ${result.rss.heapUsedBaselineMiB} -> ${result.rss.heapUsedLoadedMiB} MiB`],
      ['RSS per 1,000 connections', `${result.rss.perThousandMiB} MiB`, `anonymous RSS growth; target <= 1 MiB${bare ? `; bare uWS ${result.rss.bareUwsPerThousandMiB} MiB` : ''}`],
      ['heartbeat, 0 connections', `${result.heartbeat.idleMeanMs} ms`, `mean of ${result.heartbeat.idleBeats} beats (${result.registry})`],
      [`heartbeat, ${n.toLocaleString('en')} connections`, `${result.heartbeat.loadedMeanMs} ms`, `mean of ${result.heartbeat.loadedBeats} beats (${result.registry})`],
      ['echo RTT idle p50 / p99', `${result.echoRttMs.idle.p50} / ${result.echoRttMs.idle.p99} ms`, `${ECHO_ROUNDS} sequential round-trips`],
      ['echo RTT loaded p50 / p99', `${result.echoRttMs.loaded.p50} / ${result.echoRttMs.loaded.p99} ms`, `with ${n.toLocaleString('en')} idle connections`],
      ['admin /healthz p50 / p99', `${result.adminHealthzMs.loaded.p50} / ${result.adminHealthzMs.loaded.p99} ms`, 'loaded; new TCP connection per probe'],
    ];
    const w0 = Math.max(...rows.map((r) => r[0].length));
    const w1 = Math.max(...rows.map((r) => r[1].length));
    process.stdout.write(`\nbench-socket (${result.node}, ${result.cpus} CPUs, loopback, ${result.durationS} s)\n`);
    for (const [k, v, note] of rows) process.stdout.write(`  ${k.padEnd(w0)}  ${v.padEnd(w1)}  ${note}\n`);
    fs.mkdirSync(path.join(ROOT, 'artifacts'), { recursive: true });
    const out = path.join(ROOT, 'artifacts', 'bench-socket.json');
    fs.writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    process.stdout.write(`\nwrote ${path.relative(process.cwd(), out)}\n`);
    if (result.connections.failed > 0) process.exitCode = 1;
  } finally {
    await redis?.stop();
  }
}

const role = process.argv[2];
if (role === 'node' || role === 'bare') void runServer(role);
else if (role === 'clients') runClients();
else
  main().catch((err: unknown) => {
    process.stderr.write(`bench-socket: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
