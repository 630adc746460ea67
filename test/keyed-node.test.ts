/**
 * Keyed placement around the edges, on two real socket nodes and a real gateway sharing one memory registry:
 * cordoned pods keep their keys but claim no new ones, HEAD claims nothing, and the sessions of a key another pod
 * took meanwhile are told to reconnect (reason `key_moved`); and, on a real redis-server that goes away, a keyed
 * connect is still admitted and the claim is settled when Redis is back.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createMemoryRegistry, createRedisRegistry } from '../src/registry/index.js';
import { startRedis } from './support/redis.js';
import { Client, refusedUpgrade, startNode, waitFor, type TestNode } from './socket-support.js';
import { startGateway, type TestGateway } from './support/upstream.js';

const HB = '200';
const registry = createMemoryRegistry();
let a: TestNode;
let b: TestNode;
let gw: TestGateway;

before(async () => {
  [a, b] = await Promise.all([0, 1].map(() => startNode({ HEARTBEAT_MS: HB, SOCKET_KEY_GRACE_MS: '200' }, { registry })));
  gw = await startGateway({ HEARTBEAT_MS: HB, GATEWAY_ASSIGN_STRATEGY: 'spread' }, { registry });
  await waitFor(async () => ((await (await fetch(`${gw.admin}/api/pods`)).json()) as { pods: unknown[] }).pods.length === 2);
});
after(async () => {
  await gw.gateway.close();
  await Promise.all([a.node.close(), b.node.close()]);
  await registry.close();
});

const assign = async (key: string, method = 'GET') => {
  const res = await fetch(`${gw.base}/ws/assign?key=${key}`, { method });
  return method === 'HEAD' ? { podId: res.status === 200 ? 'ok' : String(res.status), url: '' } : ((await res.json()) as { podId: string; url: string });
};

test('a cordoned pod keeps its keys but claims no new ones; HEAD claims nothing', async () => {
  const kept = await assign('kept');
  const owner = kept.podId === a.node.podId ? a : b;
  const other = owner === a ? b : a;
  const ws = await Client.open(`${gw.base.replace('http', 'ws')}${kept.url}`);
  assert.equal((await ws.json()).podId, owner.node.podId);
  await registry.cordon(owner.node.podId, {}, 60_000);
  await waitFor(async () => ((await (await fetch(`${owner.admin}/healthz`)).json()) as { cordoned: boolean }).cordoned);
  await waitFor(async () => ((await (await fetch(`${gw.admin}/api/pods`)).json()) as { pods: { cordoned: boolean }[] }).pods.some((p) => p.cordoned));
  try {
    assert.equal((await assign('kept')).podId, owner.node.podId, 'the owner keeps its key while cordoned');
    for (let i = 0; i < 10; i++) assert.equal((await assign(`new-${i}`)).podId, other.node.podId, `new-${i} is never claimed by the cordoned pod`);
    const refused = await refusedUpgrade(gw.ws(owner.node.podId, 'key=fresh'));
    assert.equal(refused.status, 409);
    assert.deepEqual([refused.body.error, refused.body.podId, refused.body.url, refused.body.assignUrl], ['key_moved', null, null, '/ws/assign?key=fresh'], 'a direct connect does not claim a new key on a cordoned pod');
    assert.equal(await registry.ownerOf('fresh'), undefined);
    const second = await Client.open(gw.ws(owner.node.podId, 'key=kept'));
    assert.equal((await second.json()).podId, owner.node.podId, 'a connect for a key it owns still works');
    await second.end();
    assert.equal((await assign('head-only', 'HEAD')).podId, 'ok');
    assert.equal(await registry.ownerOf('head-only'), undefined, 'HEAD answers like GET and claims nothing');
  } finally {
    await registry.uncordon(owner.node.podId);
    await ws.end();
  }
});

test('a key another pod took meanwhile: its sessions here get reconnect (key_moved) and close 1012, and the claim is not taken back', async () => {
  const ws = await Client.open(gw.ws(a.node.podId, 'key=stolen'));
  assert.equal((await ws.json()).podId, a.node.podId);
  assert.equal(await registry.ownerOf('stolen'), a.node.podId, 'the node claimed the free key at connect');
  // What a lost claim looks like to the node (a registry that forgot it during a failover, another pod took it).
  assert.equal(await registry.claim('stolen', b.node.podId, 60_000, a.node.podId), b.node.podId);
  const notice = await ws.json(Number(HB) * 5);
  assert.deepEqual({ ...notice, retryAfterMs: typeof notice.retryAfterMs }, { type: 'reconnect', reason: 'key_moved', retryAfterMs: 'number', assignUrl: '/ws/assign?key=stolen' });
  assert.equal((await ws.closed).code, 1012);
  assert.equal(await registry.ownerOf('stolen'), b.node.podId);
  assert.equal((await assign('stolen')).podId, b.node.podId, 'the next assign meets the new owner');
});

test('a registry that fails never stops a keyed connect: admitted, and the renewal claims the key once Redis is back', async (t) => {
  const redis = await startRedis();
  const observer = createRedisRegistry({ url: redis.url, prefix: 'kn:' });
  const n = await startNode({ HEARTBEAT_MS: HB, REDIS_URL: redis.url, REDIS_PREFIX: 'kn:' });
  t.after(async () => {
    await n.node.close();
    await observer.close();
    await redis.stop();
  });
  await redis.stop();
  const ws = await Client.open(`${n.url}?key=outage-room`);
  assert.equal((await ws.json()).podId, n.node.podId, 'admitted while Redis is down');
  await redis.start();
  await waitFor(async () => (await observer.ownerOf('outage-room')) === n.node.podId, 10_000);
  assert.ok(n.lines.some((l) => String(l.msg).startsWith('keyed placement: registry claim failed')), 'the outage is logged');
  await ws.end();
});
