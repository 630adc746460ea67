/**
 * The socket node's handler sees the client address by the gateway's forwarded-header rule (src/forwarded.ts):
 * X-Forwarded-For only from SOCKET_TRUSTED_PROXIES. Clients connect from 127.0.0.2 (Linux routes all of
 * 127/8 to loopback), the gateway dials the node from 127.0.0.1, so the two are told apart.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import WebSocket from 'ws';
import type { MessageHandler } from '../socket/index.js';
import { startNode, waitFor, type TestNode } from './socket-support.js';
import { startGateway, upgradeRequest, type TestGateway } from './support/upstream.js';

const CLIENT = '127.0.0.2';
const SPOOFED = '6.6.6.6';

/** Accepts everyone; records every client address the hook saw and greets with the session's. */
function recorder(seen: string[]): MessageHandler {
  return {
    onUpgrade(req) {
      seen.push(req.clientAddress);
      return { data: null };
    },
    onOpen(s) {
      s.sendJson({ type: 'who', clientAddress: s.clientAddress });
    },
  };
}

/** One upgrade from CLIENT to `port` with `extra` headers; resolves once answered (the socket is then closed). */
function upgradeFrom(port: number, path: string, extra: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress: CLIENT });
    let text = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no answer: ${text}`));
    }, 5000);
    s.on('error', reject);
    s.on('data', (d) => {
      text += d.toString('latin1');
      if (!text.includes('\r\n\r\n')) return;
      clearTimeout(timer);
      s.destroy();
      resolve(text.slice(0, text.indexOf('\r\n')));
    });
    s.write(upgradeRequest(path, extra));
  });
}

/** The clientAddress the session reports, over a real `ws` client bound to CLIENT. */
async function sessionAddress(url: string, headers: Record<string, string>): Promise<string> {
  const ws = new WebSocket(url, { localAddress: CLIENT, headers });
  const messages: Record<string, unknown>[] = [];
  ws.on('message', (d) => messages.push(JSON.parse(String(d)) as Record<string, unknown>));
  try {
    const who = await waitFor(() => messages.find((m) => m.type === 'who'));
    return String(who.clientAddress);
  } finally {
    ws.close();
  }
}

describe('client address on the socket node', () => {
  const seen: string[] = [];
  let trusting: TestNode;
  let untrusting: TestNode;
  let gw: TestGateway;

  before(async () => {
    // This node trusts X-Forwarded-For from 127.0.0.1 (where the gateway dials from) only.
    trusting = await startNode({ SOCKET_TRUSTED_PROXIES: '127.0.0.1/32', HEARTBEAT_MS: '200' }, { handler: recorder(seen) });
    untrusting = await startNode({}, { handler: recorder(seen) });
    gw = await startGateway({ HEARTBEAT_MS: '200' }, { registry: trusting.registry });
    await waitFor(async () => (await fetch(`${gw.base}/ws/assign`)).status === 200);
  });
  after(async () => {
    await gw.gateway.close();
    await trusting.node.close();
    await untrusting.node.close();
  });

  test('straight to the node with a spoofed X-Forwarded-For, from a peer it does not trust: the peer address', async () => {
    for (const node of [trusting, untrusting]) {
      const status = await upgradeFrom(node.node.port, '/ws/connect', `X-Forwarded-For: ${SPOOFED}\r\n`);
      assert.match(status, /^HTTP\/1\.1 101/);
      assert.equal(seen.at(-1), CLIENT, `node trusting ${node.config.socketTrustedProxies.join(',') || 'nobody'}`);
    }
    assert.equal(await sessionAddress(untrusting.url, { 'X-Forwarded-For': SPOOFED }), CLIENT);
  });

  test('with no trusted list, even loopback cannot set the address', async () => {
    const s = net.connect(untrusting.node.port, '127.0.0.1');
    s.on('error', () => undefined);
    s.write(upgradeRequest('/ws/connect', `X-Forwarded-For: ${SPOOFED}\r\n`));
    await waitFor(() => seen.at(-1) === '127.0.0.1');
    s.destroy();
  });

  test('through the gateway (trusted by the node): the real client, and a spoofed header from the client is not believed', async () => {
    const status = await upgradeFrom(gw.gateway.port, `/ws/${trusting.node.podId}/connect`, `X-Forwarded-For: ${SPOOFED}\r\n`);
    assert.match(status, /^HTTP\/1\.1 101/);
    assert.equal(seen.at(-1), CLIENT, 'the gateway replaced the spoofed header with the client, and the node believed the gateway');
    assert.equal(await sessionAddress(gw.ws(trusting.node.podId), { 'X-Forwarded-For': SPOOFED }), CLIENT);
  });

  test('a bad SOCKET_TRUSTED_PROXIES stops start-up naming the variable', async () => {
    await assert.rejects(startNode({ SOCKET_TRUSTED_PROXIES: '10.0.0.0/33,gateway' }), /SOCKET_TRUSTED_PROXIES="10\.0\.0\.0\/33,gateway": bad CIDR list/);
  });
});
