/**
 * The relay never truncates: a client that reads slowly behind the gateway still gets every byte its real
 * socket node sent, then the close frame, whether the node drains (1012) or the gateway shuts down (1001).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net, { type Socket } from 'node:net';
import WebSocket from 'ws';
import { CloseCode } from '../src/constants.js';
import { createMemoryRegistry } from '../src/registry/index.js';
import type { MessageHandler } from '../socket/index.js';
import { Client, startNode } from './socket-support.js';
import { pod, startGateway, startRawUpstream, upgradeRequest, waitFor } from './support/upstream.js';

const MIB = 1024 * 1024;
const PAUSE_MS = 2000;

/** A handler that answers `{"type":"blast"}` with one 1 MiB binary frame; `sent` counts blasts sent. */
function blaster(): MessageHandler & { sent: number } {
  const h = {
    sent: 0,
    onMessage(session: { send(d: Uint8Array, binary: boolean): boolean }, message: { type: string }) {
      if (message.type !== 'blast') return;
      session.send(new Uint8Array(MIB).fill(7), true);
      h.sent++;
    },
  };
  return h;
}

/** Node + gateway on one memory registry; the client is connected through the gateway and has its welcome. */
async function setup(gatewayEnv: Record<string, string> = {}) {
  const registry = createMemoryRegistry();
  const handler = blaster();
  // The node's own backpressure limit is not under test: large enough to hold the blast and the notice.
  const n = await startNode({ DRAIN_WINDOW_MS: '0', SOCKET_MAX_BACKPRESSURE_BYTES: String(8 * MIB) }, { registry, handler });
  const gw = await startGateway(gatewayEnv, { registry });
  await waitFor(async () => (await fetch(`${gw.base}/ws/assign`)).status === 200);
  const client = await Client.open(gw.ws(n.node.podId));
  assert.equal(JSON.parse(String((await client.next()).data)).type, 'welcome');
  const stop = async () => {
    client.ws.terminate();
    await gw.gateway.close();
    await n.node.close();
    await registry.close();
  };
  return { handler, n, gw, client, stop };
}

/** Stop reading the client's socket for PAUSE_MS (the kernel buffers fill, the gateway queues the rest). */
function pauseReading(client: Client): Promise<void> {
  const socket = (client.ws as WebSocket & { _socket: Socket })._socket;
  socket.pause();
  return new Promise((resolve) => setTimeout(() => {
    socket.resume();
    resolve();
  }, PAUSE_MS));
}

test('node drains while its client reads slowly: the whole 1 MiB, the reconnect notice, then close 1012, in order', async () => {
  const { handler, n, client, stop } = await setup();
  try {
    const paused = pauseReading(client);
    client.ws.send(JSON.stringify({ type: 'blast' }));
    await waitFor(() => handler.sent === 1);
    const drained = n.node.drain();
    await paused;
    const big = await client.next(10_000);
    assert.equal(big.binary, true);
    assert.equal(big.data.length, MIB, 'the 1 MiB frame arrived whole');
    const notice = JSON.parse(String((await client.next()).data)) as { type: string };
    assert.equal(notice.type, 'reconnect');
    const closed = await client.closed;
    assert.equal(closed.code, CloseCode.SERVICE_RESTART);
    assert.equal(client.frames.length, 3, 'nothing after the notice but the close');
    await drained;
  } finally {
    await stop();
  }
});

test("gateway shuts down while a client reads slowly: the whole 1 MiB, then the gateway's close 1001", async () => {
  const { handler, gw, client, stop } = await setup({ GATEWAY_DRAIN_MS: '0' });
  try {
    const paused = pauseReading(client);
    client.ws.send(JSON.stringify({ type: 'blast' }));
    await waitFor(() => handler.sent === 1);
    // Let the blast reach the gateway (it is queued there for the paused client), then shut down.
    await new Promise((r) => setTimeout(r, 200));
    const closing = gw.gateway.close();
    await paused;
    const big = await client.next(10_000);
    assert.equal(big.data.length, MIB, 'the 1 MiB frame arrived whole');
    const closed = await client.closed;
    assert.equal(closed.code, CloseCode.GOING_AWAY);
    assert.equal(client.frames.length, 2);
    await closing;
  } finally {
    await stop();
  }
});

/** Unmasked server frames: `count` binary frames of 1 MiB (each filled with its index), then close 1000. */
function serverFrames(count: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const header = Buffer.alloc(10);
    header[0] = 0x82;
    header[1] = 127;
    header.writeUInt32BE(MIB, 6);
    parts.push(header, Buffer.alloc(MIB, i + 1));
  }
  parts.push(Buffer.from([0x88, 0x02, 0x03, 0xe8]));
  return Buffer.concat(parts);
}

test('a client that half-closes while it reads slowly still gets everything the pod sends after, then its close frame', async () => {
  // More than loopback's kernel buffers hold (~4 MiB here), so most of it waits in the gateway's queue.
  const payload = serverFrames(8);
  const up = await startRawUpstream('send-then-end', payload);
  const gw = await startGateway();
  try {
    await gw.registry.heartbeat(pod('p', up.port));
    await waitFor(async () => (await fetch(`${gw.base}/ws/assign`)).status === 200);
    const s = net.connect({ port: gw.gateway.port, host: '127.0.0.1', allowHalfOpen: true });
    s.on('error', () => undefined);
    const chunks: Buffer[] = [];
    let headSeen = false;
    s.on('data', (d: Buffer) => {
      chunks.push(d);
      if (headSeen) return;
      headSeen = true;
      // Upgraded: stop reading for a while and send our FIN at once (a client done sending).
      s.pause();
      s.end();
      setTimeout(() => s.resume(), PAUSE_MS);
    });
    const ended = new Promise<void>((resolve) => s.on('end', () => resolve()));
    s.write(upgradeRequest('/ws/p/connect'));
    await ended;
    const all = Buffer.concat(chunks);
    const bodyAt = all.indexOf('\r\n\r\n') + 4;
    assert.match(all.toString('latin1', 0, 12), /^HTTP\/1\.1 101/);
    const body = all.subarray(bodyAt);
    assert.equal(body.length, payload.length, `received ${body.length} of ${payload.length} bytes after the 101`);
    assert.ok(body.equals(payload), 'the relayed bytes differ from what the pod sent');
    s.destroy();
  } finally {
    await gw.gateway.close();
    await up.close();
  }
});
