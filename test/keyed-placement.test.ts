/**
 * Keyed placement end to end (DESIGN.md "Keyed placement"), on real processes: 3 gateways and 3 socket nodes (the
 * room example handler) on one real redis-server, and the same cases on `rtc-edge dev` with the memory registry.
 * One stack per suite, shared by its cases in order: hostile keys, 200 concurrent assigns for 20 keys, the grace
 * of a key's last session, a drain of the busiest owner, a stale connect (409 key_moved) and, on Redis, an owner
 * SIGKILLed. Real `ws` clients through the reference client (examples/client.ts) with a key.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket } from 'ws';
import { start as startDev, type DevHandle } from '../app/dev.js';
import { EdgeClient } from '../examples/client.js';
import { ROOM_TYPE } from '../examples/handlers/room.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { createMemoryRegistry, createRedisRegistry, type Registry } from '../src/registry/index.js';
import { RECONNECT_RETRY_JITTER_MS, RECONNECT_RETRY_MIN_MS } from '../socket/constants.js';
import { startRedis, type RedisServer } from './support/redis.js';
import { spawnRole, type RoleProcess } from './support/role-process.js';
import { refusedUpgrade, waitFor } from './socket-support.js';

const HB = 500;
const DEV_HB = 1000;
const DRAIN_WINDOW_MS = 2000;
const GRACE_MS = 1500;
const KEYS = 20;
const CLIENTS = 200;
const RECONNECT_JITTER = 0.2;
/** The last notice goes out by the end of the window; its client comes back after at most this. */
const LATEST_RETURN_MS = DRAIN_WINDOW_MS + (RECONNECT_RETRY_MIN_MS + RECONNECT_RETRY_JITTER_MS) * (1 + RECONNECT_JITTER);
const COMMON = {
  HEARTBEAT_MS: String(HB),
  DRAIN_WINDOW_MS: String(DRAIN_WINDOW_MS),
  SOCKET_KEY_GRACE_MS: String(GRACE_MS),
  SOCKET_HANDLER: './examples/handlers/room.ts',
  GATEWAY_ASSIGN_STRATEGY: 'spread',
};

/** A running stack: gateway base URLs, socket nodes by pod id, and a registry client of the test's own. */
interface Stack {
  gateways: string[];
  admins: Map<string, string>;
  registry: Registry;
  /** SIGKILL a socket node (only where nodes are processes). */
  kill?(podId: string): Promise<void>;
  close(): Promise<void>;
}

interface Keyed {
  key: string;
  client: EdgeClient;
  /** The pod of the first assign answer. */
  firstAssign?: string;
  /** `data` of every room message heard. */
  heard: unknown[];
  /** Errors and retries, for the failure messages. */
  trouble: string[];
}

function keyedClient(url: string, key: string): Keyed {
  const client = new EdgeClient({ url, WebSocket, key, backoffInitialMs: 50, backoffMaxMs: 500, reconnectJitter: RECONNECT_JITTER });
  const k: Keyed = { key, client, heard: [], trouble: [] };
  client.on('error', (e) => k.trouble.push(e.message));
  client.on('retry', (r) => k.trouble.push(`retry ${r.cause}`));
  client.on('assign', (a) => (k.firstAssign ??= a.podId));
  client.on('message', (m) => m.type === ROOM_TYPE && k.heard.push((m as Record<string, unknown>).data));
  client.start();
  return k;
}

/** Until every client of `keys` is open on one pod per key that the registry names the owner; the owners by key. */
async function settled(stack: Stack, clients: Keyed[], keys: readonly string[], timeoutMs: number, notOn?: string): Promise<Map<string, string>> {
  return waitFor(async () => {
    const owners = new Map<string, string>();
    for (const key of keys) {
      const mine = clients.filter((c) => c.key === key);
      const pods = new Set(mine.map((c) => (c.client.state === 'open' ? c.client.podId : 'not-open')));
      const owner = await stack.registry.ownerOf(key);
      if (pods.size !== 1 || owner === undefined || !pods.has(owner) || owner === notOn) return undefined;
      owners.set(key, owner);
    }
    return owners;
  }, timeoutMs, 50);
}

/** One client of each key says something in its room: every client of that key hears it, no other client does. */
async function roomsMeet(clients: Keyed[], keys: readonly string[], tag: string): Promise<void> {
  for (const key of keys) assert.ok(clients.find((c) => c.key === key)!.client.send({ type: ROOM_TYPE, data: `${tag}:${key}` }));
  await waitFor(() => clients.every((c) => !keys.includes(c.key) || c.heard.includes(`${tag}:${c.key}`)), 10_000);
  for (const c of clients) assert.deepEqual(c.heard.filter((d) => typeof d === 'string' && d.startsWith(`${tag}:`)), keys.includes(c.key) ? [`${tag}:${c.key}`] : [], c.key);
}

async function startRedisStack(redis: RedisServer): Promise<Stack> {
  const env = { ...COMMON, REDIS_URL: redis.url, REDIS_PREFIX: 'keyed:', POD_IP: '127.0.0.1', LOG_LEVEL: 'info' };
  const nodes = await Promise.all([0, 1, 2].map((i) => spawnRole('socket', 'socket node listening', { ...env, POD_NAME: `socket-k${i}`, SOCKET_PORT: '0', ADMIN_PORT: '0' })));
  // One process per gateway (the claim race is between gateways; workers of one gateway race the same way).
  const gateways = await Promise.all([0, 1, 2].map((i) => spawnRole('gateway', 'gateway listening', { ...env, POD_NAME: `gateway-k${i}`, GATEWAY_PORT: '0', GATEWAY_ADMIN_PORT: '0', GATEWAY_WORKERS: '1' })));
  const procs = new Map<string, RoleProcess>(nodes.map((n, i) => [`socket-k${i}`, n]));
  const registry = createRedisRegistry({ url: redis.url, prefix: 'keyed:' });
  const stack: Stack = {
    gateways: gateways.map((g) => `http://127.0.0.1:${g.log.port as number}`),
    admins: new Map(nodes.map((n, i) => [`socket-k${i}`, `http://127.0.0.1:${n.log.adminPort as number}`])),
    registry,
    kill: (podId) => procs.get(podId)!.kill(),
    async close() {
      await registry.close();
      await Promise.all([...nodes, ...gateways].map(async (p) => {
        if (!p.alive()) return;
        p.child.kill('SIGTERM');
        await Promise.race([p.exited, sleep(10_000)]);
        await p.kill();
      }));
    },
  };
  // Every gateway sees the three nodes before the first assign.
  for (const g of gateways) await waitFor(async () => ((await (await fetch(`http://127.0.0.1:${g.log.adminPort as number}/api/pods`)).json()) as { pods: unknown[] }).pods.length === 3, 15_000);
  return stack;
}

async function startDevStack(): Promise<Stack> {
  const registry = createMemoryRegistry();
  // The whole stack shares the test process with its 200 clients: a heartbeat of its own (the dev default), so a
  // loop busy with a burst does not look like dead pods.
  const config = loadConfig({ ...COMMON, HEARTBEAT_MS: String(DEV_HB), GATEWAY_PORT: '0', SOCKET_MIN_REPLICAS: '3', SOCKET_TARGET_CONNECTIONS: '1000', SCALER_INTERVAL_MS: '300', LOG_LEVEL: 'silent' }, 'dev');
  const dev: DevHandle = await startDev(config, { logger: createLogger('silent'), registry, host: '127.0.0.1', banner: () => {} });
  const pods = await waitFor(async () => {
    const body = (await (await fetch(`${dev.url}/api/pods`)).json()) as { pods: { podId: string; adminPort: number }[] };
    return body.pods.length === 3 ? body.pods : undefined;
  }, 15_000);
  return {
    gateways: [dev.url],
    admins: new Map(pods.map((p) => [p.podId, `http://127.0.0.1:${p.adminPort}`])),
    registry,
    async close() {
      await dev.close();
      await registry.close();
    },
  };
}

/** `processes`: socket nodes run as processes of their own, so one can be SIGKILLed (dev runs them in the test process). */
const stacks: { name: string; processes: boolean; start(): Promise<Stack>; stop?(): Promise<void> }[] = [];
let redis: RedisServer | undefined;
stacks.push({
  name: '3 gateways and 3 socket node processes on one real Redis',
  processes: true,
  async start() {
    redis = await startRedis();
    return startRedisStack(redis);
  },
  stop: async () => redis?.stop(),
});
stacks.push({ name: 'rtc-edge dev with the memory registry', processes: false, start: startDevStack });

for (const def of stacks) {
  describe(`keyed placement: ${def.name}`, () => {
    let stack: Stack;
    const clients: Keyed[] = [];
    const keys = Array.from({ length: KEYS }, (_, i) => `room:${i}.a_b-c`);
    let drained: string | undefined;

    before(async () => {
      stack = await def.start();
    });
    after(async () => {
      for (const c of clients) c.client.stop();
      await stack?.close();
      await def.stop?.();
    });

    test('hostile keys (length, characters, encoded, repeated) get 400 invalid_key on assign and on connect; an encoded valid key is that key', async () => {
      const gw = stack.gateways[0]!;
      const pod = [...stack.admins.keys()][0]!;
      const hostile = ['', 'x'.repeat(129), 'a%20b', 'a+b', 'a/b', 'a%2Fb', '%00', 'caf%C3%A9', '%3Cscript%3E', 'k&key=k2', 'r%0D%0Aset-cookie:x', '..%2F..%2Fdrain', 'a%25'];
      for (const raw of hostile) {
        const res = await fetch(`${gw}/ws/assign?key=${raw}`);
        assert.equal(res.status, 400, raw);
        assert.equal(((await res.json()) as { error: string }).error, 'invalid_key', raw);
        const refused = await refusedUpgrade(`${gw.replace('http', 'ws')}/ws/${pod}/connect?key=${raw}`);
        assert.deepEqual([refused.status, refused.body.error], [400, 'invalid_key'], `connect ${raw}`);
      }
      const ok = (await (await fetch(`${gw}/ws/assign?key=room%3Aencoded`)).json()) as { podId: string; url: string; key: string };
      assert.equal(ok.key, 'room:encoded');
      assert.equal(ok.url, `/ws/${ok.podId}/connect?key=room:encoded`);
      assert.equal(await stack.registry.ownerOf('room:encoded'), ok.podId);
      const longest = 'k'.repeat(128);
      assert.equal(((await (await fetch(`${gw}/ws/assign?key=${longest}`)).json()) as { key: string }).key, longest);
    });

    test(`${CLIENTS} concurrent assigns for ${KEYS} keys: each key has exactly one owner, all of its clients connect to it and hear each other`, async () => {
      for (let i = 0; i < CLIENTS; i++) clients.push(keyedClient(stack.gateways[i % stack.gateways.length]!, keys[i % KEYS]!));
      const owners = await settled(stack, clients, keys, 30_000);
      for (const c of clients) {
        assert.equal(c.firstAssign, owners.get(c.key), `${c.key}: the first assign answer already named the owner`);
        assert.equal(c.client.stats.failures, 0, `${c.key}: no connect was refused: ${c.trouble.join('; ')}`);
      }
      const listed = new Map<string, string>();
      for (const pod of stack.admins.keys()) for (const key of await stack.registry.keysOf(pod)) if (keys.includes(key)) listed.set(key, pod);
      assert.deepEqual(new Map([...listed].sort()), new Map([...owners].sort()), 'keysOf lists every key under its owner');
      await roomsMeet(clients, keys, 'first');
    });

    test('the claim outlives its last session by SOCKET_KEY_GRACE_MS (a reconnect keeps the key), then it is released', async () => {
      const key = 'grace-room';
      const first = keyedClient(stack.gateways[0]!, key);
      await waitFor(() => first.client.state === 'open', 10_000);
      const owner = first.client.podId!;
      first.client.stop();
      await sleep(GRACE_MS / 3);
      assert.equal(await stack.registry.ownerOf(key), owner, 'kept during the grace');
      const back = keyedClient(stack.gateways.at(-1)!, key);
      await waitFor(() => back.client.state === 'open', 10_000);
      assert.equal(back.client.podId, owner, 'the reconnect lands on the same pod');
      back.client.stop();
      const closedAt = Date.now();
      await waitFor(async () => (await stack.registry.ownerOf(key)) === undefined, GRACE_MS + 3 * HB + 5000, 50);
      assert.ok(Date.now() - closedAt >= GRACE_MS * 0.9, `released after the grace, not before (${Date.now() - closedAt} ms)`);
    });

    test('drain the busiest owner: all of its keys move, and their clients meet again on new owners within the drain window', async () => {
      const before = new Map(await Promise.all(keys.map(async (k) => [k, (await stack.registry.ownerOf(k))!] as const)));
      const counts = new Map<string, number>();
      for (const pod of before.values()) counts.set(pod, (counts.get(pod) ?? 0) + 1);
      drained = [...counts].sort((a, b) => b[1] - a[1])[0]![0];
      const moved = keys.filter((k) => before.get(k) === drained);
      const stayed = keys.filter((k) => before.get(k) !== drained);
      const t0 = Date.now();
      const drain = fetch(`${stack.admins.get(drained)}/drain`).then((r) => r.json() as Promise<{ remaining: number }>);
      await waitFor(async () => (await stack.registry.keysOf(drained!)).length === 0, 2 * HB + 2000, 20);
      const owners = await settled(stack, clients, moved, LATEST_RETURN_MS + 10_000, drained);
      const elapsed = Date.now() - t0;
      assert.ok(elapsed <= LATEST_RETURN_MS + 2000, `every client of the ${moved.length} moved keys met again after ${elapsed} ms (window ${DRAIN_WINDOW_MS} ms, last return by ${LATEST_RETURN_MS} ms)`);
      assert.equal((await drain).remaining, 0);
      for (const key of moved) assert.notEqual(owners.get(key), drained);
      for (const c of clients.filter((c) => stayed.includes(c.key))) assert.equal(c.client.stats.reconnectNotices, 0, `${c.key} was not on the drained pod and did not move`);
      assert.deepEqual(await settled(stack, clients, stayed, 5000), new Map(stayed.map((k) => [k, before.get(k)!])), 'the other keys kept their owners');
      await roomsMeet(clients, keys, 'after-drain');
    });

    test('a stale ?key= connect to a live pod that does not own the key is refused 409 key_moved with the owner URL', async () => {
      const owners = await settled(stack, clients, keys, 5000);
      const key = [...owners.keys()][0]!;
      const owner = owners.get(key)!;
      const stale = [...stack.admins.keys()].find((p) => p !== owner && p !== drained)!;
      const gw = stack.gateways[0]!;
      const refused = await refusedUpgrade(`${gw.replace('http', 'ws')}/ws/${stale}/connect?key=${key}`);
      assert.equal(refused.status, 409);
      assert.deepEqual(refused.body, { error: 'key_moved', message: refused.body.message, key, podId: owner, url: `/ws/${owner}/connect?key=${key}`, assignUrl: `/ws/assign?key=${key}` });
      assert.equal(await stack.registry.ownerOf(key), owner, 'the refused connect did not take the key');
      // The URL in the body works.
      const ws = new WebSocket(`${gw.replace('http', 'ws')}${String(refused.body.url)}`);
      const welcome = await new Promise<{ podId: string }>((resolve, reject) => {
        ws.once('message', (d) => resolve(JSON.parse(String(d)) as { podId: string }));
        ws.once('error', reject);
      });
      assert.equal(welcome.podId, owner);
      ws.close();
    });

    if (def.processes) test('owner SIGKILLed: its claims outlive it until the heartbeat expiry, then move, and its clients meet again', async () => {
      const owners = await settled(stack, clients, keys, 5000);
      const victim = [...owners.values()].find((p) => p !== drained)!;
      const lost = keys.filter((k) => owners.get(k) === victim);
      await stack.kill!(victim);
      const killedAt = Date.now();
      assert.equal(await stack.registry.ownerOf(lost[0]!), victim, 'a claim is not dropped the instant its owner dies: it expires');
      const moved = await settled(stack, clients, lost, 3 * HB + 15_000, victim);
      const elapsed = Date.now() - killedAt;
      for (const key of lost) assert.ok(![victim, drained].includes(moved.get(key)), key);
      // The claim was renewed at most one heartbeat before the kill and lives three.
      assert.ok(elapsed >= 2 * HB * 0.9, `moved ${elapsed} ms after the kill, once the claim expired`);
      await roomsMeet(clients, lost, 'after-kill');
    });
  });
}
