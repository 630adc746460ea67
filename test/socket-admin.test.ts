/** Admin port: health, readiness, metrics, routing, and the drain contract (idempotent, registry first, 503s). */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, refusedUpgrade, startNode, waitFor, type TestNode } from './socket-support.js';
import { freePort } from './support/net.js';

describe('admin endpoints', () => {
  let t: TestNode;
  before(async () => {
    t = await startNode();
  });
  after(async () => {
    await t.node.close();
  });

  test('healthz and readyz answer 200 with the node state', async () => {
    const c = await Client.open(t.url);
    const h = await fetch(`${t.admin}/healthz`);
    assert.equal(h.status, 200);
    assert.deepEqual(await h.json(), { status: 'ok', podId: t.node.podId, connections: 1, draining: false, cordoned: false, retiring: false, registry: 'ready' });
    const r = await fetch(`${t.admin}/readyz`);
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { ready: true, podId: t.node.podId });
    await c.end();
  });

  test('metrics are Prometheus text with the live connection count and heartbeat counters', async () => {
    const cs = await Promise.all([1, 2].map(() => Client.open(t.url)));
    const res = await fetch(`${t.admin}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
    const text = await res.text();
    assert.match(text, /^rtc_socket_connections\{role="socket"\} 2$/m);
    assert.match(text, /^rtc_socket_draining\{role="socket"\} 0$/m);
    assert.match(text, /^rtc_socket_heartbeats_total\{result="ok",role="socket"\} [1-9]/m);
    assert.match(text, /^rtc_socket_registry_up\{role="socket"\} 1$/m);
    await Promise.all(cs.map((c) => c.end()));
  });

  test('unknown paths are 404 not_found and wrong methods 405 with Allow', async () => {
    const nf = await fetch(`${t.admin}/ws/connect`);
    assert.equal(nf.status, 404);
    assert.deepEqual(await nf.json(), { error: 'not_found', message: 'no such route' });
    const put = await fetch(`${t.admin}/drain`, { method: 'PUT' });
    assert.equal(put.status, 405);
    assert.equal(put.headers.get('allow'), 'GET, POST');
    assert.equal(((await put.json()) as { error: string }).error, 'method_not_allowed');
    const post = await fetch(`${t.admin}/healthz`, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal((await (await fetch(`${t.admin}/readyz`)).json() as { ready: boolean }).ready, true, 'nothing above started a drain');
  });
});

describe('drain contract', () => {
  test('registry shows draining at once, readiness and upgrades fail, every caller gets the same answer', async () => {
    // A long heartbeat: only the drain's immediate beat can put draining=true in the registry quickly.
    const t = await startNode({ HEARTBEAT_MS: '10000', DRAIN_WINDOW_MS: '1500' });
    try {
      const clients = await Promise.all(Array.from({ length: 5 }, () => Client.open(t.url)));
      await Promise.all(clients.map((c) => c.json()));
      assert.equal((await t.registry.get(t.node.podId))?.draining, false);

      const t0 = Date.now();
      const first = fetch(`${t.admin}/drain`).then(async (r) => ({ status: r.status, body: await r.json() }));
      const inRegistry = await waitFor(async () => (await t.registry.get(t.node.podId))?.draining, 1000, 5);
      assert.equal(inRegistry, true);
      assert.ok(Date.now() - t0 < 1000, 'draining visible in the registry well before the next heartbeat');

      const second = fetch(`${t.admin}/drain`, { method: 'POST' }).then(async (r) => ({ status: r.status, body: await r.json() }));
      const viaHandle = t.node.drain();
      assert.equal(t.node.drain(), viaHandle, 'drain() returns the one drain promise');

      const ready = await fetch(`${t.admin}/readyz`);
      assert.equal(ready.status, 503);
      assert.equal(((await ready.json()) as { error: string }).error, 'node_draining');
      const health = await fetch(`${t.admin}/healthz`);
      assert.equal(health.status, 200, 'liveness stays up while draining');
      assert.equal(((await health.json()) as { draining: boolean }).draining, true);
      const refused = await refusedUpgrade(t.url);
      assert.equal(refused.status, 503);
      assert.equal(refused.body.error, 'node_draining');
      assert.match(String(refused.headers['retry-after']), /^\d+$/);

      const [a, b, c] = await Promise.all([first, second, viaHandle]);
      assert.deepEqual(a, { status: 200, body: { drained: 5, remaining: 0 } });
      assert.deepEqual(b, a);
      assert.deepEqual(c, a.body);
      const again = await fetch(`${t.admin}/drain`);
      assert.deepEqual(await again.json(), a.body, 'a drain after the drain answers at once with the same counts');

      for (const client of clients) {
        const notice = await client.json();
        assert.equal(notice.type, 'reconnect');
        assert.equal(notice.reason, 'draining');
        assert.equal(notice.assignUrl, '/ws/assign');
        assert.ok(Number.isInteger(notice.retryAfterMs) && (notice.retryAfterMs as number) >= 250 && (notice.retryAfterMs as number) < 2250);
        assert.equal((await client.closed).code, 1012);
      }
      const events = await t.registry.recentEvents();
      assert.ok(events.some((e) => e.kind === 'drain-start' && e.podId === t.node.podId));
      assert.ok(events.some((e) => e.kind === 'drain-done' && e.podId === t.node.podId));
      assert.equal(t.lines.filter((l) => l.msg === 'drain started').length, 1);
    } finally {
      await t.node.close();
    }
  });

  test('close() without a prior drain drains (notice + 1012) and removes the registry entry; it is idempotent', async () => {
    const t = await startNode({ DRAIN_WINDOW_MS: '100' });
    const c = await Client.open(t.url);
    await c.json();
    assert.ok(await t.registry.get(t.node.podId));
    const p1 = t.node.close();
    const p2 = t.node.close();
    assert.equal(p1, p2);
    await p1;
    assert.equal((await c.json()).type, 'reconnect');
    assert.equal((await c.closed).code, 1012);
    assert.equal(await t.registry.get(t.node.podId), undefined);
    assert.equal((await t.registry.list()).length, 0);
    await assert.rejects(fetch(`${t.admin}/healthz`), 'admin listen socket closed');
    await assert.rejects(Client.open(t.url), 'WebSocket listen socket closed');
  });
});

describe('listening', () => {
  test('a second node on the port another node listens on fails to start, naming the port, instead of sharing it (no SO_REUSEPORT)', async () => {
    // Explicit ports, as a kubelet or SOCKET_PORT gives them (uSockets sets SO_REUSEPORT only on those).
    const [port, adminPort] = [await freePort(), await freePort()];
    const a = await startNode({ SOCKET_PORT: String(port), ADMIN_PORT: String(adminPort) });
    try {
      await assert.rejects(startNode({ SOCKET_PORT: String(port) }), new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port} \\(port in use`));
      await assert.rejects(startNode({ ADMIN_PORT: String(adminPort) }), new RegExp(`cannot listen on 127\\.0\\.0\\.1:${adminPort} \\(port in use`));
      // The first node still holds both ports and answers.
      assert.equal((await fetch(`${a.admin}/healthz`)).status, 200);
      const c = await Client.open(a.url);
      await c.end();
    } finally {
      await a.node.close();
    }
  });
});
