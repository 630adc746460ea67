/**
 * Processes of the gateway benchmarks (bench:gateway, bench:storm): socket nodes, the gateway (with
 * GATEWAY_WORKERS when this tree has it), nginx as the reference proxy, and /proc sampling summed over a
 * process and its descendants (a multi-worker gateway is one process tree).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../test/support/net.js';
import type { ClientPool } from './client-pool.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const NGINX = '/usr/sbin/nginx';
const CLK_TCK = 100;
export const MIB = 1024 * 1024;
/** Connections opened at a time by a warm-up pass (bench:gateway's OPEN_CONCURRENCY). */
const WARMUP_CONCURRENCY = 64;
const READY_POLL_MS = 50;
const READY_TIMEOUT_MS = 30_000;
const KILL_AFTER_MS = 15_000;
/** How long to wait for a gateway's workers before concluding this tree has no GATEWAY_WORKERS. */
const WORKERS_WAIT_MS = 10_000;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The compiled CLI: the roles run as in production (no TypeScript loader in their memory or their CPU). */
const CLI = path.join(ROOT, 'dist', 'app', 'cli.js');
const SOURCE_DIRS = ['app', 'gateway', 'socket', 'scaler', 'src'];

function newestSource(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (e.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/** Build dist/ (tsc) when it is missing or older than any source file. */
export function ensureBuilt(): void {
  const built = existsSync(CLI) ? statSync(CLI).mtimeMs : 0;
  if (SOURCE_DIRS.every((d) => newestSource(path.join(ROOT, d)) <= built)) return;
  process.stdout.write('bench: building dist/ (tsc) …\n');
  execFileSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(ROOT, 'tsconfig.json')], { stdio: 'inherit' });
}

/** CPU (user + system, seconds) and RSS of a process tree. */
export interface ProcSample {
  rssBytes: number;
  /**
   * On-CPU time of every thread, in nanoseconds from /proc/<pid>/task/<tid>/schedstat (the clock-tick figures of
   * /proc/<pid>/stat count in 10 ms steps: ±5 µs per handshake over 2,000 of them). Ticks where schedstat is unreadable.
   */
  cpuSeconds: number;
  /** The user-space part of the CPU time, in clock ticks (10 ms steps: a share to show, not a measure). */
  userSeconds: number;
  /** Times the main threads slept and were woken (voluntary context switches). */
  wakeups: number;
  processes: number;
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const txt = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (txt) out.push(...txt.split(/\s+/).map(Number));
    }
  } catch {
    /* gone */
  }
  return out;
}

/** `pid` and all its descendants. */
export function processTree(pid: number): number[] {
  const all = [pid];
  for (let i = 0; i < all.length; i++) all.push(...childrenOf(all[i]!));
  return all;
}

/** On-CPU seconds of every live thread of `pid` (schedstat's first field is nanoseconds), or undefined. */
function threadsCpuSeconds(pid: number): number | undefined {
  let ns = 0;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        /* the thread exited meanwhile */
      }
    }
  } catch {
    return undefined;
  }
  return Number.isFinite(ns) && ns > 0 ? ns / 1e9 : undefined;
}

/** Summed over `pid`'s process tree. */
export function sample(pid: number): ProcSample {
  let rss = 0;
  let cpu = 0;
  let user = 0;
  let wakeups = 0;
  let n = 0;
  for (const p of processTree(pid)) {
    try {
      const status = readFileSync(`/proc/${p}/status`, 'utf8');
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      rss += Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0) * 1024;
      cpu += threadsCpuSeconds(p) ?? (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
      user += Number(fields[11]) / CLK_TCK;
      wakeups += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
      n++;
    } catch {
      /* exited between listing and reading */
    }
  }
  return { rssBytes: rss, cpuSeconds: cpu, userSeconds: user, wakeups, processes: n };
}

/** Open descriptors of one process. */
export function fdCount(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return NaN;
  }
}

const children = new Set<ChildProcess>();

/** Spawn a child that the bench kills on exit; its stderr tail is printed if it fails. */
export function spawnChild(cmd: string, args: string[], env: Record<string, string>, label: string): ChildProcess {
  // BENCH_LOG_DIR=<dir>: each child's stdout (the roles' JSON log) goes to <dir>/<label>-<pid>.log, for a look at what a run logged.
  const logDir = process.env.BENCH_LOG_DIR;
  const child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', logDir ? 'pipe' : 'ignore', 'pipe'] });
  if (logDir && child.stdout) child.stdout.pipe(createWriteStream(path.join(logDir, `${label}-${child.pid}.log`)));
  children.add(child);
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  child.on('exit', (code, signal) => {
    children.delete(child);
    if (code && code !== 0) process.stderr.write(`bench: ${label} exited ${code ?? signal}: ${err}\n`);
  });
  return child;
}

/** Kill every child still running (deadline, error). */
export function killAll(): void {
  for (const c of children) killTree(c);
}

/** SIGKILL a child and its descendants (an nginx master's workers outlive a killed master). */
function killTree(child: ChildProcess): void {
  if (child.pid === undefined) return;
  for (const p of processTree(child.pid).reverse()) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

/** Stop a child with `signal`, SIGKILL after KILL_AFTER_MS. */
export async function stopChild(child: ChildProcess | undefined, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  if (signal === 'SIGKILL') killTree(child);
  else child.kill(signal);
  const t = setTimeout(() => killTree(child), KILL_AFTER_MS);
  await exited;
  clearTimeout(t);
}

/** HTTP status of a GET (0 = no answer within 1 s). */
export async function httpStatus(url: string): Promise<number> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

/** Poll `fn` until true or throw after `ms`. */
export async function waitUntil(what: string, fn: () => Promise<boolean>, ms = READY_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`bench: ${what} not ready within ${ms} ms`);
    await sleep(READY_POLL_MS);
  }
}

/** nginx from Debian, installed when missing (setup.sh installs it too). */
export function ensureNginx(): void {
  if (existsSync(NGINX)) return;
  process.stdout.write('bench: installing nginx-light (Debian) …\n');
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'nginx-light'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}

/** A running proxy (or a socket node): its root pid and client-facing port. */
export interface Proc {
  child: ChildProcess;
  pid: number;
  port: number;
  stop(): Promise<void>;
}

/** A socket node (`rtc-edge socket`) registered as `podId`; `admin` is its admin port (`/drain`, `/readyz`). */
export async function startSocketNode(podId: string, redisUrl: string, env: Record<string, string> = {}): Promise<Proc & { admin: number }> {
  const port = await freePort();
  const admin = await freePort();
  const child = spawnChild(process.execPath, [CLI, 'socket'], {
    SOCKET_PORT: String(port),
    ADMIN_PORT: String(admin),
    POD_NAME: podId,
    POD_IP: '127.0.0.1',
    REDIS_URL: redisUrl,
    HEARTBEAT_MS: '1000',
    SOCKET_IDLE_TIMEOUT_S: '0',
    LOG_LEVEL: 'warn',
    ...env,
  }, `socket node ${podId}`);
  await waitUntil(`socket node ${podId}`, async () => (await httpStatus(`http://127.0.0.1:${admin}/readyz`)) === 200);
  return { child, pid: child.pid!, port, admin, stop: () => stopChild(child) };
}

/** `rtc-edge gateway` with `workers` processes (GATEWAY_WORKERS; ignored by a tree without it); `cli`: another build's dist/app/cli.js. */
export async function startGateway(redisUrl: string, workers: number, extraArgs: string[] = [], env: Record<string, string> = {}, cli = CLI): Promise<Proc> {
  const port = await freePort();
  const child = spawnChild(process.execPath, [...extraArgs, cli, 'gateway'], {
    GATEWAY_PORT: String(port),
    GATEWAY_ADMIN_PORT: '0',
    GATEWAY_WORKERS: String(workers),
    REDIS_URL: redisUrl,
    GATEWAY_MAX_CONNECTIONS: '20000',
    HEARTBEAT_MS: '1000',
    LOG_LEVEL: 'warn',
    ...env,
  }, 'gateway');
  await waitUntil('gateway', async () => (await httpStatus(`http://127.0.0.1:${port}/ws/assign`)) === 200);
  // Workers come up behind one port: wait until the tree has them all (a tree without GATEWAY_WORKERS has one process).
  // (GATEWAY_WORKERS is Node's cluster: a primary plus that many workers.)
  if (workers > 1) await waitUntil('gateway workers', async () => sample(child.pid!).processes > workers, WORKERS_WAIT_MS).catch(() => undefined);
  return { child, pid: child.pid!, port, stop: () => stopChild(child, extraArgs.some((a) => a.startsWith('--cpu-prof')) ? 'SIGTERM' : 'SIGKILL') };
}

/** loadtest/floor-proxy.ts in front of `upstreamPort`: the least a Node proxy on the gateway's bindings does (an anchor). */
export async function startFloor(upstreamPort: number): Promise<Proc> {
  const port = await freePort();
  const child = spawnChild(process.execPath, ['--import', 'tsx', path.join(ROOT, 'loadtest', 'floor-proxy.ts'), String(port), String(upstreamPort)], {}, 'floor proxy');
  await waitUntil('floor proxy', () => new Promise<boolean>((res) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.destroy();
      res(true);
    });
    s.on('error', () => res(false));
  }));
  return { child, pid: child.pid!, port, stop: async () => void child.kill('SIGKILL') };
}

/** The value at quantile `p` of ascending `sorted` (NaN when empty). */
export const pct = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;

/**
 * One warm-up pass through `proxy`: open `connections` on `urlPath`, ping each `rounds` times, close them. Returns the
 * pass's CPU per handshake (µs) of the proxy's process tree, measured over the opening.
 */
export async function warmUpPass(pool: ClientPool, proxy: Proc, urlPath: string, connections: number, rounds: number): Promise<number> {
  const s0 = sample(proxy.pid);
  const r = await pool.open(proxy.port, urlPath, connections, WARMUP_CONCURRENCY);
  const us = ((sample(proxy.pid).cpuSeconds - s0.cpuSeconds) / r.opened) * 1e6;
  await pool.relay(rounds, connections);
  await pool.closeAll();
  return us;
}

/** Node processes under a gateway's root (1 without GATEWAY_WORKERS; the primary plus its workers with it). */
export function gatewayProcesses(gw: Proc): number {
  return sample(gw.pid).processes;
}

function nginxConf(dir: string, port: number, pods: Record<string, number>, workers: number | 'auto'): string {
  // The original route, with each pod's address from a map instead of cluster DNS (no resolver on loopback).
  // worker_connections above the descriptor limit: with it equal, nginx starts closing connections
  // ("worker_connections are not enough, reusing connections") long before its descriptors run out.
  const map = Object.entries(pods).map(([id, p]) => `    ${id} 127.0.0.1:${p};`).join('\n');
  return `worker_processes ${workers};
worker_rlimit_nofile 20000;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 40000; multi_accept on; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  map $podid $pod_address {
    default 127.0.0.1:1;
${map}
  }
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

/**
 * nginx proxying `/ws/<podId>/connect` to the pods in `pods` (podId → port). One worker runs without a
 * master (one process, as measured); `auto` runs a master with one worker per CPU.
 */
export async function startNginx(tmp: string, pods: Record<string, number>, workers: number | 'auto' = 1): Promise<Proc> {
  ensureNginx();
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmp, 'nginx-'));
  writeFileSync(path.join(dir, 'nginx.conf'), nginxConf(dir, port, pods, workers));
  const master = workers === 1 ? 'master_process off;' : 'master_process on;';
  const child = spawnChild(NGINX, ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-g', `daemon off; ${master}`], {}, 'nginx');
  // Any HTTP answer will do: workers running as nobody answer 403 for the missing html root, one without a master 404.
  await waitUntil('nginx', async () => (await httpStatus(`http://127.0.0.1:${port}/nothing`)) >= 400);
  return { child, pid: child.pid!, port, stop: () => stopChild(child, workers === 1 ? 'SIGKILL' : 'SIGTERM') };
}

/**
 * Run a bench's `main` bounded by `deadlineMs`: past it, or on an error, every child is killed and the
 * process exits 1; otherwise it exits 0 (client pools and sockets need no orderly wind-down).
 */
export function runBounded(main: () => Promise<void>, deadlineMs: number): void {
  const deadline = setTimeout(() => {
    process.stderr.write('bench: deadline exceeded, stopping\n');
    killAll();
    process.exit(1);
  }, deadlineMs);
  deadline.unref();
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`bench: ${(err as Error)?.stack ?? String(err)}\n`);
      killAll();
      process.exit(1);
    },
  );
}
