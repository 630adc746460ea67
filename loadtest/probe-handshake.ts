/**
 * CPU per upgrade handshake of proxies, each alone in its phase: a gateway (one process, the built CLI), nginx (one
 * worker), `floor` (loadtest/floor-proxy.ts: the least a Node proxy on the gateway's TCP-handle bindings does), and
 * `base` (the gateway of another build: GW_BASE=<checkout with dist/>, for A/B runs). Each sits before one socket
 * node on a real redis-server. After a warm-up of 2 × 1,000 connections per proxy, every round opens `n` more (64
 * at a time) through each proxy in turn and prints its CPU per handshake from /proc, then the CPU per relayed round
 * trip (up to 2,000 of them pinging 10 times, all at once). The sides alternate, so they share the machine's load.
 *   node --import tsx loadtest/probe-handshake.ts [sides, default gateway] [n, default 4000] [command] [rounds, default 1]
 *   e.g. GW_BASE=/tmp/old node --import tsx loadtest/probe-handshake.ts nginx,base,gateway,floor 4000 '' 3
 * The optional command runs during the first side's last handshake phase with `{pid}` replaced by its pid, e.g.
 *   node --import tsx loadtest/probe-handshake.ts gateway 8000 'perf record -F 4000 -g -p {pid} -o /tmp/gw.data'
 * GW_WORKERS sets GATEWAY_WORKERS (default 1). PROBE_WARMUP sets the warm-up rounds of 1,000 (default 2). GW_NODE_FLAGS passes flags to the gateway's node (e.g. --perf-basic-prof),
 * BASE_NODE_FLAGS to the base side's instead (GW_BASE=. BASE_NODE_FLAGS=--single-threaded-gc: an A/B of node flags on one build).
 * The side-by-side targets are `npm run bench:gateway`'s. Loopback only, bounded by `n` and the rounds.
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync } from 'node:fs';
import { ClientPool } from './client-pool.js';
import { ensureBuilt, sample, sleep, startFloor, startGateway, startNginx, startSocketNode, killAll, warmUpPass, type Proc } from './bench-procs.js';

const [sidesArg = 'gateway', nArg = '4000', cmd = '', roundsArg = '1'] = process.argv.slice(2);
const sides = sidesArg.split(',');
const n = Number(nArg);
const rounds = Number(roundsArg);
const RELAY_ROUNDS = 10;
const known = ['gateway', 'nginx', 'floor', 'base'];
for (const s of sides) if (!known.includes(s)) throw new Error(`unknown side ${s} (sides: ${known.join(', ')})`);
if (sides.includes('base') && !process.env.GW_BASE) throw new Error('side base needs GW_BASE=<a checkout with a built dist/>');
ensureBuilt();
const { startRedis } = await import('../test/support/redis.js');
const redis = await startRedis();
const tmp = mkdtempSync(path.join(os.tmpdir(), 'probe-'));
const node = await startSocketNode('bench-pod', redis.url);
const workers = Number(process.env.GW_WORKERS ?? 1);
/** Warm-up rounds of 1,000 connections per side (PROBE_WARMUP, default 2; bench:gateway warms up with 3). */
const warmups = Number(process.env.PROBE_WARMUP ?? 2);
const flags = (process.env.GW_NODE_FLAGS ?? '').split(' ').filter(Boolean);
/** The base side's node flags: BASE_NODE_FLAGS when set (an A/B of flags with GW_BASE=. ), else GW_NODE_FLAGS. */
const baseFlags = process.env.BASE_NODE_FLAGS === undefined ? flags : process.env.BASE_NODE_FLAGS.split(' ').filter(Boolean);

const procs = new Map<string, Proc>();
for (const side of sides) {
  if (side === 'gateway') procs.set(side, await startGateway(redis.url, workers, flags));
  else if (side === 'base') procs.set(side, await startGateway(redis.url, workers, baseFlags, {}, path.join(process.env.GW_BASE!, 'dist', 'app', 'cli.js')));
  else if (side === 'nginx') procs.set(side, await startNginx(tmp, { 'bench-pod': node.port }, 1));
  else procs.set(side, await startFloor(node.port));
}
const pool = ClientPool.start();
try {
  for (const side of sides) {
    for (let i = 0; i < warmups; i++) await warmUpPass(pool, procs.get(side)!, '/ws/bench-pod/connect', 1000, 2);
  }
  for (let round = 0; round < rounds; round++) {
    for (const side of sides) {
      const proxy = procs.get(side)!;
      await sleep(1000);
      const watch = cmd && side === sides[0] && round === rounds - 1;
      const watcher = watch ? spawn('bash', ['-c', cmd.replaceAll('{pid}', String(proxy.pid))], { stdio: 'inherit' }) : undefined;
      if (watcher) await sleep(1500);
      const s0 = sample(proxy.pid);
      const t0 = performance.now();
      const r = await pool.open(proxy.port, '/ws/bench-pod/connect', n, 64);
      const s1 = sample(proxy.pid);
      const ms = performance.now() - t0;
      // Relay: every connection pings RELAY_ROUNDS times, all at once (as bench:gateway's relay phase).
      const relayConnections = Math.min(r.opened, 2000);
      const s2 = sample(proxy.pid);
      await pool.relay(RELAY_ROUNDS, relayConnections);
      const s3 = sample(proxy.pid);
      const perRoundTrip = ((s3.cpuSeconds - s2.cpuSeconds) / (relayConnections * RELAY_ROUNDS)) * 1e6;
      const userShare = (a: typeof s0, b: typeof s0) => (((b.userSeconds - a.userSeconds) / (b.cpuSeconds - a.cpuSeconds)) * 100).toFixed(0);
      process.stdout.write(
        `${side}: opened ${r.opened}/${n} in ${ms.toFixed(0)} ms, CPU/handshake ${(((s1.cpuSeconds - s0.cpuSeconds) / r.opened) * 1e6).toFixed(0)} µs (user ${userShare(s0, s1)} %, ${((s1.wakeups - s0.wakeups) / r.opened).toFixed(2)} wake-ups each), ` +
          `CPU/round trip ${perRoundTrip.toFixed(1)} µs (user ${userShare(s2, s3)} %, ${((s3.wakeups - s2.wakeups) / (relayConnections * RELAY_ROUNDS)).toFixed(2)} wake-ups each; ${relayConnections} × ${RELAY_ROUNDS})\n`,
      );
      if (watcher) {
        watcher.kill('SIGINT');
        await new Promise((res) => watcher.once('exit', res));
      }
      await pool.closeAll();
    }
  }
} finally {
  pool.stop();
  // Each side's own stop (a gateway run with --cpu-prof gets SIGTERM, so its profile is written).
  await Promise.all([...procs.values()].map((p) => p.stop()));
  killAll();
  await redis.stop();
  process.exit(0);
}
