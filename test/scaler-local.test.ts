/**
 * The local workload end to end with real socket nodes (uWebSockets.js) and real `ws` clients: start
 * SOCKET_MIN_REPLICAS nodes, scale out on connections, scale in by removing the pod the ReplicaSet
 * ranking picks with deletion costs (not the newest; placement keys weigh in), drained through GET /drain on its admin port.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { createMemoryRegistry } from '../src/registry/memory.js';
import type { Registry } from '../src/registry/registry.js';
import { start, type ScalerHandle } from '../scaler/index.js';
import { createLocalWorkload, type LocalWorkload } from '../scaler/workload/local.js';
import { scalerTestConfig } from './support/scaler-session.js';
import { captureLogs } from './support/logs.js';

const localConfig = () =>
  scalerTestConfig({
    scalerWorkload: 'local',
    socketTargetConnections: 3,
    socketMinReplicas: 2,
    socketMaxReplicas: 5,
    heartbeatMs: 100,
    drainWindowMs: 100,
    drainTimeoutMs: 5000,
  });

interface Conn {
  ws: WebSocket;
  messages: Array<Record<string, unknown>>;
  closed: Promise<number>;
}

async function connect(port: number): Promise<Conn> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws/connect`);
  const messages: Conn['messages'] = [];
  ws.on('message', (data, binary) => {
    if (!binary) messages.push(JSON.parse(String(data)) as Record<string, unknown>);
  });
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { ws, messages, closed };
}

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Wait until the registry shows these live connection counts. */
async function registryShows(registry: Registry, want: Record<string, number>): Promise<void> {
  await waitFor(async () => {
    const live = Object.fromEntries((await registry.list()).map((p) => [p.podId, p.connections]));
    return Object.entries(want).every(([k, v]) => live[k] === v);
  }, 5000, `registry counts ${JSON.stringify(want)}`);
}

/** Runs `body` with a memory registry and a started local-workload scaler, then closes connections, scaler and registry. */
async function withLocalScaler(body: (s: { registry: Registry; logs: ReturnType<typeof captureLogs>; conns: Conn[]; scaler: ScalerHandle; workload: LocalWorkload }) => Promise<void>): Promise<void> {
  const registry = createMemoryRegistry();
  const logs = captureLogs();
  const conns: Conn[] = [];
  let scaler: ScalerHandle | undefined;
  try {
    scaler = await start(localConfig(), { logger: logs.logger, registry, admin: false });
    await body({ registry, logs, conns, scaler, workload: scaler.workload as LocalWorkload });
  } finally {
    for (const conn of conns) conn.ws.terminate();
    await scaler?.close();
    await registry.close();
  }
}

test('local workload: min nodes at start, scale-out on load, scale-in drains the least-loaded pod (not the newest) via /drain', () =>
  withLocalScaler(async ({ registry, logs, conns, scaler, workload }) => {
    assert.equal(workload.kind, 'local');
    let pods = workload.pods();
    assert.equal(pods.length, 2);
    for (const p of pods) {
      assert.match(p.name, /^socket-[a-z0-9]{5}$/);
      assert.equal(p.podId, p.name);
      assert.equal(p.ip, '127.0.0.1');
      assert.ok(p.port > 0 && p.adminPort > 0 && p.port !== p.adminPort);
      assert.equal(p.ready, true);
      assert.equal(p.deletionCost, undefined);
      assert.ok(p.createdAt > 0);
    }
    const [a, b] = pods;
    await registryShows(registry, { [a!.name]: 0, [b!.name]: 0 });

    // 7 connections at 3 per pod: 3 pods.
    for (let i = 0; i < 6; i++) conns.push(await connect(a!.port));
    conns.push(await connect(b!.port));
    await registryShows(registry, { [a!.name]: 6, [b!.name]: 1 });
    await scaler.tick();
    pods = workload.pods();
    assert.equal(pods.length, 3);
    assert.ok(logs.messages().includes('Scaling Deployment socket from 2 to 3 replicas'));
    assert.ok(logs.messages().includes('✓ Successfully scaled Deployment socket to 3 replicas'));
    const c = pods.find((p) => p.name !== a!.name && p.name !== b!.name)!;
    assert.equal(c.ready, true);

    // Load drops to 5: a keeps 2, b keeps 1, the newest pod c gets 2. Desired 2: b (1 connection) must go,
    // although the default ranking (no costs) would remove the newest pod, c.
    for (const conn of conns.splice(0, 4)) conn.ws.close();
    const bConn = conns.pop()!;
    conns.push(bConn);
    conns.push(await connect(c.port), await connect(c.port));
    await registryShows(registry, { [a!.name]: 2, [b!.name]: 1, [c.name]: 2 });
    await scaler.tick();

    assert.equal(workload.desiredReplicas, 2);
    assert.ok(logs.messages().includes('Scaling Deployment socket from 3 to 2 replicas'));
    assert.ok(logs.messages().includes('✓ Successfully scaled Deployment socket to 2 replicas'));
    assert.deepEqual(
      Object.fromEntries(workload.pods().filter((p) => p.name !== b!.name).map((p) => [p.name, p.deletionCost])),
      { [a!.name]: 2, [c.name]: 2 },
    );
    assert.ok(logs.messages().includes(`asked ${b!.name} to report NotReady before the scale-in`), 'the victim reported NotReady through its own /readyz state first');
    // b's client gets the drain notice and a 1012 close: the node was drained, then stopped.
    assert.equal(await bConn.closed, 1012);
    assert.ok(bConn.messages.some((m) => m.type === 'reconnect' && m.reason === 'draining'));
    await waitFor(() => workload.pods().length === 2, 5000, 'b to be removed');
    assert.deepEqual(workload.pods().map((p) => p.name).sort(), [a!.name, c.name].sort());
    assert.ok(logs.messages().some((m) => m === `removing pod ${b!.name}: GET /drain on its admin port`));
    assert.ok(logs.messages().some((m) => m === `pod ${b!.name} drained`));
    await waitFor(async () => !(await registry.list()).some((p) => p.podId === b!.name), 5000, 'b to leave the registry');

    await scaler.tick();
    assert.ok(logs.messages().some((m) => m.startsWith(`scale-in removed pod ${b!.name} with 1 connections: the cordoned pod, as intended`)));
    const events = await registry.recentEvents(100);
    assert.ok(events.some((e) => e.kind === 'pod-removed' && e.podId === b!.name));
    assert.ok(events.some((e) => e.kind === 'pod-added' && e.podId === c.name));
    assert.ok(events.some((e) => e.kind === 'victim' && e.podId === b!.name));
  }));

test('local workload with placement keys: the scale-in spares the pod whose rooms would move and removes the least disruptive one', () =>
  withLocalScaler(async ({ registry, logs, conns, scaler, workload }) => {
    const [a, b] = workload.pods();
    for (let i = 0; i < 4; i++) conns.push(await connect(a!.port));
    for (let i = 0; i < 3; i++) conns.push(await connect(b!.port));
    await registryShows(registry, { [a!.name]: 4, [b!.name]: 3 });
    await scaler.tick();
    const c = workload.pods().find((p) => p.name !== a!.name && p.name !== b!.name)!;
    assert.ok(c, 'scaled out to 3');

    // a: 3 connections; b: 1 connection but the owner of two rooms; c: 2 connections. 6 at 3 per pod: desired 2.
    // By connections alone b would go; with SCALER_KEY_WEIGHT=10 it costs 1 + 2 × 10 = 21, so c (2) goes.
    conns.shift()!.ws.close();
    for (const conn of conns.splice(4, 2)) conn.ws.close();
    conns.push(await connect(c.port), await connect(c.port));
    await registry.claim('room-1', b!.name, 600_000);
    await registry.claim('room-2', b!.name, 600_000);
    await registryShows(registry, { [a!.name]: 3, [b!.name]: 1, [c.name]: 2 });
    await scaler.tick();

    assert.equal(workload.desiredReplicas, 2);
    assert.deepEqual(Object.fromEntries(workload.pods().filter((p) => p.name !== c.name).map((p) => [p.name, p.deletionCost])), { [a!.name]: 3, [b!.name]: 21 });
    assert.ok(logs.messages().some((m) => m.startsWith(`cordoned pod ${c.name} (2 connections)`)), 'the pod without keys was cordoned');
    await waitFor(() => workload.pods().length === 2, 5000, 'c to be removed');
    assert.deepEqual(workload.pods().map((p) => p.name).sort(), [a!.name, b!.name].sort());
    assert.equal(await registry.ownerOf('room-1'), b!.name, 'the rooms never moved');
  }));

test('local workload passed in by the caller (dev): the scaler starts it, and leaves closing it to the caller', async () => {
  const registry = createMemoryRegistry();
  const logs = captureLogs();
  const config = localConfig();
  const workload = createLocalWorkload(config, { logger: logs.logger, registry });
  const scaler = await start(config, { logger: logs.logger, registry, workload, admin: false });
  try {
    assert.equal(workload.pods().length, 2, 'started by the scaler');
    await scaler.close();
    assert.equal(workload.pods().length, 2, 'still running after the scaler stopped');
    const port = workload.pods()[0]!.port;
    const conn = await connect(port);
    await workload.close();
    assert.equal(await conn.closed, 1012, 'closing the workload drains its nodes');
    assert.equal(workload.pods().length, 0);
  } finally {
    await scaler.close();
    await workload.close();
    await registry.close();
  }
});
