/**
 * Where the gateway's added round-trip latency stands against nginx and against Node's own floor: sequential
 * round trips (one ping → pong at a time) through the gateway, nginx (one worker) and `floor`
 * (loadtest/floor-proxy.ts, the least a Node proxy on the gateway's bindings does), each in rotation with a direct
 * round trip to the same socket node, so every proxy is set against the direct path of the same moment. Each proxy
 * is warmed up first (3 × 1,000 connections opened, pinged and closed), then holds `idle` more connections while
 * it is measured (bench:gateway measures with 2,000 open).
 *   node --import tsx loadtest/probe-latency.ts [samples per proxy, default 2000] [idle connections, default 2000]
 * Prints p50, p99 and the added p50 (proxy p50 − direct p50) of each. Loopback only, bounded by the sample count.
 */
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync } from 'node:fs';
import { ClientPool } from './client-pool.js';
import { ensureBuilt, killAll, pct, startFloor, startGateway, startNginx, startSocketNode, warmUpPass, type Proc } from './bench-procs.js';

const [samplesArg = '2000', idleArg = '2000'] = process.argv.slice(2);
const samples = Number(samplesArg);
const idle = Number(idleArg);
const POD_PATH = '/ws/bench-pod/connect';
const WARMUP_PASSES = 3;
const WARMUP_CONNECTIONS = 1000;
const SIDES = ['gateway', 'nginx', 'floor'] as const;
type Side = (typeof SIDES)[number];

ensureBuilt();
const { startRedis } = await import('../test/support/redis.js');
const redis = await startRedis();
const tmp = mkdtempSync(path.join(os.tmpdir(), 'probe-latency-'));
const node = await startSocketNode('bench-pod', redis.url);
const procs: Record<Side, Proc> = {
  gateway: await startGateway(redis.url, 1),
  nginx: await startNginx(tmp, { 'bench-pod': node.port }, 1),
  floor: await startFloor(node.port),
};
// One pool per path: each holds its own measured connection (ping() uses a pool's first one).
const pools = Object.fromEntries(SIDES.map((s) => [s, ClientPool.start()])) as Record<Side, ClientPool>;
const direct = ClientPool.start();
const idlePool = ClientPool.start();
try {
  for (const side of SIDES) {
    for (let i = 0; i < WARMUP_PASSES; i++) await warmUpPass(idlePool, procs[side], POD_PATH, WARMUP_CONNECTIONS, 2);
    await pools[side].open(procs[side].port, POD_PATH, 1, 1);
    if (idle > 0) await idlePool.open(procs[side].port, POD_PATH, Math.floor(idle / SIDES.length), 64);
  }
  await direct.open(node.port, '/ws/connect', 1, 1);
  const through: Record<Side, number[]> = { gateway: [], nginx: [], floor: [] };
  const beside: Record<Side, number[]> = { gateway: [], nginx: [], floor: [] };
  for (let k = 0; k < samples; k++) {
    for (let j = 0; j < SIDES.length; j++) {
      const side = SIDES[(j + k) % SIDES.length]!;
      through[side].push(await pools[side].ping());
      beside[side].push(await direct.ping());
    }
  }
  for (const side of SIDES) {
    const t = through[side].sort((a, b) => a - b);
    const d = beside[side].sort((a, b) => a - b);
    process.stdout.write(`${side.padEnd(8)}: p50 ${pct(t, 0.5).toFixed(1)} µs (direct ${pct(d, 0.5).toFixed(1)}, added ${(pct(t, 0.5) - pct(d, 0.5)).toFixed(1)}), p99 ${pct(t, 0.99).toFixed(1)} µs (direct ${pct(d, 0.99).toFixed(1)})\n`);
  }
} finally {
  for (const p of [...Object.values(pools), direct, idlePool]) p.stop();
  killAll();
  await redis.stop();
  process.exit(0);
}
