/**
 * Resolvers and the registry view: the `registry` resolver through a real Redis outage (stale view, then
 * 503), `endpointslices` through the real @kubernetes/client-node informer against a fake API server,
 * and `dns` with the real resolver and an injected one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KubeConfig } from '@kubernetes/client-node';
import { createRedisRegistry } from '../src/registry/index.js';
import { startRedis } from './support/redis.js';
import { startFakeEndpointSlices, slice } from './support/fake-endpointslices.js';
import { pod, startGateway, startRawUpstream, startWsUpstream, upgradeOutcome, upgradeRequest, waitFor, type TestGateway } from './support/upstream.js';

function statusOf(gw: TestGateway, podId: string): Promise<{ status: number; error?: string }> {
  return upgradeOutcome(gw.gateway.port, upgradeRequest(`/ws/${podId}/connect`));
}

test('registry outage: the last known view is served for GATEWAY_REGISTRY_STALE_MS, then 503 registry_unavailable; logged once per change', async () => {
  const redis = await startRedis();
  const up = await startWsUpstream({ hello: 'hi' });
  const registry = createRedisRegistry({ url: redis.url, prefix: `gw-test-${process.pid}:`, maxBackoffMs: 100 });
  const writer = createRedisRegistry({ url: redis.url, prefix: `gw-test-${process.pid}:`, maxBackoffMs: 100 });
  // Stale for 5 s: the checks inside the window must not run out of it on a loaded machine.
  const gw = await startGateway({ GATEWAY_REGISTRY_STALE_MS: '5000', HEARTBEAT_MS: '100' }, { registry });
  const beat = () => writer.heartbeat(pod('p', up.port, { heartbeatMs: 100, updatedAt: Date.now() })).catch(() => undefined);
  const beating = setInterval(beat, 100);
  try {
    await beat();
    await waitFor(async () => (await statusOf(gw, 'p')).status === 101);
    // Counted from the outage on: a slow first connect may log a start-up 'unavailable' and 'fresh' of its own.
    const before = gw.lines.length;
    await redis.stop();
    // Longer than the pod's own liveness (3 × 100 ms): still routed, from the frozen view.
    await new Promise((r) => setTimeout(r, 600));
    assert.equal((await statusOf(gw, 'p')).status, 101);
    assert.equal((await fetch(`${gw.base}/ws/assign`)).status, 200);
    assert.equal((await statusOf(gw, 'nope')).status, 404);
    await waitFor(async () => (await statusOf(gw, 'p')).error === 'registry_unavailable', 15_000, 100);
    const assign = await fetch(`${gw.base}/ws/assign`);
    assert.equal(assign.status, 503);
    assert.equal(((await assign.json()) as { error: string }).error, 'registry_unavailable');
    const m = await (await fetch(`${gw.admin}/metrics`)).text();
    assert.match(m, /rtc_gateway_registry_state\{[^}]*\} 2/);
    await redis.start();
    await waitFor(async () => (await statusOf(gw, 'p')).status === 101, 10_000, 100);
    const msgs = gw.lines.slice(before).map((l) => String(l.msg));
    const countOf = (re: RegExp) => msgs.filter((x) => re.test(x)).length;
    assert.equal(countOf(/serving the last known view/), 1, msgs.join('\n'));
    assert.equal(countOf(/answering 503 registry_unavailable/), 1, msgs.join('\n'));
    assert.equal(countOf(/view fresh/), 1, msgs.join('\n'));
  } finally {
    clearInterval(beating);
    await gw.gateway.close();
    await registry.close();
    await writer.close();
    await up.close();
    await redis.stop();
  }
});

test('registry down at start-up: 503 registry_unavailable logged as a start-up, the error only past GATEWAY_REGISTRY_STALE_MS, then fresh', async () => {
  const redis = await startRedis();
  await redis.stop();
  const up = await startWsUpstream({ hello: 'hi' });
  const prefix = `gw-start-${process.pid}:`;
  const registry = createRedisRegistry({ url: redis.url, prefix, maxBackoffMs: 100 });
  const staleMs = 2000;
  const t0 = Date.now();
  const gw = await startGateway({ GATEWAY_REGISTRY_STALE_MS: String(staleMs), HEARTBEAT_MS: '100' }, { registry });
  let writer: ReturnType<typeof createRedisRegistry> | undefined;
  let beating: NodeJS.Timeout | undefined;
  const msgs = () => gw.lines.map((l) => String(l.msg));
  const countOf = (re: RegExp) => msgs().filter((x) => re.test(x)).length;
  try {
    const early = await statusOf(gw, 'p');
    assert.equal(early.error, 'registry_unavailable');
    assert.equal((await fetch(`${gw.base}/ws/assign`)).status, 503);
    if (Date.now() - t0 < staleMs - 500) {
      // Inside the window: a start-up line, and no error yet.
      assert.equal(countOf(/no registry sync yet/), 1, msgs().join('\n'));
      assert.equal(countOf(/too long|since start-up/), 0, msgs().join('\n'));
    }
    // Past the window with still no sync: one error naming start-up (not an outage of a registry that was seen).
    await waitFor(async () => countOf(/no registry sync since start-up/) === 1, 10_000, 100);
    assert.equal(countOf(/unavailable too long/), 0, msgs().join('\n'));
    await redis.start();
    writer = createRedisRegistry({ url: redis.url, prefix, maxBackoffMs: 100 });
    const w = writer;
    const beat = () => w.heartbeat(pod('p', up.port, { heartbeatMs: 100, updatedAt: Date.now() })).catch(() => undefined);
    beating = setInterval(beat, 100);
    await waitFor(async () => (await statusOf(gw, 'p')).status === 101, 15_000, 100);
    assert.equal(countOf(/view fresh/), 1, msgs().join('\n'));
    assert.equal(countOf(/no registry sync since start-up/), 1, msgs().join('\n'));
  } finally {
    if (beating) clearInterval(beating);
    await gw.gateway.close();
    await registry.close();
    await writer?.close();
    await up.close();
    await redis.stop();
  }
});

test('endpointslices: targetRef.name → address via the real informer; terminating → 503, other Services ignored, deleted → 404; API outage → stale, then 503', async () => {
  const api = await startFakeEndpointSlices('rtc');
  const up = await startWsUpstream({ hello: 'hi' });
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(api.kubeconfig);
  api.upsert(slice('socket-abc', 'socket', up.port, [{ name: 'pod-a', ip: '127.0.0.1' }, { name: 'pod-b', ip: '127.0.0.1', ready: false }]));
  api.upsert(slice('other-xyz', 'other', up.port, [{ name: 'pod-x', ip: '127.0.0.1' }]));
  const gw = await startGateway({ GATEWAY_RESOLVER: 'endpointslices', SOCKET_SERVICE_NAME: 'socket', POD_NAMESPACE: 'rtc', GATEWAY_REGISTRY_STALE_MS: '1000' }, { kubeConfig });
  try {
    assert.equal((await statusOf(gw, 'pod-a')).status, 101);
    assert.deepEqual(await statusOf(gw, 'pod-b'), { status: 503, error: 'pod_draining' });
    assert.deepEqual(await statusOf(gw, 'pod-x'), { status: 404, error: 'pod_not_found' });
    assert.deepEqual(await statusOf(gw, 'pod-z'), { status: 404, error: 'pod_not_found' });
    assert.ok(api.requests.some((r) => r.includes('labelSelector=kubernetes.io%2Fservice-name%3Dsocket') && !r.includes('watch=true')), api.requests.join('\n'));
    assert.ok(api.requests.some((r) => r.includes('watch=true')), 'no watch');

    // A watch event: pod-a starts terminating.
    api.upsert(slice('socket-abc', 'socket', up.port, [{ name: 'pod-a', ip: '127.0.0.1', ready: false, serving: true, terminating: true }, { name: 'pod-c', ip: '127.0.0.1' }]));
    await waitFor(async () => (await statusOf(gw, 'pod-a')).status === 503);
    assert.equal((await statusOf(gw, 'pod-c')).status, 101);
    api.remove('socket-abc');
    await waitFor(async () => (await statusOf(gw, 'pod-c')).status === 404);

    // API outage: keep the last view for the stale window, then 503.
    api.upsert(slice('socket-def', 'socket', up.port, [{ name: 'pod-d', ip: '127.0.0.1' }]));
    await waitFor(async () => (await statusOf(gw, 'pod-d')).status === 101);
    api.fail();
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await statusOf(gw, 'pod-d')).status, 101);
    await waitFor(async () => (await statusOf(gw, 'pod-d')).error === 'registry_unavailable', 5000, 100);
    api.recover();
    await waitFor(async () => (await statusOf(gw, 'pod-d')).status === 101, 15_000, 100);
  } finally {
    await gw.gateway.close();
    await api.close();
    await up.close();
  }
});

test('dns: the nginx template with the real resolver; NXDOMAIN → 404, a slow resolver → 504', async () => {
  const up = await startWsUpstream({ hello: 'hi' });
  const real = await startGateway({ GATEWAY_RESOLVER: 'dns', GATEWAY_DNS_TEMPLATE: `{podId}:${up.port}` });
  try {
    assert.equal((await statusOf(real, 'localhost')).status, 101);
  } finally {
    await real.gateway.close();
  }
  const lookups: string[] = [];
  const fake = await startGateway(
    { GATEWAY_RESOLVER: 'dns', GATEWAY_DNS_TEMPLATE: `{podId}.socket.rtc.svc.cluster.local:${up.port}`, GATEWAY_UPSTREAM_TIMEOUT_MS: '200' },
    {
      lookup: async (host) => {
        lookups.push(host);
        if (host.startsWith('known.')) return { address: '127.0.0.1', family: 4 };
        if (host.startsWith('slow.')) return new Promise(() => undefined);
        throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
      },
    },
  );
  try {
    assert.equal((await statusOf(fake, 'known')).status, 101);
    assert.deepEqual(await statusOf(fake, 'gone'), { status: 404, error: 'pod_not_found' });
    assert.deepEqual(await statusOf(fake, 'slow'), { status: 504, error: 'upstream_timeout' });
    assert.ok(lookups.includes('known.socket.rtc.svc.cluster.local'));
  } finally {
    await fake.gateway.close();
    await up.close();
  }
});

test('GATEWAY_POD_CIDRS: an address outside the list is never dialed, whichever resolver produced it; 502 pod_address_forbidden, logged once', async () => {
  const raw = await startRawUpstream('open-after-101');
  const api = await startFakeEndpointSlices('rtc');
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(api.kubeconfig);
  api.upsert(slice('socket-abc', 'socket', raw.port, [{ name: 'pod-a', ip: '127.0.0.1' }]));
  const outside = { GATEWAY_POD_CIDRS: '10.0.0.0/8, fd00::/8' };
  const gateways = [
    await startGateway(outside),
    await startGateway({ ...outside, GATEWAY_RESOLVER: 'dns', GATEWAY_DNS_TEMPLATE: `{podId}.socket.rtc.svc.cluster.local:${raw.port}` }, { lookup: async () => ({ address: '127.0.0.1', family: 4 }) }),
    await startGateway({ ...outside, GATEWAY_RESOLVER: 'endpointslices', SOCKET_SERVICE_NAME: 'socket', POD_NAMESPACE: 'rtc' }, { kubeConfig }),
  ];
  await gateways[0]!.registry.heartbeat(pod('pod-a', raw.port));
  const up = await startWsUpstream({ hello: 'hi' });
  const inside = await startGateway({ GATEWAY_POD_CIDRS: '10.0.0.0/8,127.0.0.1' });
  await inside.registry.heartbeat(pod('pod-a', up.port));
  try {
    for (const gw of gateways) {
      for (let i = 0; i < 3; i++) assert.deepEqual(await statusOf(gw, 'pod-a'), { status: 502, error: 'pod_address_forbidden' }, gw.config.gatewayResolver);
      const refusals = gw.lines.filter((l) => /outside GATEWAY_POD_CIDRS/.test(String(l.msg)));
      assert.equal(refusals.length, 1, `${gw.config.gatewayResolver}: logged once per pod and address`);
      assert.equal(refusals[0]!.podId, 'pod-a');
      assert.equal(refusals[0]!.address, '127.0.0.1');
    }
    assert.equal(raw.accepted(), 0, 'no resolver dialed the address outside the list');
    assert.equal((await statusOf(inside, 'pod-a')).status, 101, 'an address in the list is dialed');
  } finally {
    for (const gw of [...gateways, inside]) await gw.gateway.close();
    await api.close();
    await up.close();
    await raw.close();
  }
});

test('GATEWAY_POD_CIDRS: /ws/assign never hands out a pod whose address is outside the list, keyed or not, HEAD included', async () => {
  const gw = await startGateway({ GATEWAY_POD_CIDRS: '10.0.0.0/8,127.0.0.1', GATEWAY_ASSIGN_STRATEGY: 'spread' });
  const assign = async (query = '', method = 'GET') => {
    const r = await fetch(`${gw.base}/ws/assign${query}`, { method });
    return { status: r.status, body: method === 'HEAD' ? {} : ((await r.json()) as { podId?: string; error?: string }) };
  };
  const listed = async (id: string) => ((await (await fetch(`${gw.admin}/api/pods`)).json()) as { pods: { podId: string }[] }).pods.some((p) => p.podId === id);
  try {
    // The outside pod is the emptiest, so either strategy would pick it first.
    await gw.registry.heartbeat(pod('pod-out', 8080, { ip: '192.0.2.10', connections: 0 }));
    await waitFor(() => listed('pod-out'));
    const none = await assign();
    assert.deepEqual([none.status, none.body.error], [503, 'no_pods_available'], 'only a pod outside the list: none to hand out');
    assert.equal((await assign('', 'HEAD')).status, 503);
    assert.equal((await assign('?key=room-1')).status, 503);
    await gw.registry.heartbeat(pod('pod-in', 8080, { connections: 100 }));
    await waitFor(() => listed('pod-in'));
    const picked = new Set<string | undefined>();
    for (let i = 0; i < 20; i++) picked.add((await assign()).body.podId);
    for (let i = 0; i < 5; i++) picked.add((await assign(`?key=room-${i}`)).body.podId);
    assert.deepEqual([...picked], ['pod-in']);
  } finally {
    await gw.gateway.close();
  }
});
