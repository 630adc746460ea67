/** A cordoned pod through the real socket node and gateway: no new assignments, pinned connects work, a retire request turns /readyz NotReady for a bounded time only. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import WebSocket from 'ws';
import { loadConfig } from '../src/config.js';
import { createMemoryRegistry } from '../src/registry/index.js';
import { start as startSocketNode, type SocketNodeHandle } from '../socket/index.js';
import { startGateway, waitFor } from './support/upstream.js';
import { captureLogs } from './support/logs.js';

const NOT_READY_MAX_MS = 1500;

async function node(name: string, registry: ReturnType<typeof createMemoryRegistry>): Promise<SocketNodeHandle> {
  const { logger } = captureLogs('warn');
  const cfg = loadConfig({ SOCKET_PORT: '0', ADMIN_PORT: '0', POD_IP: '127.0.0.1', POD_NAME: name, HEARTBEAT_MS: '200', SOCKET_NOT_READY_MAX_MS: String(NOT_READY_MAX_MS) }, 'socket');
  return startSocketNode(cfg, { logger, registry, host: '127.0.0.1' });
}

test('cordon: the gateway stops assigning the pod, pinned connects still work, /api/pods shows it, uncordon restores it', async () => {
  const registry = createMemoryRegistry();
  const a = await node('socket-cordon-a', registry);
  const b = await node('socket-cordon-b', registry);
  const gw = await startGateway({ HEARTBEAT_MS: '200' }, { registry });
  try {
    await registry.cordon('socket-cordon-a', {}, 60_000);
    // Heartbeats of the cordoned pod (which do not carry the mark) must not make the gateway forget it.
    await new Promise((r) => setTimeout(r, 500));
    for (let i = 0; i < 30; i++) {
      const assigned = (await (await fetch(`${gw.base}/ws/assign`)).json()) as { podId: string };
      assert.equal(assigned.podId, 'socket-cordon-b', `assignment ${i}`);
    }
    const pinned = new WebSocket(gw.ws('socket-cordon-a'));
    const [welcome] = await once(pinned, 'message');
    assert.equal((JSON.parse(String(welcome)) as { podId: string }).podId, 'socket-cordon-a', 'a pinned connect to a cordoned pod still works');
    pinned.close();
    const pods = (await (await fetch(`${gw.admin}/api/pods`)).json()) as { pods: Array<{ podId: string; cordoned: boolean }> };
    assert.deepEqual(pods.pods.map((p) => `${p.podId}:${p.cordoned}`), ['socket-cordon-a:true', 'socket-cordon-b:false']);
    assert.equal((await fetch(`http://127.0.0.1:${a.adminPort}/readyz`)).status, 200, 'cordoned alone does not fail readiness');

    await registry.uncordon('socket-cordon-a');
    await waitFor(async () => {
      const seen = new Set<string>();
      for (let i = 0; i < 20; i++) seen.add(((await (await fetch(`${gw.base}/ws/assign`)).json()) as { podId: string }).podId);
      return seen.has('socket-cordon-a');
    }, 3000);
  } finally {
    await gw.gateway.close();
    await a.close();
    await b.close();
    await registry.close();
  }
});

test('retire: /readyz answers 503 node_retiring at once, connects still work, and the pod is Ready again by itself after SOCKET_NOT_READY_MAX_MS', async () => {
  const registry = createMemoryRegistry();
  const a = await node('socket-retire-a', registry);
  const readyz = async () => {
    const r = await fetch(`http://127.0.0.1:${a.adminPort}/readyz`);
    return { status: r.status, body: (await r.json()) as { error?: string } };
  };
  try {
    assert.equal((await readyz()).status, 200);
    const t0 = Date.now();
    await registry.cordon('socket-retire-a', { retire: 'r1' }, 60_000);
    await waitFor(async () => (await readyz()).status === 503, 1000);
    assert.deepEqual((await readyz()).body.error, 'node_retiring');
    assert.equal(a.ready(), false);
    const health = (await (await fetch(`http://127.0.0.1:${a.adminPort}/healthz`)).json()) as { cordoned: boolean; retiring: boolean };
    assert.deepEqual([health.cordoned, health.retiring], [true, true]);
    const ws = new WebSocket(`ws://127.0.0.1:${a.port}/ws/connect`);
    const [welcome] = await once(ws, 'message');
    assert.equal((JSON.parse(String(welcome)) as { type: string }).type, 'welcome', 'a retiring pod still serves');
    ws.close();

    // Still marked (the scaler renews it), yet Ready again once the bound is over; the same request never restarts it.
    await waitFor(async () => (await readyz()).status === 200, NOT_READY_MAX_MS + 2000);
    assert.ok(Date.now() - t0 >= NOT_READY_MAX_MS - 50, `Ready again after ${Date.now() - t0} ms`);
    await registry.cordon('socket-retire-a', { retire: 'r1' }, 60_000);
    await new Promise((r) => setTimeout(r, 400));
    assert.equal((await readyz()).status, 200, 'a renewed mark with the same request does not restart the bound');

    // A new request starts a new bound; withdrawing it (uncordon) makes the pod Ready at once.
    await registry.cordon('socket-retire-a', { retire: 'r2' }, 60_000);
    await waitFor(async () => (await readyz()).status === 503, 1000);
    await registry.uncordon('socket-retire-a');
    await waitFor(async () => (await readyz()).status === 200, 1000);
    assert.equal(a.ready(), true);
  } finally {
    await a.close();
    await registry.close();
  }
});
