// GATEWAY_WORKERS, through the real CLI in real processes: a real uWebSockets.js socket node (`rtc-edge socket`),
// a real Redis, `rtc-edge gateway` with 2 workers, and real `ws` clients spread over child processes. Two workers
// hold more connections than one process's 20,000 descriptors allow (12,000 proxied = 24,000 descriptors); SIGKILL on one worker drops only its own
// connections, and the primary restarts it.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { after, test } from 'node:test';
import { freePort } from './support/net.js';
import { promtool } from './support/promtool.js';
import { startRedis, type RedisServer } from './support/redis.js';
import { spawnRole, type RoleProcess } from './support/role-process.js';
import { waitUntil } from './support/wait.js';
import { startHolder, type Holder, type HolderStatus } from './support/ws-holder.js';

const POD = 'socket-workers';
/** 24,000 gateway descriptors in all, more than the 20,000 one process may hold (and 12,000 > ONE_PROCESS_MAX). */
const CONNECTIONS = 12_000;
const HOLDERS = 2;
/** (20,000 − 100 reserved) ÷ 2: the most one gateway process can proxy under this machine's limit. */
const ONE_PROCESS_MAX = 9_950;
/** GATEWAY_DRAIN_MS: SIGTERM's 1001 closes are paced over this window, in every worker at once. */
const DRAIN_MS = 2000;

const started: { kill(): Promise<void> }[] = [];
const holders: Holder[] = [];
let redis: RedisServer | undefined;
after(async () => {
  await Promise.all(holders.map((h) => h.stop()));
  for (const p of started.reverse()) await p.kill();
  await redis?.stop();
});

function descriptors(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** `gateway worker started` lines of the primary: slot → latest pid. */
function workerPids(gw: RoleProcess): Map<number, number> {
  const pids = new Map<number, number>();
  for (const l of gw.lines) if (l.msg === 'gateway worker started') pids.set(l.worker as number, l.workerPid as number);
  return pids;
}

async function metric(admin: string, name: string): Promise<number> {
  const text = await (await fetch(`${admin}/metrics`)).text();
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
  assert.ok(m, `${name} in /metrics`);
  return Number(m[1]);
}

const sum = (all: HolderStatus[], f: (s: HolderStatus) => number) => all.reduce((n, s) => n + f(s), 0);

test('2 gateway workers hold more than one process\'s descriptor limit; SIGKILL on one drops only its connections and it is restarted', { timeout: 120_000 }, async () => {
  redis = await startRedis();
  const node = await spawnRole('socket', 'socket node listening', { REDIS_URL: redis.url, SOCKET_PORT: '0', ADMIN_PORT: '0', POD_NAME: POD, POD_IP: '127.0.0.1', SOCKET_IDLE_TIMEOUT_S: '0', HEARTBEAT_MS: '500', LOG_LEVEL: 'info' });
  started.push(node);
  const gw = await spawnRole('gateway', 'gateway listening', { REDIS_URL: redis.url, GATEWAY_WORKERS: '2', GATEWAY_PORT: String(await freePort()), GATEWAY_ADMIN_PORT: '0', HEARTBEAT_MS: '500', GATEWAY_DRAIN_MS: String(DRAIN_MS), LOG_LEVEL: 'info' });
  started.push(gw);
  const port = gw.log.port as number;
  const admin = `http://127.0.0.1:${gw.log.adminPort as number}`;
  assert.equal(gw.log.workers, 2);
  const before = workerPids(gw);
  assert.equal(before.size, 2, 'two workers started');
  assert.equal((await fetch(`${admin}/readyz`)).status, 200);
  // GATEWAY_MAX_CONNECTIONS (9,500) is each worker's own budget: the pod's limit is their sum.
  assert.equal(await metric(admin, 'rtc_gateway_max_connections'), 2 * 9_500);
  await waitUntil('the socket node in the workers\' registry views', async () => ((await fetch(`http://127.0.0.1:${port}/ws/assign`)).status === 200 ? true : undefined), 20_000);

  for (let i = 0; i < HOLDERS; i++) holders.push(await startHolder());
  const url = `ws://127.0.0.1:${port}/ws/${POD}/connect`;
  const t0 = Date.now();
  const opened = await Promise.all(holders.map((h) => h.send({ cmd: 'open', url, count: CONNECTIONS / HOLDERS, concurrency: 64 })));
  const openMs = Date.now() - t0;
  assert.equal(sum(opened, (s) => s.open), CONNECTIONS, `all ${CONNECTIONS} connected in ${openMs} ms: ${JSON.stringify(opened.map((s) => s.failures))}`);
  assert.equal(await metric(admin, 'rtc_gateway_active_connections'), CONNECTIONS, 'the aggregated gauge counts every worker');

  const fds = [...before.values()].map(descriptors);
  assert.ok(fds.reduce((a, b) => a + b, 0) > 2 * CONNECTIONS, `worker descriptors ${fds.join(' + ')} hold both sides of every connection`);
  for (const n of fds) assert.ok(n < 20_000 && n > 2 * (CONNECTIONS - ONE_PROCESS_MAX), `each worker holds its share within its own limit: ${fds.join(', ')}`);
  // Each worker accepts on the shared socket and the primary balances them (the kernel alone gave nearly all of a
  // quiet burst to one worker): the shares are even, not just within each worker's limit.
  const total = fds[0]! + fds[1]!;
  process.stdout.write(`# ${CONNECTIONS} connections in ${openMs} ms; worker descriptors ${fds.join(' / ')}\n`);
  for (const n of fds) assert.ok(n > 0.4 * total && n < 0.6 * total, `the workers' shares are even: ${fds.join(' vs ')} descriptors`);

  const [victimSlot, victimPid] = [...before][0]!;
  process.kill(victimPid, 'SIGKILL');
  // The victim's connections are closed by the kernel at once; give every close time to arrive.
  const dropped = await waitUntil('the killed worker\'s connections closed', async () => {
    const s = await Promise.all(holders.map((h) => h.send({ cmd: 'status' })));
    const closed = sum(s, (x) => x.closed);
    await new Promise((r) => setTimeout(r, 500));
    const again = await Promise.all(holders.map((h) => h.send({ cmd: 'status' })));
    return closed > 0 && sum(again, (x) => x.closed) === closed ? again : undefined;
  }, 20_000);
  const closed = sum(dropped, (s) => s.closed);
  const survivors = sum(dropped, (s) => s.open);
  assert.equal(closed + survivors, CONNECTIONS);
  // Each worker's share fits one process, so both held theirs.
  assert.ok(closed <= ONE_PROCESS_MAX && survivors <= ONE_PROCESS_MAX, `killed worker held ${closed}, the other ${survivors}`);

  // The primary restarts the victim; meanwhile the survivor's connections stay open and keep relaying.
  const restarted = await waitUntil('the killed worker restarted and serving', async () => {
    const line = gw.lines.find((l) => l.msg === 'gateway worker serving again' && l.worker === victimSlot);
    return line ? workerPids(gw).get(victimSlot)! : undefined;
  }, 30_000);
  assert.notEqual(restarted, victimPid);
  const died = gw.lines.find((l) => l.msg?.toString().startsWith('gateway worker died'));
  assert.equal(died?.signal, 'SIGKILL', 'the death is logged with its signal');
  assert.equal(await waitUntil('readiness back', async () => ((await fetch(`${admin}/readyz`)).status === 200 ? 200 : undefined), 10_000), 200);
  const pinged = await Promise.all(holders.map((h) => h.send({ cmd: 'ping', sample: 200, timeoutMs: 10_000 })));
  assert.equal(sum(pinged, (s) => s.ponged!), sum(pinged, (s) => s.pinged!), 'the surviving connections still relay');
  assert.equal(sum(pinged, (s) => s.open), survivors, 'no surviving connection was dropped by the restart');
  assert.equal(await metric(admin, 'rtc_gateway_worker_restarts_total'), 1);

  // The new worker takes the new connections (it holds the fewest, so the survivor stops accepting).
  const fdsBefore = descriptors(restarted);
  const more = await holders[0]!.send({ cmd: 'open', url, count: 200, concurrency: 20 });
  assert.equal(more.open, dropped[0]!.open + 200, 'new connections accepted');
  const gained = descriptors(restarted) - fdsBefore;
  process.stdout.write(`# after the restart: the restarted worker gained ${gained} descriptors for 200 new connections\n`);
  assert.ok(gained >= 100, 'the restarted worker serves again');

  // The aggregated exposition is valid Prometheus text.
  const check = promtool(['check', 'metrics'], undefined, await (await fetch(`${admin}/metrics`)).text());
  assert.equal(check.status, 0, check.stdout + check.stderr);

  // SIGTERM to the primary drains both workers as one: readiness fails at once, every connection gets 1001
  // within the one GATEWAY_DRAIN_MS window, then every process exits 0.
  const held = sum(await Promise.all(holders.map((h) => h.send({ cmd: 'status' }))), (s) => s.open);
  const closedBefore = sum(await Promise.all(holders.map((h) => h.send({ cmd: 'status' }))), (s) => s.closeCodes['1001'] ?? 0);
  const tTerm = Date.now();
  gw.child.kill('SIGTERM');
  await waitUntil('readiness failing during the drain', async () => ((await fetch(`${admin}/readyz`)).status === 503 ? true : undefined), DRAIN_MS);
  assert.equal(await gw.exited, 0, `the primary exits 0 after the drain; its stderr: ${gw.stderr()}`);
  const drainedMs = Date.now() - tTerm;
  const after = await waitUntil('every connection closed', async () => {
    const a = await Promise.all(holders.map((h) => h.send({ cmd: 'status' })));
    return sum(a, (s) => s.open) === 0 ? a : undefined;
  }, 10_000);
  // Each worker paces its 1001s over the window and destroys what is left at its deadline (a loaded machine
  // may not get through all of them): every connection is accounted for by one or the other.
  const stopped = gw.lines.filter((l) => l.msg === 'gateway stopped');
  assert.equal(stopped.length, 2, 'each worker ran its paced shutdown');
  const sent1001 = sum(after, (s) => s.closeCodes['1001'] ?? 0) - closedBefore;
  const destroyed = stopped.reduce((n, l) => n + (l.destroyed as number), 0);
  assert.ok(sent1001 > 0 && sent1001 + destroyed >= held, `${held} connections: ${sent1001} got 1001, ${destroyed} destroyed at the deadline`);
  assert.ok(gw.lines.some((l) => l.msg === 'gateway stopped: every worker exited'));
  assert.ok(drainedMs >= DRAIN_MS * 0.5, `the closes were paced over the window, not sent at once (${drainedMs} ms)`);
});
