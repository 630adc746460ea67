/**
 * `npm run bench:keys`: keyed placement (issue 17, DESIGN "Keyed placement") on loopback — one gateway
 * (GATEWAY_WORKERS=1), three socket nodes and a real redis-server, the roles as processes of the compiled CLI.
 *
 * 1. Assign latency p50/p99 through the gateway: `/ws/assign` without a key, with a key whose room is live (an
 *    owner with a connected client) and with a new key (a first claim), interleaved one request of each kind at a
 *    time over one keep-alive connection, so all three see the same machine load.
 * 2. Redis commands per keyed assign, by kind, from INFO commandstats: the background (heartbeats, the view's
 *    syncs, renewals) is measured over an idle window just before and subtracted. `EVAL` calls are the
 *    gateway's round trips (its keyed path only runs scripts); "all" adds the commands run inside them.
 * 3. Drain settle: `--clients` EdgeClients over `--keys` keys, all on one pod (the other two cordoned while the
 *    clients arrive, uncordoned before the drain, so they are where the keys can go), which then drains (POST /drain, DRAIN_WINDOW_MS = `--drain-window-ms`): time from the drain until every key
 *    has a new owner with all of its clients open there, per-key settle times, and how long each key's clients
 *    were split over two pods. The registry must name each final pod the owner.
 *
 * Options: --assigns N (default 2000 per kind), --clients N (1000), --keys N (100), --drain-window-ms N (5000),
 * --quick (500 assigns, 200 clients over 20 keys, 2 s window). Bounded by BENCH_DEADLINE_MS. Writes
 * artifacts/bench-keys.json (rendered into BENCHMARKS.md by `npm run bench`).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { WebSocket } from 'ws';
import { EdgeClient } from '../examples/client.js';
import { createRedisRegistry } from '../src/registry/index.js';
import { settledWithin } from '../src/registry/registry.js';
import { startRedis } from '../test/support/redis.js';
import { ensureBuilt, killAll, pct, ROOT, sleep, startGateway, startSocketNode, type Proc } from './bench-procs.js';

const BENCH_DEADLINE_MS = 300_000;
const PODS = ['keys-a', 'keys-b', 'keys-c'];
const HEARTBEAT_MS = 1000;
/** SOCKET_KEY_GRACE_MS: short, so the rooms closed before the command count are released before its idle window. */
const KEY_GRACE_MS = 1000;
const WARMUP_PER_KIND = 200;
/** Live rooms the "existing key" assigns pick from: one connected client each, so their owners renew the claims. */
const LIVE_ROOMS = 100;
/** Rooms kept for the command count: fewer renewals in the background that the count subtracts. */
const COUNT_ROOMS = 10;
/** The idle window that measures the background command rate. */
const IDLE_WINDOW_MS = 3000;
const OPEN_BATCH = 50;
const SETTLE_TIMEOUT_MS = 60_000;
const PREFIX = 'bench-keys:';

const { values: args } = parseArgs({
  options: {
    assigns: { type: 'string' },
    clients: { type: 'string' },
    keys: { type: 'string' },
    'drain-window-ms': { type: 'string' },
    quick: { type: 'boolean', default: false },
  },
});
const quick = args.quick === true;
const ASSIGNS = Number(args.assigns ?? (quick ? 500 : 2000));
const CLIENTS = Number(args.clients ?? (quick ? 200 : 1000));
const KEYS = Number(args.keys ?? (quick ? 20 : 100));
const DRAIN_WINDOW_MS = Number(args['drain-window-ms'] ?? (quick ? 2000 : 5000));
for (const [name, v] of Object.entries({ assigns: ASSIGNS, clients: CLIENTS, keys: KEYS, 'drain-window-ms': DRAIN_WINDOW_MS })) {
  if (!Number.isInteger(v) || v <= 0) throw new Error(`bench:keys: --${name} must be a positive integer`);
}
if (CLIENTS % KEYS !== 0) throw new Error('bench:keys: --clients must be a multiple of --keys');

const summary = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, p50: pct(s, 0.5), p99: pct(s, 0.99), max: s[s.length - 1] ?? NaN };
};
const round = (v: number, d = 3) => Math.round(v * 10 ** d) / 10 ** d;

/** One GET on the keep-alive agent: status and the answer's body. */
function get(agent: http.Agent, port: number, p: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
}

/** Calls per command so far (INFO commandstats), without the probe's own INFO. */
async function commandStats(probe: Redis): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const m of (await probe.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) if (m[1] !== 'info') out.set(m[1]!, Number(m[2]));
  return out;
}
const diff = (a: Map<string, number>, b: Map<string, number>) => new Map([...b].map(([k, v]) => [k, v - (a.get(k) ?? 0)]));
const total = (m: Map<string, number>) => [...m.values()].reduce((s, v) => s + v, 0);
const evals = (m: Map<string, number>) => (m.get('eval') ?? 0) + (m.get('evalsha') ?? 0);

/** An EdgeClient of `key` that resolves once it is open. */
async function keyedClient(url: string, key: string): Promise<EdgeClient> {
  const c = new EdgeClient({ url, WebSocket, key });
  const welcome = c.once('welcome');
  c.start();
  await welcome;
  return c;
}

async function main(): Promise<void> {
  ensureBuilt();
  const deadline = setTimeout(() => {
    process.stderr.write(`bench:keys: deadline of ${BENCH_DEADLINE_MS} ms passed\n`);
    killAll();
    process.exit(1);
  }, BENCH_DEADLINE_MS);
  deadline.unref();
  const redis = await startRedis();
  const probe = new Redis(redis.url);
  const registry = createRedisRegistry({ url: redis.url, prefix: PREFIX });
  await settledWithin(registry, 5000);
  const procs: Proc[] = [];
  const clients: EdgeClient[] = [];
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const env = { REDIS_PREFIX: PREFIX, HEARTBEAT_MS: String(HEARTBEAT_MS), DRAIN_WINDOW_MS: String(DRAIN_WINDOW_MS), DRAIN_TIMEOUT_MS: String(DRAIN_WINDOW_MS + 30_000), SOCKET_KEY_GRACE_MS: String(KEY_GRACE_MS) };
    const nodes = await Promise.all(PODS.map((id) => startSocketNode(id, redis.url, env)));
    procs.push(...nodes);
    const gw = await startGateway(redis.url, 1, [], env);
    procs.push(gw);
    const base = `http://127.0.0.1:${gw.port}`;

    // --- 1 + 2: assign latency and commands -------------------------------------------------------------------
    process.stderr.write(`bench:keys: ${LIVE_ROOMS} live rooms, then ${ASSIGNS} assigns of each kind …\n`);
    for (let i = 0; i < LIVE_ROOMS; i++) clients.push(await keyedClient(base, `live-${i}`));
    await sleep(HEARTBEAT_MS * 2);
    let seq = 0;
    let rooms = LIVE_ROOMS;
    const paths = {
      plain: () => '/ws/assign',
      existing: () => `/ws/assign?key=live-${seq % rooms}`,
      fresh: () => `/ws/assign?key=new-${seq}`,
    };
    type Kind = keyof typeof paths;
    const kinds = Object.keys(paths) as Kind[];
    const once = async (kind: Kind): Promise<number> => {
      const t = performance.now();
      const r = await get(agent, gw.port, paths[kind]());
      const us = (performance.now() - t) * 1000;
      if (r.status !== 200) throw new Error(`bench:keys: ${kind} assign answered ${r.status} ${r.body}`);
      if (kind === 'existing' && (JSON.parse(r.body) as { key?: string }).key !== `live-${seq % rooms}`) throw new Error('bench:keys: keyed answer without its key');
      seq++;
      return us;
    };
    for (let i = 0; i < WARMUP_PER_KIND; i++) for (const k of kinds) await once(k);
    const latency: Record<Kind, number[]> = { plain: [], existing: [], fresh: [] };
    for (let i = 0; i < ASSIGNS; i++) for (const k of kinds) latency[k].push(await once(k));

    // Commands: an idle window for the background rate, then each kind alone for the same number of requests.
    for (const c of clients.splice(COUNT_ROOMS)) c.stop();
    rooms = COUNT_ROOMS;
    // The closed rooms' claims are released after the grace; the first claims of the latency run expire after 3 heartbeats.
    await sleep(KEY_GRACE_MS + HEARTBEAT_MS * 3);
    const commands: Record<string, unknown> = { idleWindowMs: IDLE_WINDOW_MS };
    const n = Math.min(ASSIGNS, 1000);
    const runKind = async (kind: Kind | 'idle', ms?: number) => {
      const before = await commandStats(probe);
      const t = performance.now();
      if (kind === 'idle') await sleep(ms!);
      else for (let i = 0; i < n; i++) await once(kind);
      const spent = performance.now() - t;
      return { delta: diff(before, await commandStats(probe)), ms: spent };
    };
    const idle = await runKind('idle', IDLE_WINDOW_MS);
    const perMs = (m: Map<string, number>) => new Map([...m].map(([k, v]) => [k, v / idle.ms]));
    const background = perMs(idle.delta);
    commands.backgroundPerSecondByCommand = Object.fromEntries([...background].filter(([, v]) => v > 0).map(([k, v]) => [k, round(v * 1000, 1)]).sort((a, b) => (b[1] as number) - (a[1] as number)));
    for (const kind of kinds) {
      const r = await runKind(kind);
      // What is left below 0 after subtracting the background is noise of the idle window: counted as 0.
      const net = new Map([...r.delta].map(([k, v]) => [k, Math.max(0, v - (background.get(k) ?? 0) * r.ms) / n]));
      const byCommand = Object.fromEntries([...net].filter(([, v]) => Math.abs(v) >= 0.005).map(([k, v]) => [k, round(v, 2)]).sort((a, b) => (b[1] as number) - (a[1] as number)));
      commands[kind] = { assigns: n, evalPerAssign: round(evals(net), 2), allPerAssign: round(total(net), 2), byCommand };
    }

    for (const c of clients.splice(0)) c.stop();
    await sleep(HEARTBEAT_MS);

    // --- 3: drain settle -------------------------------------------------------------------------------------
    process.stderr.write(`bench:keys: ${CLIENTS} clients over ${KEYS} keys, then a drain of their pod (window ${DRAIN_WINDOW_MS} ms) …\n`);
    const keyOf = (i: number) => `room-${i % KEYS}`;
    const byKey = new Map<string, EdgeClient[]>();
    const [home, ...others] = PODS as [string, ...string[]];
    const CORDON_TTL_MS = 600_000;
    for (const id of others) await registry.cordon(id, {}, CORDON_TTL_MS);
    await sleep(HEARTBEAT_MS);
    for (let i = 0; i < CLIENTS; i += OPEN_BATCH) {
      const batch = await Promise.all(Array.from({ length: Math.min(OPEN_BATCH, CLIENTS - i) }, (_, j) => keyedClient(base, keyOf(i + j))));
      batch.forEach((c, j) => {
        clients.push(c);
        const key = keyOf(i + j);
        byKey.set(key, [...(byKey.get(key) ?? []), c]);
      });
    }
    const owners = new Map<string, string>();
    for (const key of byKey.keys()) owners.set(key, (await registry.ownerOf(key))!);
    const counts = new Map<string, number>();
    for (const o of owners.values()) counts.set(o, (counts.get(o) ?? 0) + 1);
    const victim = [...counts].sort((a, b) => b[1] - a[1])[0]![0];
    if (victim !== home || counts.size !== 1) throw new Error(`bench:keys: the keys did not all land on ${home}: ${JSON.stringify([...counts])}`);
    for (const id of others) await registry.uncordon(id);
    await sleep(HEARTBEAT_MS);
    const moving = [...owners].filter(([, o]) => o === victim).map(([k]) => k);
    for (const [key, list] of byKey) if (!list.every((c) => c.state === 'open' && c.podId === owners.get(key))) throw new Error(`bench:keys: ${key} did not start on one pod`);
    const movingClients = moving.reduce((s, k) => s + byKey.get(k)!.length, 0);

    const t0 = performance.now();
    const splitAt = new Map<string, number>();
    const settledAt = new Map<string, number>();
    const check = (key: string) => {
      if (settledAt.has(key)) return;
      const list = byKey.get(key)!;
      const pods = new Set(list.map((c) => (c.state === 'open' ? c.podId : undefined)));
      if (!splitAt.has(key) && !(pods.size === 1 && pods.has(victim))) splitAt.set(key, performance.now());
      if (pods.size === 1 && !pods.has(undefined) && !pods.has(victim)) settledAt.set(key, performance.now());
    };
    for (const key of moving) for (const c of byKey.get(key)!) for (const ev of ['state', 'welcome'] as const) c.on(ev, () => check(key));
    const admin = (nodes[PODS.indexOf(victim)] as Proc & { admin: number }).admin;
    const drained = fetch(`http://127.0.0.1:${admin}/drain`, { method: 'POST' }).then((r) => r.json() as Promise<{ drained: number; remaining: number }>);
    const settleDeadline = Date.now() + DRAIN_WINDOW_MS + SETTLE_TIMEOUT_MS;
    while (settledAt.size < moving.length && Date.now() < settleDeadline) await sleep(20);
    const drainAnswer = await drained;
    const after = new Map<string, string | undefined>();
    for (const key of moving) after.set(key, await registry.ownerOf(key));
    const wrongOwner = moving.filter((k) => !byKey.get(k)!.every((c) => c.state === 'open' && c.podId === after.get(k)));
    const settleMs = moving.map((k) => (settledAt.get(k) ?? NaN) - t0);
    const splitMs = moving.map((k) => (settledAt.get(k) ?? NaN) - (splitAt.get(k) ?? NaN));

    const result = {
      when: new Date().toISOString(),
      cpus: os.cpus().length,
      loadAverage: os.loadavg(),
      heartbeatMs: HEARTBEAT_MS,
      assign: {
        perKind: ASSIGNS,
        latencyUs: Object.fromEntries(kinds.map((k) => [k, Object.fromEntries(Object.entries(summary(latency[k])).map(([s, v]) => [s, round(v, 0)]))])),
        commands,
      },
      drain: {
        clients: CLIENTS,
        keys: KEYS,
        drainedPod: victim,
        keysOnDrainedPod: moving.length,
        clientsOnDrainedPod: movingClients,
        drainWindowMs: DRAIN_WINDOW_MS,
        drainAnswer,
        allSettledMs: round(Math.max(...settleMs), 0),
        perKeySettleMs: Object.fromEntries(Object.entries(summary(settleMs)).map(([s, v]) => [s, round(v, 0)])),
        perKeySplitMs: Object.fromEntries(Object.entries(summary(splitMs)).map(([s, v]) => [s, round(v, 0)])),
        notSettled: moving.length - settledAt.size,
        newOwners: [...new Set(after.values())].map(String).sort(),
        keysNotWithTheirOwner: wrongOwner.length,
      },
    };
    mkdirSync(path.join(ROOT, 'artifacts'), { recursive: true });
    writeFileSync(path.join(ROOT, 'artifacts', 'bench-keys.json'), `${JSON.stringify(result, null, 2)}\n`);
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    if (result.drain.notSettled > 0 || wrongOwner.length > 0) throw new Error(`bench:keys: ${result.drain.notSettled} keys never settled, ${wrongOwner.length} ended away from their registry owner`);
  } finally {
    for (const c of clients) c.stop();
    agent.destroy();
    await Promise.all(procs.map((p) => p.stop()));
    await registry.close();
    probe.disconnect();
    await redis.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:keys: ${(err as Error).stack ?? String(err)}\n`);
  killAll();
  process.exit(1);
});
