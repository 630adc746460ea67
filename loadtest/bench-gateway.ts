/**
 * `npm run bench:gateway`: direct vs through the gateway vs through nginx (the regex route of the
 * original design), side by side in one run, in front of the same uWebSockets.js socket node.
 *
 * Processes: redis-server (registry), the socket node (`rtc-edge socket`), the proxy under test
 * (`rtc-edge gateway`, `nginx` with one process, or `--engines …,http-proxy-3` for the comparison engine)
 * each in its own child process, and the clients in this process (a lean raw WebSocket client, so the
 * client side costs little of the 2 shared cores). The proxy's RSS and CPU come from /proc/<pid>.
 *
 * Per mode: RSS per 1,000 idle proxied connections (the larger of the slope between n/2 and n and the
 * growth from the fresh process), CPU per upgrade handshake, CPU per relayed
 * round trip (ping → pong = one message each way), sequential round-trip p50. At `--connections`
 * (default 2,000; median of `--runs`, default 3) and once at the descriptor limit (`--scale`, default
 * 9,900), where the gateway must answer 503 beyond its descriptors and keep serving. Loopback only,
 * bounded (< 5 min). Prints a table with ratios and writes artifacts/bench-gateway.json. Every proxy is
 * first warmed up (1,000 connections opened, pinged and closed) so that Node's JIT-compiled code is
 * measured in its steady state, as in a long-running gateway: CPU is counted after the warm-up, RSS
 * growth from the fresh process (so the warm-up's heap growth is charged too: an upper bound).
 *
 * Options: --runs N, --connections N, --scale N (0 = skip), --engines gateway,nginx[,http-proxy-3],
 * --quick (1 run, 1,000 connections, scale 3,000), --profile (gateway runs with --cpu-prof and
 * --heap-prof; profiles land in artifacts/profiles/, open them in Chrome DevTools).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort } from '../test/support/net.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const POD_ID = 'bench-pod';
const NGINX = '/usr/sbin/nginx';
const CLK_TCK = 100;
const BENCH_DEADLINE_MS = 290_000;
const OPEN_CONCURRENCY = 64;
const RELAY_ROUNDS = 5;
const RELAY_CONNECTIONS = 2000;
const RTT_SAMPLES = 1000;
const SETTLE_MS = 1500;
const EXTRA_AT_SCALE = 200;
/** Connections opened, pinged and closed before measuring, so JIT-compiling proxies are measured warm (steady state). */
const WARMUP_CONNECTIONS = 1000;
const WARMUP_ROUNDS = 3;
const SAMPLE_AFTER_OVERLOAD = 100;
const MIB = 1024 * 1024;

type Mode = 'direct' | 'gateway' | 'nginx' | 'http-proxy-3';

// ---------------------------------------------------------------------------------------------
// Child mode: the http-proxy-3 comparison engine (same route shape, static target).
// ---------------------------------------------------------------------------------------------
async function runHttpProxy3Child(port: number, upstream: string): Promise<void> {
  const { createProxyServer } = await import('http-proxy-3');
  const proxy = createProxyServer({ ws: true, xfwd: true });
  proxy.on('error', (_err: unknown, _req: unknown, res: unknown) => {
    const s = res as net.Socket | undefined;
    if (s && typeof s.destroy === 'function') s.destroy();
  });
  const route = /^\/ws\/([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)\/connect(\?[^#]*)?$/;
  const server = http.createServer((_req, res) => {
    res.writeHead(404).end();
  });
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    socket.on('error', () => undefined);
    const m = route.exec(req.url ?? '');
    if (!m || m[1] !== POD_ID) {
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    req.url = `/ws/connect${m[3] ?? ''}`;
    proxy.ws(req, socket, head, { target: `http://${upstream}` });
  });
  server.listen(port, '127.0.0.1');
}

// ---------------------------------------------------------------------------------------------
// A lean WebSocket client (raw TCP): handshake, masked text frames out, unmasked frames in.
// ---------------------------------------------------------------------------------------------
type OpenResult = { conn: WsConn } | { status: number | 'closed' | 'error' | 'timeout' };

class WsConn {
  private buf: Buffer | undefined;
  private waiter: ((text: string) => void) | undefined;
  closed = false;
  constructor(readonly socket: net.Socket) {
    socket.on('close', () => (this.closed = true));
  }

  feed(chunk: Buffer): void {
    let b = this.buf ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      if (b.length < 2) break;
      let len = b[1]! & 0x7f;
      let off = 2;
      if (len === 126) {
        if (b.length < 4) break;
        len = b.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (b.length < 10) break;
        len = Number(b.readBigUInt64BE(2));
        off = 10;
      }
      if (b.length < off + len) break;
      const opcode = b[0]! & 0x0f;
      const payload = b.subarray(off, off + len);
      b = b.subarray(off + len);
      if (opcode === 1 && this.waiter) {
        const text = payload.toString('utf8');
        if (text.includes('"pong"')) {
          const w = this.waiter;
          this.waiter = undefined;
          w(text);
        }
      }
    }
    this.buf = b.length > 0 ? Buffer.from(b) : undefined;
  }

  /** Send a ping and resolve on its pong. */
  ping(t: number): Promise<string> {
    return new Promise((resolve, reject) => {
      if (this.closed) {
        reject(new Error('closed'));
        return;
      }
      this.waiter = resolve;
      const payload = Buffer.from(`{"type":"ping","t":${t}}`);
      const frame = Buffer.allocUnsafe(6 + payload.length);
      frame[0] = 0x81;
      frame[1] = 0x80 | payload.length;
      frame.writeUInt32BE(0, 2); // zero mask: valid, and payload stays as is
      payload.copy(frame, 6);
      this.socket.write(frame);
    });
  }
}

function openWs(port: number, urlPath: string, timeoutMs = 10_000): Promise<OpenResult> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1', noDelay: true });
    let head = Buffer.alloc(0);
    let done = false;
    const finish = (r: OpenResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(r);
    };
    const timer = setTimeout(() => {
      s.destroy();
      finish({ status: 'timeout' });
    }, timeoutMs);
    s.on('error', () => finish({ status: 'error' }));
    s.on('close', () => finish({ status: 'closed' }));
    const onData = (d: Buffer) => {
      head = Buffer.concat([head, d]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      const status = Number(head.toString('latin1', 9, 12));
      if (status !== 101) {
        s.destroy();
        finish({ status });
        return;
      }
      s.off('data', onData);
      const conn = new WsConn(s);
      s.on('data', (c: Buffer) => conn.feed(c));
      if (head.length > end + 4) conn.feed(head.subarray(end + 4));
      finish({ conn });
    };
    s.on('data', onData);
    s.write(`GET ${urlPath} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  });
}

async function openMany(port: number, urlPath: string, n: number): Promise<{ conns: WsConn[]; failures: Record<string, number> }> {
  const conns: WsConn[] = [];
  const failures: Record<string, number> = {};
  let next = 0;
  const worker = async () => {
    while (next < n) {
      next++;
      const r = await openWs(port, urlPath);
      if ('conn' in r) conns.push(r.conn);
      else failures[String(r.status)] = (failures[String(r.status)] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: OPEN_CONCURRENCY }, worker));
  return { conns, failures };
}

// ---------------------------------------------------------------------------------------------
// /proc sampling
// ---------------------------------------------------------------------------------------------
interface ProcSample {
  rssBytes: number;
  cpuSeconds: number;
}

function sample(pid: number): ProcSample {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? NaN);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return { rssBytes: rssKb * 1024, cpuSeconds: ticks / CLK_TCK };
}

function fdCount(pid: number): number {
  try {
    return execFileSync('ls', [`/proc/${pid}/fd`]).toString().split('\n').filter(Boolean).length;
  } catch {
    return NaN;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

// ---------------------------------------------------------------------------------------------
// Children
// ---------------------------------------------------------------------------------------------
const children = new Set<ChildProcess>();

function spawnChild(cmd: string, args: string[], env: Record<string, string>, label: string): ChildProcess {
  const child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child);
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  child.on('exit', (code, signal) => {
    children.delete(child);
    if (code && code !== 0) process.stderr.write(`bench: ${label} exited ${code ?? signal}: ${err}\n`);
  });
  return child;
}

async function stopChild(child: ChildProcess | undefined, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(t);
}

async function httpStatus(url: string): Promise<number> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

async function waitUntil(what: string, fn: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`bench: ${what} not ready within ${ms} ms`);
    await sleep(50);
  }
}

function ensureNginx(): void {
  if (existsSync(NGINX)) return;
  process.stdout.write('bench: installing nginx-light (Debian) …\n');
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'nginx-light'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}

function nginxConf(dir: string, port: number, upstreamPort: number): string {
  // The original route, with the pod's address from a map instead of cluster DNS (no resolver on loopback).
  // worker_connections above the descriptor limit: with it equal, nginx starts closing connections
  // ("worker_connections are not enough, reusing connections") long before its descriptors run out.
  return `worker_processes 1;
worker_rlimit_nofile 20000;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 40000; multi_accept on; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  map $podid $pod_address { default 127.0.0.1:${upstreamPort}; }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location ~ ^/ws/(?<podid>[a-zA-Z0-9-]+)/connect$ {
      proxy_pass http://$pod_address/ws/connect$is_args$args;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Request-Id $request_id;
      proxy_read_timeout 3600s;
      proxy_send_timeout 3600s;
      proxy_buffering off;
    }
  }
}
`;
}

interface Proxy {
  pid: number | undefined;
  port: number;
  path: string;
  stop(): Promise<void>;
}

async function startProxy(mode: Mode, env: { redisUrl: string; socketPort: number; tmp: string; profileDir?: string }): Promise<Proxy> {
  if (mode === 'direct') return { pid: undefined, port: env.socketPort, path: '/ws/connect', stop: async () => undefined };
  const port = await freePort();
  const podPath = `/ws/${POD_ID}/connect`;
  let child: ChildProcess;
  if (mode === 'gateway') {
    const prof = env.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${env.profileDir}`, '--heap-prof', `--heap-prof-dir=${env.profileDir}`] : [];
    child = spawnChild(process.execPath, [...prof, '--import', 'tsx', 'app/cli.ts', 'gateway'], {
      GATEWAY_PORT: String(port),
      GATEWAY_ADMIN_PORT: '0',
      REDIS_URL: env.redisUrl,
      GATEWAY_MAX_CONNECTIONS: '20000',
      HEARTBEAT_MS: '1000',
      LOG_LEVEL: 'warn',
    }, 'gateway');
    await waitUntil('gateway', async () => (await httpStatus(`http://127.0.0.1:${port}/ws/assign`)) === 200);
  } else if (mode === 'nginx') {
    const dir = mkdtempSync(path.join(env.tmp, 'nginx-'));
    writeFileSync(path.join(dir, 'nginx.conf'), nginxConf(dir, port, env.socketPort));
    child = spawnChild(NGINX, ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-g', 'daemon off; master_process off;'], {}, 'nginx');
    await waitUntil('nginx', async () => (await httpStatus(`http://127.0.0.1:${port}/nothing`)) === 404);
  } else {
    child = spawnChild(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', 'http-proxy-3', '--port', String(port), '--upstream', `127.0.0.1:${env.socketPort}`], {}, 'http-proxy-3');
    await waitUntil('http-proxy-3', async () => (await httpStatus(`http://127.0.0.1:${port}/`)) === 404);
  }
  await sleep(300);
  // A profiled gateway must exit cleanly (SIGTERM → graceful close) to write its profiles.
  return { pid: child.pid, port, path: podPath, stop: () => stopChild(child, env.profileDir && mode === 'gateway' ? 'SIGTERM' : 'SIGKILL') };
}

// ---------------------------------------------------------------------------------------------
// One measurement
// ---------------------------------------------------------------------------------------------
interface Measurement {
  connections: number;
  failures: Record<string, number>;
  /** Headline: the larger of the two estimates below (V8 grows its heap in steps, so either can hide it). */
  rssPer1000MiB: number;
  /** Marginal RSS of 1,000 more idle connections (slope between n/2 and n). */
  rssSlopePer1000MiB: number;
  /** RSS growth from the fresh process (warm-up included) per 1,000 connections. */
  rssGrowthPer1000MiB: number;
  baselineRssMiB: number;
  cpuPerHandshakeUs: number;
  cpuPerRoundTripUs: number;
  rttP50Us: number;
  rttP99Us: number;
  /** Direct round trips interleaved with the proxied ones (same moment, same load): the fair RTT reference. */
  directRttP50Us: number;
  overload?: { attempted: number; proxied: number; refused: Record<string, number>; sampledAfter: number; sampledOk: number; proxyAlive: boolean; healthz: number; fds: number };
}

async function closeAll(conns: WsConn[]): Promise<void> {
  for (const c of conns) c.socket.destroy();
  await sleep(300);
}

async function warmUp(proxy: Proxy): Promise<void> {
  const { conns } = await openMany(proxy.port, proxy.path, WARMUP_CONNECTIONS);
  await Promise.all(conns.map(async (c, i) => {
    for (let k = 0; k < WARMUP_ROUNDS; k++) await c.ping(i);
  }));
  await closeAll(conns);
  await sleep(SETTLE_MS);
}

async function measure(mode: Mode, proxy: Proxy, n: number, atScale: boolean, directPort: number): Promise<Measurement> {
  const pid = proxy.pid;
  // RSS is counted from the fresh process (warm-up growth is charged to the proxy: an upper bound);
  // CPU is counted after the warm-up (steady state).
  const fresh = pid ? sample(pid) : undefined;
  await warmUp(proxy);
  const base = pid ? sample(pid) : undefined;
  // Open in two halves: CPU over all handshakes; RSS as the slope between the halves (the marginal
  // memory of 1,000 more idle connections) and as growth from the fresh process (an upper bound).
  const first = await openMany(proxy.port, proxy.path, Math.floor(n / 2));
  const c1 = pid ? sample(pid) : undefined;
  await sleep(SETTLE_MS);
  const half = pid ? sample(pid) : undefined;
  const c2 = pid ? sample(pid) : undefined;
  const second = await openMany(proxy.port, proxy.path, n - Math.floor(n / 2));
  const c3 = pid ? sample(pid) : undefined;
  const conns = [...first.conns, ...second.conns];
  const failures: Record<string, number> = { ...first.failures };
  for (const [k, v] of Object.entries(second.failures)) failures[k] = (failures[k] ?? 0) + v;
  await sleep(SETTLE_MS);
  const idle = pid ? sample(pid) : undefined;

  // Relay: every connection (up to RELAY_CONNECTIONS) does RELAY_ROUNDS sequential ping/pongs, all at once.
  const relayConns = conns.slice(0, RELAY_CONNECTIONS);
  const r0 = pid ? sample(pid) : undefined;
  await Promise.all(relayConns.map(async (c, i) => {
    for (let k = 0; k < RELAY_ROUNDS; k++) await c.ping(i * RELAY_ROUNDS + k);
  }));
  const r1 = pid ? sample(pid) : undefined;

  // Sequential round trips on one connection while the others sit idle, alternating with a direct
  // connection so that both see the same machine load (this machine's cores are shared).
  const rtts: number[] = [];
  const direct: number[] = [];
  const probe = conns[conns.length - 1]!;
  const ref = await openWs(directPort, '/ws/connect');
  if (!('conn' in ref)) throw new Error(`bench: direct reference connection failed: ${ref.status}`);
  for (let k = 0; k < RTT_SAMPLES; k++) {
    let t = performance.now();
    await probe.ping(k);
    rtts.push((performance.now() - t) * 1000);
    t = performance.now();
    await ref.conn.ping(k);
    direct.push((performance.now() - t) * 1000);
  }
  ref.conn.socket.destroy();
  rtts.sort((a, b) => a - b);
  direct.sort((a, b) => a - b);

  let overload: Measurement['overload'];
  if (atScale && mode !== 'direct' && pid) {
    const extra = await openMany(proxy.port, proxy.path, EXTRA_AT_SCALE);
    const sampled = [...conns.filter((_, i) => i % Math.max(1, Math.floor(conns.length / SAMPLE_AFTER_OVERLOAD)) === 0)].slice(0, SAMPLE_AFTER_OVERLOAD);
    let ok = 0;
    await Promise.all(sampled.map(async (c, i) => {
      try {
        await Promise.race([c.ping(i), sleep(5000).then(() => Promise.reject(new Error('timeout')))]);
        ok++;
      } catch {
        /* counted as not ok */
      }
    }));
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch {
      alive = false;
    }
    const healthz = mode === 'nginx' ? NaN : await httpStatus(`http://127.0.0.1:${proxy.port}/healthz`);
    overload = { attempted: EXTRA_AT_SCALE, proxied: extra.conns.length, refused: extra.failures, sampledAfter: sampled.length, sampledOk: ok, proxyAlive: alive, healthz, fds: fdCount(pid) };
    await closeAll(extra.conns);
  }

  await closeAll(conns);
  const got = conns.length;
  const slope = half && idle ? ((idle.rssBytes - half.rssBytes) / MIB / second.conns.length) * 1000 : NaN;
  const growth = fresh && idle ? ((idle.rssBytes - fresh.rssBytes) / MIB / got) * 1000 : NaN;
  return {
    connections: got,
    failures,
    baselineRssMiB: fresh ? fresh.rssBytes / MIB : NaN,
    rssPer1000MiB: Math.max(slope, growth),
    rssSlopePer1000MiB: slope,
    rssGrowthPer1000MiB: growth,
    cpuPerHandshakeUs: base && c1 && c2 && c3 ? ((c1.cpuSeconds - base.cpuSeconds + c3.cpuSeconds - c2.cpuSeconds) / got) * 1e6 : NaN,
    cpuPerRoundTripUs: r0 && r1 ? ((r1.cpuSeconds - r0.cpuSeconds) / (relayConns.length * RELAY_ROUNDS)) * 1e6 : NaN,
    rttP50Us: rtts[Math.floor(rtts.length / 2)]!,
    rttP99Us: rtts[Math.floor(rtts.length * 0.99)]!,
    directRttP50Us: direct[Math.floor(direct.length / 2)]!,
    ...(overload ? { overload } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------
function fmt(x: number, digits = 1): string {
  return Number.isFinite(x) ? x.toFixed(digits) : '–';
}

async function main(): Promise<boolean> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string' },
      connections: { type: 'string' },
      scale: { type: 'string' },
      engines: { type: 'string' },
      quick: { type: 'boolean' },
      profile: { type: 'boolean' },
      child: { type: 'string' },
      port: { type: 'string' },
      upstream: { type: 'string' },
    },
  });
  if (values.child === 'http-proxy-3') {
    await runHttpProxy3Child(Number(values.port), values.upstream!);
    return true;
  }
  const runs = Number(values.runs ?? (values.quick ? 1 : 3));
  const n = Number(values.connections ?? (values.quick ? 1000 : 2000));
  const scale = Number(values.scale ?? (values.quick ? 3000 : 9900));
  const engines = (values.engines ?? 'gateway,nginx').split(',').map((s) => s.trim()) as Mode[];
  const modes: Mode[] = ['direct', ...engines.filter((e) => e !== 'direct')];
  const profileDir = values.profile ? path.join(ROOT, 'artifacts', 'profiles') : undefined;
  if (profileDir) mkdirSync(profileDir, { recursive: true });

  const deadline = setTimeout(() => {
    process.stderr.write('bench: deadline exceeded, stopping\n');
    for (const c of children) c.kill('SIGKILL');
    process.exit(1);
  }, BENCH_DEADLINE_MS);
  deadline.unref();

  if (modes.includes('nginx')) ensureNginx();
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'bench-gateway-'));
  const { startRedis } = await import('../test/support/redis.js');
  const redis = await startRedis();
  const socketPort = await freePort();
  const adminPort = await freePort();
  const node = spawnChild(process.execPath, ['--import', 'tsx', 'app/cli.ts', 'socket'], {
    SOCKET_PORT: String(socketPort),
    ADMIN_PORT: String(adminPort),
    POD_NAME: POD_ID,
    POD_IP: '127.0.0.1',
    REDIS_URL: redis.url,
    HEARTBEAT_MS: '1000',
    SOCKET_IDLE_TIMEOUT_S: '0',
    LOG_LEVEL: 'warn',
  }, 'socket node');
  type Summary = Omit<Measurement, 'failures' | 'overload'> & { rttRatio: number };
  const results: Record<string, { runs: Measurement[]; median: Summary; scale?: Measurement }> = {};
  try {
    await waitUntil('socket node', async () => (await httpStatus(`http://127.0.0.1:${adminPort}/readyz`)) === 200);
    process.stdout.write(`bench: socket node on ${socketPort}; ${runs} run(s) × ${n} connections per mode${scale > 0 ? `, then ${scale} at the descriptor limit` : ''}\n`);
    for (const mode of modes) {
      const ms: Measurement[] = [];
      for (let r = 0; r < runs; r++) {
        const proxy = await startProxy(mode, { redisUrl: redis.url, socketPort, tmp, ...(profileDir ? { profileDir } : {}) });
        try {
          ms.push(await measure(mode, proxy, n, false, socketPort));
        } finally {
          await proxy.stop();
        }
        const m = ms[ms.length - 1]!;
        process.stdout.write(`  ${mode.padEnd(13)} run ${r + 1}: ${m.connections} conns, RSS/1k ${fmt(m.rssPer1000MiB)} MiB (slope ${fmt(m.rssSlopePer1000MiB)}, from fresh ${fmt(m.rssGrowthPer1000MiB)}), CPU/handshake ${fmt(m.cpuPerHandshakeUs, 0)} µs, CPU/round trip ${fmt(m.cpuPerRoundTripUs)} µs, RTT p50 ${fmt(m.rttP50Us)} µs${Object.keys(m.failures).length ? `, failures ${JSON.stringify(m.failures)}` : ''}\n`);
      }
      results[mode] = {
        runs: ms,
        median: {
          connections: median(ms.map((m) => m.connections)),
          baselineRssMiB: median(ms.map((m) => m.baselineRssMiB)),
          rssPer1000MiB: median(ms.map((m) => m.rssPer1000MiB)),
          rssSlopePer1000MiB: median(ms.map((m) => m.rssSlopePer1000MiB)),
          rssGrowthPer1000MiB: median(ms.map((m) => m.rssGrowthPer1000MiB)),
          cpuPerHandshakeUs: median(ms.map((m) => m.cpuPerHandshakeUs)),
          cpuPerRoundTripUs: median(ms.map((m) => m.cpuPerRoundTripUs)),
          rttP50Us: median(ms.map((m) => m.rttP50Us)),
          rttP99Us: median(ms.map((m) => m.rttP99Us)),
          directRttP50Us: median(ms.map((m) => m.directRttP50Us)),
          rttRatio: median(ms.map((m) => m.rttP50Us / m.directRttP50Us)),
        },
      };
    }
    if (scale > 0) {
      for (const mode of modes) {
        const proxy = await startProxy(mode, { redisUrl: redis.url, socketPort, tmp });
        try {
          const m = await measure(mode, proxy, scale, true, socketPort);
          results[mode]!.scale = m;
          process.stdout.write(`  ${mode.padEnd(13)} at scale: ${m.connections} conns, RSS/1k ${fmt(m.rssPer1000MiB)} MiB (slope ${fmt(m.rssSlopePer1000MiB)}, from fresh ${fmt(m.rssGrowthPer1000MiB)}), CPU/handshake ${fmt(m.cpuPerHandshakeUs, 0)} µs, CPU/round trip ${fmt(m.cpuPerRoundTripUs)} µs, RTT p50 ${fmt(m.rttP50Us)} µs${Object.keys(m.failures).length ? `, failures ${JSON.stringify(m.failures)}` : ''}${m.overload ? `, +${m.overload.attempted} beyond: ${m.overload.proxied} proxied, refused ${JSON.stringify(m.overload.refused)}, existing ok ${m.overload.sampledOk}/${m.overload.sampledAfter}, alive ${m.overload.proxyAlive}` : ''}\n`);
        } finally {
          await proxy.stop();
        }
      }
    }
  } finally {
    await stopChild(node);
    await redis.stop();
    rmSync(tmp, { recursive: true, force: true });
  }

  // Table
  const g = results.gateway?.median;
  const x = results.nginx?.median;
  const d = results.direct?.median;
  const rows: string[] = [];
  const line = (label: string, get: (m: Summary) => number, digits = 1) => {
    const cells = modes.map((mode) => fmt(get(results[mode]!.median), digits).padStart(14));
    rows.push(`${label.padEnd(34)}${cells.join('')}`);
  };
  rows.push(`${`median of ${runs} × ${n} connections`.padEnd(34)}${modes.map((m) => m.padStart(14)).join('')}`);
  line('RSS per 1,000 idle conns (MiB)', (m) => m.rssPer1000MiB);
  line('  slope n/2 → n, per 1,000', (m) => m.rssSlopePer1000MiB);
  line('  growth from fresh, per 1,000', (m) => m.rssGrowthPer1000MiB);
  line('CPU per handshake (µs)', (m) => m.cpuPerHandshakeUs, 0);
  line('CPU per relayed round trip (µs)', (m) => m.cpuPerRoundTripUs);
  line('sequential RTT p50 (µs)', (m) => m.rttP50Us);
  line('sequential RTT p99 (µs)', (m) => m.rttP99Us);
  line('  interleaved direct RTT p50 (µs)', (m) => m.directRttP50Us);
  line('  RTT p50 / interleaved direct', (m) => m.rttRatio, 2);
  if (scale > 0) {
    rows.push('');
    rows.push(`${`at the descriptor limit (${scale})`.padEnd(34)}${modes.map((m) => m.padStart(14)).join('')}`);
    const sl = (label: string, get: (m: Measurement) => number, digits = 1) => rows.push(`${label.padEnd(34)}${modes.map((mode) => fmt(results[mode]!.scale ? get(results[mode]!.scale!) : NaN, digits).padStart(14)).join('')}`);
    sl('connections held', (m) => m.connections, 0);
    sl('RSS per 1,000 idle conns (MiB)', (m) => m.rssPer1000MiB);
    sl('  slope n/2 → n, per 1,000', (m) => m.rssSlopePer1000MiB);
    sl('  growth from fresh, per 1,000', (m) => m.rssGrowthPer1000MiB);
    sl('CPU per handshake (µs)', (m) => m.cpuPerHandshakeUs, 0);
    sl('CPU per relayed round trip (µs)', (m) => m.cpuPerRoundTripUs);
    sl('sequential RTT p50 (µs)', (m) => m.rttP50Us);
    sl('  RTT p50 / interleaved direct', (m) => m.rttP50Us / m.directRttP50Us, 2);
  }
  const ratios: Record<string, { value: number; target: string; met: boolean }> = {};
  if (g && x && d) {
    const add = (name: string, value: number, limit: number, target: string) => (ratios[name] = { value, target, met: value <= limit });
    add('gateway RSS per 1,000 (MiB)', g.rssPer1000MiB, 10, '≤ 10 MiB');
    add('gateway / nginx RSS per 1,000', g.rssPer1000MiB / x.rssPer1000MiB, 0.5, '≤ 0.5');
    add('gateway / direct RTT p50 (interleaved)', g.rttRatio, 1.3, '≤ 1.3');
    add('nginx / direct RTT p50 (interleaved, reference)', x.rttRatio, Infinity, '–');
    add('gateway / nginx CPU per handshake', g.cpuPerHandshakeUs / x.cpuPerHandshakeUs, 3, '≤ 3');
    add('gateway / nginx CPU per round trip', g.cpuPerRoundTripUs / x.cpuPerRoundTripUs, 1.5, '≤ 1.5');
    rows.push('');
    for (const [k, v] of Object.entries(ratios)) rows.push(`${k.padEnd(40)}${fmt(v.value, 2).padStart(8)}   target ${v.target.padEnd(9)} ${v.target === '–' ? '' : v.met ? 'met' : 'MISSED'}`);
  }
  process.stdout.write(`\n${rows.join('\n')}\n`);
  mkdirSync(path.join(ROOT, 'artifacts'), { recursive: true });
  const out = path.join(ROOT, 'artifacts', 'bench-gateway.json');
  writeFileSync(out, JSON.stringify({ at: new Date().toISOString(), node: process.version, cpus: os.cpus().length, runs, connections: n, scale, modes, results, ratios }, null, 2));
  process.stdout.write(`\nwrote ${path.relative(ROOT, out)}\n`);
  clearTimeout(deadline);
  return false;
}

main().then(
  (keepRunning) => {
    if (!keepRunning) process.exit(0);
  },
  async (err: unknown) => {
    process.stderr.write(`bench: ${(err as Error)?.stack ?? String(err)}\n`);
    for (const c of children) c.kill('SIGKILL');
    process.exit(1);
  },
);
