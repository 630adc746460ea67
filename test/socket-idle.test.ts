/** Idle timeout with protocol pings: a live client (answering pings) stays, a silent one is closed. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { Client, startNode, waitFor } from './socket-support.js';

const IDLE_S = 8; // the smallest uWS idle timeout

test('SOCKET_IDLE_TIMEOUT_S: the node pings idle clients and closes the ones that do not answer', async () => {
  const t = await startNode({ SOCKET_IDLE_TIMEOUT_S: String(IDLE_S) });
  try {
    const live = await Client.open(t.url);
    await live.json();
    let pings = 0;
    live.ws.on('ping', () => pings++); // `ws` answers with a pong by itself
    const silent = await Client.open(t.url);
    await silent.json();
    (silent.ws as unknown as { _socket: Socket })._socket.pause(); // reads nothing, so never pongs

    const t0 = Date.now();
    await waitFor(() => t.node.connections() === 1, IDLE_S * 3 * 1000, 100);
    const after = (Date.now() - t0) / 1000;
    assert.ok(after >= IDLE_S - 1, `silent client closed after ${after.toFixed(1)} s, not before the idle timeout`);
    assert.equal(live.ws.readyState, WebSocket.OPEN);
    assert.ok(pings >= 1, 'the live client was pinged');
    live.send(JSON.stringify({ type: 'ping', t: 1 }));
    assert.deepEqual(await live.json(), { type: 'pong', t: 1 });
    silent.ws.terminate();
    await live.end();
  } finally {
    await t.node.close();
  }
});
