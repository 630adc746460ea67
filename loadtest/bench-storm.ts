/**
 * `npm run bench:storm`: a reconnect storm. `--connections` (default 10,000) clients hold connections to pod A
 * through the proxy under test; pod A drains with DRAIN_WINDOW_MS=0 (every connection gets its reconnect
 * notice and close 1012 at once, no pacing); every client re-assigns at the gateway's `/ws/assign` and
 * reconnects at once, honouring `Retry-After` on a 503. Pod B (and pod A until the gateway's view sees it
 * draining, which pod A then refuses with 503 + Retry-After) takes them.
 *
 * Reported per proxy: time until 99 % and 100 % of the clients are back (from the drain request),
 * handshakes per second at the peak (100 ms bins), refusals by kind (only `503 + Retry-After` is allowed),
 * and the proxy's peak RSS (its process tree, sampled every 50 ms). Proxies: the gateway with
 * GATEWAY_WORKERS=1 and 2, nginx with one worker and `auto` (nginx only proxies: the clients still assign
 * at a gateway, then connect to the pinned URL through nginx). A single process holds at most 20,000
 * descriptors, two per proxied connection: the single-process proxies get 9,600 (`--single`) connections,
 * the two-process ones the full count. Clients live in two child processes. Loopback only, every storm
 * bounded by STORM_DEADLINE_MS and the whole bench by BENCH_DEADLINE_MS; writes artifacts/bench-storm.json.
 *
 * Options: --connections N (default 10,000), --single N (default 9,600: a gateway at 20,000 descriptors proxies 9,750, FD_RESERVE), --proxies gateway-1,gateway-2,nginx-1,nginx-auto.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { ClientPool, type StormReport } from './client-pool.js';
import { ensureBuilt, runBounded, gatewayProcesses, MIB, ROOT, sample, sleep, startGateway, startNginx, startSocketNode, stopChild, type Proc } from './bench-procs.js';

const BENCH_DEADLINE_MS = 900_000;
const STORM_DEADLINE_MS = 90_000;
const POOLS = 2;
const OPEN_CONCURRENCY = 64;
/** Keep-alive sockets per client process for `/ws/assign` (requests beyond wait for one, as a browser's do per host). */
const ASSIGN_SOCKETS = 64;
const RSS_SAMPLE_MS = 50;
const BIN_MS = 100;
const SETTLE_MS = 1000;
const PROXIES = ['gateway-1', 'gateway-2', 'nginx-1', 'nginx-auto'] as const;
type ProxyKind = (typeof PROXIES)[number];

/** One storm's figures. */
interface StormResult {
  proxy: ProxyKind;
  /** Processes in the proxy's tree (a gateway without GATEWAY_WORKERS stays at 1). */
  processes: number;
  connections: number;
  established: number;
  back: number;
  /** From the drain request: the last client to see its close, the first and the median client back. */
  lastGoneMs: number;
  /** Median per client: close seen → assign answered, assign answered → 101 (the last try). */
  assignMedianMs: number;
  connectMedianMs: number;
  firstBackMs: number;
  to50Ms: number;
  to99Ms: number;
  to100Ms: number;
  peakHandshakesPerSecond: number;
  refusals: Record<string, number>;
  /** Refusals other than 503 + Retry-After (must be 0). */
  badRefusals: number;
  retryAfterHonoured: number;
  rssBeforeMiB: number;
  peakRssMiB: number;
}

let runSeq = 0;

async function storm(kind: ProxyKind, n: number, redisUrl: string, tmp: string, pools: ClientPool[]): Promise<StormResult> {
  const seq = ++runSeq;
  const podA = `storm-a-${seq}`;
  const podB = `storm-b-${seq}`;
  const nodeEnv = { DRAIN_WINDOW_MS: '0', SOCKET_TARGET_CONNECTIONS: '100000' };
  const [a, b] = await Promise.all([startSocketNode(podA, redisUrl, nodeEnv), startSocketNode(podB, redisUrl, nodeEnv)]);
  const workers = kind === 'gateway-2' ? 2 : 1;
  const gwEnv = { GATEWAY_ASSIGN_STRATEGY: 'spread', SOCKET_TARGET_CONNECTIONS: '100000' };
  const gw = await startGateway(redisUrl, workers, [], gwEnv);
  let ng: Proc | undefined;
  try {
    if (kind.startsWith('nginx')) ng = await startNginx(tmp, { [podA]: a.port, [podB]: b.port }, kind === 'nginx-1' ? 1 : 'auto');
    const proxy = ng ?? gw;
    const processes = kind.startsWith('gateway') ? gatewayProcesses(gw) : sample(proxy.pid).processes;
    const opened = await Promise.all(pools.map((p, i) => p.open(proxy.port, `/ws/${podA}/connect`, Math.floor(n / POOLS) + (i < n % POOLS ? 1 : 0), OPEN_CONCURRENCY)));
    const established = opened.reduce((s, r) => s + r.opened, 0);
    await sleep(SETTLE_MS);
    const deadline = performance.timeOrigin + performance.now() + STORM_DEADLINE_MS;
    await Promise.all(pools.map((p) => p.stormArm(gw.port, proxy.port, deadline, ASSIGN_SOCKETS)));
    const rssBefore = sample(proxy.pid).rssBytes;
    let peakRss = rssBefore;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, sample(proxy.pid).rssBytes)), RSS_SAMPLE_MS);
    const t0 = performance.timeOrigin + performance.now();
    void fetch(`http://127.0.0.1:${a.admin}/drain`).then((r) => r.arrayBuffer()).catch(() => undefined);
    const reports: StormReport[] = await Promise.all(pools.map((p) => p.stormWait()));
    clearInterval(sampler);
    peakRss = Math.max(peakRss, sample(proxy.pid).rssBytes);

    const backs = reports.flatMap((r) => r.backAt).filter((x) => Number.isFinite(x)).map((x) => x - t0).sort((x, y) => x - y);
    const gone = reports.flatMap((r) => r.goneAt).filter((x) => Number.isFinite(x)).map((x) => x - t0);
    const med = (xs: number[]) => {
      const f = xs.filter(Number.isFinite).sort((x, y) => x - y);
      return f.length > 0 ? f[Math.floor(f.length / 2)]! : NaN;
    };
    const assignWait = med(reports.flatMap((r) => r.assignedAt.map((x, i) => x - r.goneAt[i]!)));
    const connectWait = med(reports.flatMap((r) => r.backAt.map((x, i) => x - r.assignedAt[i]!)));
    const refusals: Record<string, number> = {};
    let honoured = 0;
    for (const r of reports) {
      honoured += r.retryAfterHonoured;
      for (const [k, v] of Object.entries(r.refusals)) refusals[k] = (refusals[k] ?? 0) + v;
    }
    const bins = new Map<number, number>();
    for (const t of backs) bins.set(Math.floor(t / BIN_MS), (bins.get(Math.floor(t / BIN_MS)) ?? 0) + 1);
    const at = (share: number) => (backs.length >= Math.ceil(established * share) ? backs[Math.ceil(established * share) - 1]! : NaN);
    for (const p of pools) await p.closeAll();
    return {
      proxy: kind,
      processes,
      connections: n,
      established,
      back: backs.length,
      lastGoneMs: Math.max(...gone),
      assignMedianMs: assignWait,
      connectMedianMs: connectWait,
      firstBackMs: backs[0] ?? NaN,
      to50Ms: at(0.5),
      to99Ms: at(0.99),
      to100Ms: at(1),
      peakHandshakesPerSecond: Math.max(0, ...bins.values()) * (1000 / BIN_MS),
      refusals,
      badRefusals: Object.entries(refusals).filter(([k]) => !k.endsWith('+retry-after')).reduce((s, [, v]) => s + v, 0),
      retryAfterHonoured: honoured,
      rssBeforeMiB: rssBefore / MIB,
      peakRssMiB: peakRss / MIB,
    };
  } finally {
    await ng?.stop();
    await gw.stop();
    // SIGTERM: each node drains what is left and takes its record out of the registry before the next storm.
    await Promise.all([stopChild(a.child, 'SIGTERM'), stopChild(b.child, 'SIGTERM')]);
  }
}

function fmt(x: number, digits = 0): string {
  return Number.isFinite(x) ? x.toFixed(digits) : '–';
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { connections: { type: 'string' }, single: { type: 'string' }, proxies: { type: 'string' } } });
  const n = Number(values.connections ?? 10_000);
  const single = Math.min(n, Number(values.single ?? 9600));
  const kinds = (values.proxies ?? PROXIES.join(',')).split(',').map((s) => s.trim()) as ProxyKind[];
  for (const k of kinds) if (!PROXIES.includes(k)) throw new Error(`bench: unknown proxy ${k} (one of ${PROXIES.join(', ')})`);
  ensureBuilt();
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'bench-storm-'));
  const { startRedis } = await import('../test/support/redis.js');
  const redis = await startRedis();
  const pools = Array.from({ length: POOLS }, () => ClientPool.start());
  const results: StormResult[] = [];
  const loadBefore = os.loadavg();
  process.stdout.write(`bench: reconnect storm, ${n} connections (${single} for single-process proxies), proxies ${kinds.join(', ')}; load average ${loadBefore.map((x) => x.toFixed(1)).join(' ')}\n`);
  try {
    for (const kind of kinds) {
      const count = kind === 'gateway-1' || kind === 'nginx-1' ? single : n;
      const r = await storm(kind, count, redis.url, tmp, pools);
      results.push(r);
      process.stdout.write(`  ${kind.padEnd(10)} (${r.processes} processes): ${r.established}/${r.connections} established, back ${r.back}; last close seen ${fmt(r.lastGoneMs)} ms, first back ${fmt(r.firstBackMs)} ms (median assign ${fmt(r.assignMedianMs)} ms, connect ${fmt(r.connectMedianMs)} ms), 50% ${fmt(r.to50Ms)} ms, 99% in ${fmt(r.to99Ms)} ms, 100% in ${fmt(r.to100Ms)} ms; peak ${fmt(r.peakHandshakesPerSecond)} handshakes/s; refusals ${JSON.stringify(r.refusals)} (bad ${r.badRefusals}); RSS ${fmt(r.rssBeforeMiB)} → peak ${fmt(r.peakRssMiB)} MiB\n`);
    }
  } finally {
    for (const p of pools) p.stop();
    await redis.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
  const loadAfter = os.loadavg();
  process.stdout.write(`load average after ${loadAfter.map((x) => x.toFixed(1)).join(' ')} (${os.cpus().length} cores)\n`);
  mkdirSync(path.join(ROOT, 'artifacts'), { recursive: true });
  const out = path.join(ROOT, 'artifacts', 'bench-storm.json');
  writeFileSync(out, JSON.stringify({ at: new Date().toISOString(), node: process.version, cpus: os.cpus().length, loadBefore, loadAfter, connections: n, single, results }, null, 2));
  process.stdout.write(`wrote ${path.relative(ROOT, out)}\n`);
}

runBounded(main, BENCH_DEADLINE_MS);
