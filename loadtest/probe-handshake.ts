/**
 * CPU per upgrade handshake of one proxy, alone: a gateway (one process, the built CLI) or nginx (one worker)
 * before a socket node on a real redis-server. After a warm-up of 2 × 1,000 connections it opens `n` more (64
 * at a time) and prints the proxy's CPU per handshake from /proc, then the CPU per relayed round trip (up to
 * 2,000 of them pinging 10 times, all at once). An optional command runs meanwhile with
 * `{pid}` replaced by the proxy's pid, for a look inside, e.g.
 *   node --import tsx loadtest/probe-handshake.ts gateway 4000 'perf record -g -p {pid} -o /tmp/gw.data'
 * GW_WORKERS sets GATEWAY_WORKERS (default 1). GW_NODE_FLAGS passes flags to the gateway's node (e.g. --perf-basic-prof). For A/B runs of two trees; the
 * side-by-side targets are `npm run bench:gateway`'s. Loopback only, bounded by `n`.
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync } from 'node:fs';
import { ClientPool } from './client-pool.js';
import { ensureBuilt, sample, sleep, startGateway, startNginx, startSocketNode, killAll } from './bench-procs.js';

const [side = 'gateway', nArg = '4000', cmd = ''] = process.argv.slice(2);
const n = Number(nArg);
const RELAY_ROUNDS = 10;
ensureBuilt();
const { startRedis } = await import('../test/support/redis.js');
const redis = await startRedis();
const tmp = mkdtempSync(path.join(os.tmpdir(), 'probe-'));
const node = await startSocketNode('bench-pod', redis.url);
const proxy = side === 'gateway' ? await startGateway(redis.url, Number(process.env.GW_WORKERS ?? 1), (process.env.GW_NODE_FLAGS ?? '').split(' ').filter(Boolean)) : await startNginx(tmp, { 'bench-pod': node.port }, 1);
const pool = ClientPool.start();
try {
  for (let i = 0; i < 2; i++) {
    await pool.open(proxy.port, '/ws/bench-pod/connect', 1000, 64);
    await pool.relay(2, 1000);
    await pool.closeAll();
  }
  await sleep(1000);
  const watcher = cmd ? spawn('bash', ['-c', cmd.replaceAll('{pid}', String(proxy.pid))], { stdio: 'inherit' }) : undefined;
  await sleep(1500);
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
} finally {
  pool.stop();
  killAll();
  await redis.stop();
  process.exit(0);
}
