/**
 * `npm run bench:rss`: the idle resident memory of each role as the image runs it (the built CLI, `node
 * dist/app/cli.js`, against a real redis-server), beside bare Node. Every process is started at once, left idle
 * for `--settle` seconds (default 30: V8's memory reducer returns start-up garbage after about 10-20 s of
 * idleness, which is the state a long-running idle pod is in), and sampled from /proc/<pid>/status every second:
 * the table shows the settled RSS (median of the last 5 samples), its anonymous and file-backed parts, and the
 * peak. The target of issue 15 is ≤ 60 MiB for an idle gateway and an idle socket node.
 *
 * Cases: bare Node; the socket node; the gateway with GATEWAY_WORKERS=1 (one process); the gateway with
 * GATEWAY_WORKERS=2 (primary and each worker, and their sum); and the gateway with `@kubernetes/client-node`
 * preloaded (`--import`), which is what every gateway paid before the client was loaded lazily (only the
 * endpointslices resolver and the scaler's kubernetes workload load it now). Writes artifacts/bench-rss.json.
 * Loopback only, bounded (about settle + 15 s).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort } from '../test/support/net.js';
import { startRedis } from '../test/support/redis.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(ROOT, 'dist', 'app', 'cli.js');
const MIB = 1024 * 1024;
const TARGET_MIB = 60;
const SETTLED_SAMPLES = 5;
const START_TIMEOUT_MS = 60_000;

interface Sample {
  rss: number;
  anon: number;
  file: number;
}

/** VmRSS, RssAnon and RssFile of `pid` in bytes (undefined once it is gone). */
function sample(pid: number): Sample | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN) * 1024;
    return { rss: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile') };
  } catch {
    return undefined;
  }
}

/** Child pids of `pid` (the gateway primary's workers). */
function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

interface Case {
  name: string;
  child: ChildProcess;
  /** Resolves when the process logged `ready` (or at once for bare Node). */
  ready: Promise<void>;
  /** Per process of the case (the primary first), its samples. */
  samples: Map<string, Sample[]>;
}

function startCase(name: string, args: string[], env: Record<string, string>, ready: string | undefined): Case {
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const readyP = ready === undefined ? Promise.resolve() : new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name}: no "${ready}" within ${START_TIMEOUT_MS} ms: ${stderr}`)), START_TIMEOUT_MS);
    readline.createInterface({ input: child.stdout! }).on('line', (l) => {
      if (l.includes(`"msg":"${ready}"`)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`${name} exited (${code}) before "${ready}": ${stderr}`)));
  });
  if (ready === undefined) child.stdout!.resume();
  return { name, child, ready: readyP, samples: new Map() };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
};

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { settle: { type: 'string', default: '30' } } });
  const settleS = Number(values.settle);
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first (npm run bench:rss does)`);
  const redis = await startRedis();
  const ports = async () => String(await freePort());
  const common = { REDIS_URL: redis.url, POD_IP: '127.0.0.1', HEARTBEAT_MS: '2000' };
  const gatewayEnv = async (workers: number) => ({ ...common, GATEWAY_WORKERS: String(workers), GATEWAY_PORT: await ports(), GATEWAY_ADMIN_PORT: await ports() });
  const cases = [
    startCase('bare node', ['-e', 'setInterval(() => {}, 1000)'], {}, undefined),
    startCase('socket node', [CLI, 'socket'], { ...common, POD_NAME: 'rss-socket', SOCKET_PORT: await ports(), ADMIN_PORT: await ports() }, 'socket node listening'),
    startCase('gateway, 1 worker', [CLI, 'gateway'], await gatewayEnv(1), 'gateway listening'),
    startCase('gateway, 2 workers', [CLI, 'gateway'], await gatewayEnv(2), 'gateway listening'),
    startCase('gateway + k8s client (before)', ['--import', '@kubernetes/client-node', CLI, 'gateway'], await gatewayEnv(1), 'gateway listening'),
  ];
  try {
    await Promise.all(cases.map((c) => c.ready));
    process.stdout.write(`all ${cases.length} cases up; idle for ${settleS} s, sampling every second\n`);
    for (let t = 0; t < settleS; t++) {
      await new Promise((r) => setTimeout(r, 1000));
      for (const c of cases) {
        const pid = c.child.pid!;
        const kids = children(pid);
        for (const [label, p] of [['primary', pid], ...kids.map((k, i) => [`worker ${i}`, k] as const)] as const) {
          const s = sample(p);
          if (!s) continue;
          const list = c.samples.get(label) ?? [];
          list.push(s);
          c.samples.set(label, list);
        }
      }
    }
  } finally {
    for (const c of cases) c.child.kill('SIGKILL');
    await redis.stop();
  }

  const rows: { case: string; process: string; settledMiB: number; anonMiB: number; fileMiB: number; peakMiB: number }[] = [];
  for (const c of cases) {
    let total = 0;
    for (const [label, list] of c.samples) {
      const tail = list.slice(-SETTLED_SAMPLES);
      const row = { case: c.name, process: c.samples.size > 1 ? label : '', settledMiB: median(tail.map((s) => s.rss)) / MIB, anonMiB: median(tail.map((s) => s.anon)) / MIB, fileMiB: median(tail.map((s) => s.file)) / MIB, peakMiB: Math.max(...list.map((s) => s.rss)) / MIB };
      rows.push(row);
      total += row.settledMiB;
    }
    if (c.samples.size > 1) rows.push({ case: c.name, process: 'sum', settledMiB: total, anonMiB: NaN, fileMiB: NaN, peakMiB: NaN });
  }
  const f = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '–');
  process.stdout.write(`\n| case | process | settled RSS (MiB) | anon | file | peak | ≤ ${TARGET_MIB} MiB |\n|---|---|---|---|---|---|---|\n`);
  for (const r of rows) {
    const judged = r.process === '' || r.process.startsWith('worker') || r.process === 'primary';
    const verdict = r.case === 'bare node' || r.case.includes('(before)') || !judged ? '' : r.settledMiB <= TARGET_MIB ? 'met' : 'MISSED';
    process.stdout.write(`| ${r.case} | ${r.process || '–'} | ${f(r.settledMiB)} | ${f(r.anonMiB)} | ${f(r.fileMiB)} | ${f(r.peakMiB)} | ${verdict} |\n`);
  }
  mkdirSync(path.join(ROOT, 'artifacts'), { recursive: true });
  writeFileSync(path.join(ROOT, 'artifacts', 'bench-rss.json'), JSON.stringify({ settleS, node: process.version, rows }, null, 2));
  process.stdout.write('\nwritten: artifacts/bench-rss.json\n');
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench:rss: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
