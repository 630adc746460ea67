/**
 * The gateway's two surfaces: clients reach only /ws/*, /healthz and /readyz on GATEWAY_PORT; /metrics, /api/*
 * and the status page live on GATEWAY_ADMIN_PORT. /api/pods answers from the cached view (counted on a real
 * Redis with INFO commandstats, keys per pod included), and HEAD changes nothing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { API_PODS_KEYS_LISTED } from '../gateway/constants.js';
import { createRedisRegistry } from '../src/registry/index.js';
import { settledWithin, type Registry } from '../src/registry/registry.js';
import { freePort } from './support/net.js';
import { startRedis, type RedisServer } from './support/redis.js';
import { pod, rawExchange, startGateway, startWsUpstream, upgradeRequest, upgradeStatus, type TestGateway, type WsUpstream } from './support/upstream.js';

/** Status and JSON error code (if any) of one request. */
async function ask(base: string, path: string, method = 'GET'): Promise<{ status: number; error?: string }> {
  const res = await fetch(`${base}${path}`, { method });
  const text = await res.text();
  let error: string | undefined;
  try {
    error = (JSON.parse(text) as { error?: string }).error;
  } catch {
    /* not JSON: metrics text, the status page, or HEAD */
  }
  return { status: res.status, ...(error ? { error } : {}) };
}

/** Every command Redis executed so far (those run inside scripts included), except the INFO calls of `probe`; or only `name`. */
async function commandsExecuted(probe: Redis, name?: string): Promise<number> {
  const info = await probe.info('commandstats');
  let n = 0;
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) if (m[1] !== 'info' && (name === undefined || m[1] === name)) n += Number(m[2]);
  return n;
}

/**
 * A real redis-server, `seed` written through a registry of its own, and a gateway on it whose first sync reads the
 * seed. A long heartbeat: the view's periodic sync does not fall inside a command count.
 */
async function seededGateway(prefix: string, seed: (writer: Registry) => Promise<void>): Promise<{ redis: RedisServer; probe: Redis; gw: TestGateway }> {
  const redis = await startRedis();
  const probe = new Redis(redis.url, { lazyConnect: false });
  const writer = createRedisRegistry({ url: redis.url, prefix });
  await settledWithin(writer, 5000);
  await seed(writer);
  await writer.close();
  const gw = await startGateway({ HEARTBEAT_MS: '60000' }, { registry: createRedisRegistry({ url: redis.url, prefix }) });
  return { redis, probe, gw };
}

async function stopSeeded(redis: RedisServer, probe: Redis, gw: TestGateway): Promise<void> {
  await gw.gateway.close();
  await gw.registry.close();
  probe.disconnect();
  await redis.stop();
}

describe('client-facing and admin ports', () => {
  let up: WsUpstream;
  let gw: TestGateway;

  before(async () => {
    up = await startWsUpstream();
    gw = await startGateway();
    await gw.registry.heartbeat(pod('pod-a', up.port));
  });
  after(async () => {
    await gw.gateway.close();
    await up.close();
  });

  test('a role gateway listens on two different ports', () => {
    assert.ok(gw.gateway.adminPort > 0);
    assert.notEqual(gw.gateway.adminPort, gw.gateway.port);
  });

  test('the client-facing port serves /ws/assign, connect routes and the probes; everything else is 404 not_found', async () => {
    assert.equal((await ask(gw.base, '/ws/assign')).status, 200);
    assert.equal((await ask(gw.base, '/healthz')).status, 200);
    assert.equal((await ask(gw.base, '/readyz')).status, 200);
    assert.equal((await ask(gw.base, '/ws/pod-a/connect')).error, 'upgrade_required');
    assert.equal((await ask(gw.base, '/ws/Pod_A/connect')).error, 'invalid_pod_id');
    for (const path of ['/', '/metrics', '/api/pods', '/api/events', '/api/pods?x=1', '/api/keys/room-1', '/api/keys/', '/index.html']) {
      for (const method of ['GET', 'POST']) {
        const r = await ask(gw.base, path, method);
        assert.equal(r.status, 404, `${method} ${path}`);
        assert.equal(r.error, 'not_found', `${method} ${path}`);
      }
      assert.equal((await ask(gw.base, path, 'HEAD')).status, 404, `HEAD ${path}`);
    }
  });

  test('the admin port serves /metrics, /api/*, the status page and the probes, and no /ws/* route', async () => {
    const metrics = await fetch(`${gw.admin}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(await metrics.text(), /rtc_gateway_upgrades_total/);
    const pods = (await (await fetch(`${gw.admin}/api/pods`)).json()) as { pods: { podId: string }[]; registry: string };
    assert.deepEqual(pods.pods.map((p) => p.podId), ['pod-a']);
    assert.equal(pods.registry, 'fresh');
    assert.equal((await ask(gw.admin, '/api/events')).status, 200);
    const page = await fetch(`${gw.admin}/`);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    assert.equal((await ask(gw.admin, '/healthz')).status, 200);
    assert.equal((await ask(gw.admin, '/readyz')).status, 200);
    for (const path of ['/ws/assign', '/ws/pod-a/connect', '/ws/Pod_A/connect']) assert.deepEqual([path, (await ask(gw.admin, path)).error], [path, 'not_found']);
  });

  test('an upgrade on the admin port is 404 not_found and never reaches a pod', async () => {
    const seen = up.seen.length;
    const r = await rawExchange(gw.gateway.adminPort, upgradeRequest('/ws/pod-a/connect'));
    assert.equal(r.status, 404, r.text);
    assert.equal((JSON.parse(r.body) as { error: string }).error, 'not_found');
    assert.equal(up.seen.length, seen, 'the pod saw a handshake from the admin port');
    // The same request on the client port is proxied (the pod is real and live).
    assert.equal((await upgradeStatus(gw.gateway.port, upgradeRequest('/ws/pod-a/connect'))).status, 101);
    assert.equal(up.seen.length, seen + 1);
  });
});

describe('HEAD has no side effects', () => {
  let up: WsUpstream;
  let gw: TestGateway;

  before(async () => {
    up = await startWsUpstream();
    // spread (not the pack default) makes handed-out counts visible: they steer the next choice.
    gw = await startGateway({ GATEWAY_ASSIGN_STRATEGY: 'spread' });
    // pod-idle is the only near-least-loaded pod: every GET goes there until 5 assignments were counted on it.
    await gw.registry.heartbeat(pod('pod-idle', up.port, { connections: 0 }));
    await gw.registry.heartbeat(pod('pod-busy', up.port, { connections: 5 }));
  });
  after(async () => {
    await gw.gateway.close();
    await up.close();
  });

  test('HEAD /ws/assign answers like GET but does not count a handed-out assignment', async () => {
    for (let i = 0; i < 50; i++) {
      const r = await fetch(`${gw.base}/ws/assign`, { method: 'HEAD' });
      assert.equal(r.status, 200);
      assert.equal(await r.text(), '');
    }
    // Had the 50 HEADs been counted, pod-idle would look like 50 connections and pod-busy would be chosen.
    const got = (await (await fetch(`${gw.base}/ws/assign`)).json()) as { podId: string };
    assert.equal(got.podId, 'pod-idle');
    // GETs are counted: after enough of them the spread moves on to pod-busy.
    const ids = new Set<string>();
    for (let i = 0; i < 12; i++) ids.add(((await (await fetch(`${gw.base}/ws/assign`)).json()) as { podId: string }).podId);
    assert.ok(ids.has('pod-busy'), 'GET assignments were not counted');
  });

  test('HEAD on every other route: the GET status, no body, and nothing proxied', async () => {
    const seen = up.seen.length;
    const routes: [string, string][] = [[gw.base, '/healthz'], [gw.base, '/readyz'], [gw.base, '/ws/pod-idle/connect'], [gw.base, '/nope'], [gw.admin, '/metrics'], [gw.admin, '/api/pods'], [gw.admin, '/api/events'], [gw.admin, '/']];
    for (const [base, path] of routes) {
      const head = await fetch(`${base}${path}`, { method: 'HEAD' });
      const get = await fetch(`${base}${path}`);
      await get.arrayBuffer();
      assert.equal(head.status, get.status, `HEAD ${path}`);
      assert.equal(await head.text(), '', `HEAD ${path} has a body`);
    }
    // HEAD with upgrade headers on a connect route is refused before any pod is dialled.
    const r = await rawExchange(gw.gateway.port, upgradeRequest('/ws/pod-idle/connect').replace(/^GET/, 'HEAD'));
    assert.equal(r.status, 405);
    assert.equal(up.seen.length, seen, 'a HEAD reached the pod');
  });
});

describe('/api/pods reads the cached view', () => {
  let redis: RedisServer;
  let probe: Redis;
  let gw: TestGateway;

  before(async () => {
    ({ redis, probe, gw } = await seededGateway('surface:', async (writer) => {
      for (let i = 0; i < 5; i++) await writer.heartbeat(pod(`pod-${i}`, 10_000 + i, { connections: i }));
      await writer.setScalerDecision({ desiredReplicas: 5, currentReplicas: 5, reason: 'test', at: Date.now() });
      // pod-1 holds 3 keys, pod-2 more than /api/pods lists.
      for (const k of ['room-c', 'room-a', 'doc:b']) await writer.claim(k, 'pod-1', 600_000);
      await writer.renewClaims('pod-2', Array.from({ length: API_PODS_KEYS_LISTED + 5 }, (_, i) => `match-${String(i).padStart(2, '0')}`), 600_000);
    }));
  });
  after(() => stopSeeded(redis, probe, gw));


  test('300 requests cost no Redis command, and the answer holds the pods and the decision', async () => {
    const first = (await (await fetch(`${gw.admin}/api/pods`)).json()) as { pods: { podId: string; keyCount: number; keys: string[] }[]; desiredReplicas: number; totalConnections: number };
    assert.deepEqual(first.pods.map((p) => p.podId), ['pod-0', 'pod-1', 'pod-2', 'pod-3', 'pod-4']);
    assert.deepEqual(first.pods.map((p) => p.keyCount), [0, 3, API_PODS_KEYS_LISTED + 5, 0, 0], 'keys per pod, read with the sync');
    assert.deepEqual(first.pods[1]!.keys, ['doc:b', 'room-a', 'room-c']);
    assert.equal(first.pods[2]!.keys.length, API_PODS_KEYS_LISTED, `at most ${API_PODS_KEYS_LISTED} keys listed`);
    assert.equal(first.desiredReplicas, 5);
    assert.equal(first.totalConnections, 10);
    const before = await commandsExecuted(probe);
    const batch = async () => {
      for (let i = 0; i < 30; i++) assert.equal((await fetch(`${gw.admin}/api/pods`)).status, 200);
    };
    await Promise.all(Array.from({ length: 10 }, batch));
    const spent = (await commandsExecuted(probe)) - before;
    assert.equal(spent, 0, `${spent} Redis commands for 300 /api/pods requests`);
  });
});

describe('/api/keys/<key>: the owner of one key', () => {
  let redis: RedisServer;
  let probe: Redis;
  let gw: TestGateway;

  before(async () => {
    ({ redis, probe, gw } = await seededGateway('lookup:', async (writer) => {
      await writer.heartbeat(pod('pod-a', 10_001, { connections: 4 }));
      await writer.claim('room:1', 'pod-a', 600_000);
      await writer.claim('room-2', 'pod-a', 600_000);
      // An owner without a live entry: its pod died, the claim has not expired yet.
      await writer.claim('orphan', 'pod-gone', 600_000);
    }));
  });
  after(() => stopSeeded(redis, probe, gw));

  test('a claimed key: 200 with the owner, its pinned URL and its /api/pods row; percent-encoded like ?key=', async () => {
    for (const path of ['/api/keys/room:1', '/api/keys/room%3A1', '/api/keys/room%3a1?x=1']) {
      const res = await fetch(`${gw.admin}${path}`);
      assert.equal(res.status, 200, path);
      const body = (await res.json()) as { key: string; podId: string; url: string; pod: { podId: string; connections: number; keyCount: number; keys: string[] } | null };
      assert.deepEqual({ ...body, pod: body.pod && { podId: body.pod.podId, connections: body.pod.connections, keyCount: body.pod.keyCount, keys: body.pod.keys } }, { key: 'room:1', podId: 'pod-a', url: '/ws/pod-a/connect?key=room:1', pod: { podId: 'pod-a', connections: 4, keyCount: 2, keys: ['room-2', 'room:1'] } }, path);
    }
    const orphan = (await (await fetch(`${gw.admin}/api/keys/orphan`)).json()) as { podId: string; pod: unknown };
    assert.deepEqual(orphan, { key: 'orphan', podId: 'pod-gone', url: '/ws/pod-gone/connect?key=orphan', pod: null }, 'an owner that is not live: pod null');
  });

  test('no owner: 404 key_not_found; hostile keys: 400 invalid_key; one registry round trip per lookup, no command for an invalid key', async () => {
    assert.deepEqual(await ask(gw.admin, '/api/keys/room-9'), { status: 404, error: 'key_not_found' });
    const hostile = ['/api/keys/', `/api/keys/${'k'.repeat(129)}`, '/api/keys/a%2Fb', '/api/keys/a/b', '/api/keys/a%20b', '/api/keys/a+b', '/api/keys/%ZZ', '/api/keys/%00', '/api/keys/%C3%A9t%C3%A9', '/api/keys/%2E%2E%2Fetc', '/api/keys/room%2', `/api/keys/${'%41'.repeat(200)}`];
    const before = await commandsExecuted(probe);
    for (const path of hostile) assert.deepEqual(await ask(gw.admin, path), { status: 400, error: 'invalid_key' }, path);
    assert.equal((await commandsExecuted(probe)) - before, 0, 'an invalid key never reaches the registry');
    assert.equal((await ask(gw.admin, `/api/keys/${'k'.repeat(128)}`)).error, 'key_not_found', '128 characters is a key');
    const start = await commandsExecuted(probe, 'eval');
    for (let i = 0; i < 10; i++) assert.equal((await fetch(`${gw.admin}/api/keys/room-2`)).status, 200);
    const spent = (await commandsExecuted(probe, 'eval')) - start;
    assert.equal(spent, 10, `${spent} registry round trips (EVAL) for 10 lookups`);
    const head = await fetch(`${gw.admin}/api/keys/room-2`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), '');
    assert.equal((await ask(gw.admin, '/api/keys/room-2', 'POST')).status, 405);
  });
});

test('a busy GATEWAY_ADMIN_PORT fails start-up and releases the client-facing port', async () => {
  const blocker = http.createServer().listen(0, '127.0.0.1');
  await once(blocker, 'listening');
  const busy = (blocker.address() as AddressInfo).port;
  const port = await freePort();
  try {
    await assert.rejects(startGateway({ GATEWAY_PORT: String(port), GATEWAY_ADMIN_PORT: String(busy) }), /EADDRINUSE/);
    // The client-facing port was bound first; it must be free again.
    const again = http.createServer().listen(port, '127.0.0.1');
    await once(again, 'listening');
    again.close();
  } finally {
    blocker.close();
  }
});
