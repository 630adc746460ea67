/**
 * Forwarded headers: spoofed X-Forwarded-For/-Proto/-Host, Forwarded and X-Real-IP from an untrusted peer
 * are replaced or removed; from a peer in GATEWAY_TRUSTED_PROXIES the chain is extended. The peer is this
 * test on loopback: 127.0.0.1 is trusted in one gateway and not in the other. Checked at a `ws` upstream
 * (raw headers) and at the real socket node (what its onUpgrade hook receives).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import WebSocket from 'ws';
import { createMemoryRegistry } from '../src/registry/index.js';
import type { UpgradeRequest } from '../socket/index.js';
import { startNode, type TestNode } from './socket-support.js';
import { pod, startGateway, startWsUpstream, type TestGateway, type WsUpstream } from './support/upstream.js';

const SPOOFED = {
  'X-Forwarded-For': '6.6.6.6',
  'X-Forwarded-Proto': 'https',
  'X-Forwarded-Host': 'evil.example',
  Forwarded: 'for=6.6.6.6;proto=https',
  'X-Real-IP': '6.6.6.6',
};

/** Connect through `gw` with the spoofed headers; resolves with the headers the pod saw. */
async function seenBy(up: WsUpstream, gw: TestGateway): Promise<Record<string, string | string[] | undefined>> {
  const before = up.seen.length;
  const ws = new WebSocket(gw.ws('p'), { headers: SPOOFED });
  await once(ws, 'message');
  ws.terminate();
  return up.seen[before]!.headers;
}

describe('forwarded headers', () => {
  let up: WsUpstream;
  let untrusting: TestGateway;
  let trusting: TestGateway;
  before(async () => {
    up = await startWsUpstream({ hello: 'hi' });
    untrusting = await startGateway({ GATEWAY_TRUSTED_PROXIES: '10.0.0.0/8' });
    trusting = await startGateway({ GATEWAY_TRUSTED_PROXIES: '10.0.0.0/8,127.0.0.1' });
    for (const gw of [untrusting, trusting]) await gw.registry.heartbeat(pod('p', up.port));
  });
  after(async () => {
    await Promise.all([untrusting.gateway.close(), trusting.gateway.close()]);
    await up.close();
  });

  test('from an untrusted peer: X-Forwarded-For is the peer, X-Forwarded-Proto the connection, Forwarded and X-Real-IP removed', async () => {
    const h = await seenBy(up, untrusting);
    assert.equal(h['x-forwarded-for'], '127.0.0.1');
    assert.equal(h['x-forwarded-proto'], 'http');
    assert.equal(h['x-forwarded-host'], `127.0.0.1:${untrusting.gateway.port}`);
    assert.equal(h.forwarded, undefined);
    assert.equal(h['x-real-ip'], undefined);
  });

  test('from a trusted peer: the chain is extended and its claims pass', async () => {
    const h = await seenBy(up, trusting);
    assert.equal(h['x-forwarded-for'], '6.6.6.6, 127.0.0.1');
    assert.equal(h['x-forwarded-proto'], 'https');
    assert.equal(h['x-forwarded-host'], 'evil.example');
    assert.equal(h.forwarded, 'for=6.6.6.6;proto=https');
    assert.equal(h['x-real-ip'], '6.6.6.6');
  });
});

describe('forwarded headers through the real socket node', () => {
  const registry = createMemoryRegistry();
  const seen: UpgradeRequest[] = [];
  let n: TestNode;
  let untrusting: TestGateway;
  let trusting: TestGateway;
  before(async () => {
    // The node believes X-Forwarded-For only from its gateways (here: loopback), by the same rule.
    n = await startNode({ SOCKET_TRUSTED_PROXIES: '127.0.0.1' }, { registry, handler: { onUpgrade: (request: UpgradeRequest) => void seen.push(request) } });
    untrusting = await startGateway({}, { registry });
    trusting = await startGateway({ GATEWAY_TRUSTED_PROXIES: '127.0.0.1' }, { registry });
  });
  after(async () => {
    await Promise.all([untrusting.gateway.close(), trusting.gateway.close()]);
    await n.node.close();
    await registry.close();
  });

  /** Connect through `gw` with the spoofed headers; resolves with what the node's onUpgrade saw. */
  async function nodeSaw(gw: TestGateway): Promise<UpgradeRequest> {
    const before = seen.length;
    const ws = new WebSocket(gw.ws(n.node.podId), { headers: SPOOFED });
    await once(ws, 'message');
    ws.terminate();
    return seen[before]!;
  }

  test('untrusted client: the node\'s onUpgrade sees the gateway-set X-Forwarded-For and -Proto, no Forwarded or X-Real-IP, the peer as client address', async () => {
    const r = await nodeSaw(untrusting);
    assert.equal(r.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(r.headers['x-forwarded-proto'], 'http');
    assert.equal(r.headers.forwarded, undefined);
    assert.equal(r.headers['x-real-ip'], undefined);
    assert.equal(r.clientAddress, '127.0.0.1', 'the spoofed 6.6.6.6 reached the handler as the client');
  });

  test('trusted proxy in front: the node\'s onUpgrade sees the extended chain, the proxy\'s claims and its client as client address', async () => {
    const r = await nodeSaw(trusting);
    assert.equal(r.headers['x-forwarded-for'], '6.6.6.6, 127.0.0.1');
    assert.equal(r.headers['x-forwarded-proto'], 'https');
    assert.equal(r.headers['x-real-ip'], '6.6.6.6');
    assert.equal(r.clientAddress, '6.6.6.6', 'the client the trusted proxy named');
  });
});
