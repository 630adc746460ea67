/** End to end through the real uWebSockets.js socket node: assign, pinned connect, ping/pong, drain → 503, hostile paths never reach the node's admin side. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import WebSocket from 'ws';
import { loadConfig } from '../src/config.js';
import { CloseCode } from '../src/constants.js';
import { createMemoryRegistry } from '../src/registry/index.js';
import { start as startSocketNode } from '../socket/index.js';
import { rawExchange, startGateway, upgradeOutcome, upgradeRequest, upgradeStatus, waitFor } from './support/upstream.js';
import { captureLogs } from './support/logs.js';

function metric(text: string, name: string): number {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

test('through the real socket node: assign, welcome, ping/pong, hostile paths, draining pod → 503', async () => {
  const registry = createMemoryRegistry();
  const { logger } = captureLogs('warn');
  const nodeConfig = loadConfig({ SOCKET_PORT: '0', ADMIN_PORT: '0', POD_IP: '127.0.0.1', POD_NAME: 'socket-e2e-1', DRAIN_WINDOW_MS: '100', HEARTBEAT_MS: '200' }, 'socket');
  const node = await startSocketNode(nodeConfig, { logger, registry, host: '127.0.0.1' });
  const gw = await startGateway({ HEARTBEAT_MS: '200' }, { registry });
  const admin = `http://127.0.0.1:${node.adminPort}`;
  try {
    await waitFor(async () => (await fetch(`${gw.base}/ws/assign`)).status === 200);
    const assigned = (await (await fetch(`${gw.base}/ws/assign`)).json()) as { podId: string; url: string };
    assert.deepEqual(assigned, { podId: 'socket-e2e-1', url: '/ws/socket-e2e-1/connect' });

    const ws = new WebSocket(`ws://127.0.0.1:${gw.gateway.port}${assigned.url}?room=a`);
    const [welcome] = await once(ws, 'message');
    const w = JSON.parse(String(welcome)) as { type: string; podId: string };
    assert.equal(w.type, 'welcome');
    assert.equal(w.podId, 'socket-e2e-1');
    ws.send(JSON.stringify({ type: 'ping', t: 12345 }));
    const [pong] = await once(ws, 'message');
    assert.deepEqual(JSON.parse(String(pong)), { type: 'pong', t: 12345 });
    ws.send('not json');
    const [err] = await once(ws, 'message');
    assert.equal((JSON.parse(String(err)) as { error: string }).error, 'invalid_json');

    const before = await (await fetch(`${admin}/metrics`)).text();
    const hostile = ['/ws/socket-e2e-1/../../drain', '/ws/socket-e2e-1%2F..%2Fdrain/connect', '/ws/socket-e2e-1/connect/../../drain', '/ws/..%2Fdrain/connect', '/drain', '/ws/SOCKET-E2E-1/connect', '/ws/socket-e2e-1\\..\\drain/connect'];
    for (const p of hostile) {
      const r = await rawExchange(gw.gateway.port, upgradeRequest(p));
      assert.ok([400, 404].includes(r.status), `${p} → ${r.status}`);
    }
    const okPath = await upgradeStatus(gw.gateway.port, upgradeRequest('/ws/socket-e2e-1/connect?next=/drain'));
    assert.equal(okPath.status, 101);
    const after = await (await fetch(`${admin}/metrics`)).text();
    assert.equal(metric(after, 'rtc_socket_draining'), 0, 'the node was drained through the gateway');
    assert.equal(metric(after, 'rtc_socket_upgrades_rejected_total') || 0, metric(before, 'rtc_socket_upgrades_rejected_total') || 0, 'the node saw a bad upgrade');
    assert.equal((await fetch(`${admin}/readyz`)).status, 200);
    assert.equal(node.connections() >= 1, true);

    // The node drains: the gateway learns at once (registry change) and answers 503 pod_draining.
    const closed = once(ws, 'close');
    const draining = node.drain();
    await waitFor(async () => (await upgradeOutcome(gw.gateway.port, upgradeRequest('/ws/socket-e2e-1/connect'))).status === 503, 3000);
    assert.deepEqual(await upgradeOutcome(gw.gateway.port, upgradeRequest('/ws/socket-e2e-1/connect')), { status: 503, error: 'pod_draining' });
    const [code] = await closed;
    assert.equal(code, CloseCode.SERVICE_RESTART);
    await draining;
    assert.equal((await fetch(`${gw.base}/ws/assign`)).status, 503);
  } finally {
    await gw.gateway.close();
    await node.close();
    await registry.close();
  }
});
