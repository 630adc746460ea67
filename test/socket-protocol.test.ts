/** Socket node protocol over loopback with real `ws` clients: messages, limits, paths. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { Client, refusedUpgrade, startNode, waitFor, type TestNode } from './socket-support.js';

const LIMIT = 1024;

describe('socket node protocol', () => {
  let t: TestNode;
  before(async () => {
    t = await startNode({ SOCKET_MAX_PAYLOAD_BYTES: String(LIMIT) });
  });
  after(async () => {
    await t.node.close();
  });

  test('welcome carries the pod id and a session id unique per connection', async () => {
    const a = await Client.open(t.url);
    const b = await Client.open(t.url);
    const wa = await a.json();
    const wb = await b.json();
    assert.equal(wa.type, 'welcome');
    assert.equal(wa.podId, t.node.podId);
    assert.match(String(wa.sessionId), /^[0-9a-f-]{36}$/);
    assert.notEqual(wa.sessionId, wb.sessionId);
    await Promise.all([a.end(), b.end()]);
  });

  test('ping is answered with pong carrying t; echo returns data', async () => {
    const c = await Client.open(t.url);
    await c.json();
    c.send(JSON.stringify({ type: 'ping', t: 1234.5 }));
    assert.deepEqual(await c.json(), { type: 'pong', t: 1234.5 });
    c.send(JSON.stringify({ type: 'ping', t: { nested: [1, 'x'] } }));
    assert.deepEqual(await c.json(), { type: 'pong', t: { nested: [1, 'x'] } });
    c.send(JSON.stringify({ type: 'echo', data: { hello: 'wörld', n: [1, 2, 3] } }));
    assert.deepEqual(await c.json(), { type: 'echo', data: { hello: 'wörld', n: [1, 2, 3] } });
    await c.end();
  });

  test('invalid JSON gets invalid_json and the connection stays open', async () => {
    const c = await Client.open(t.url);
    await c.json();
    c.send('{not json');
    const err = await c.json();
    assert.equal(err.type, 'error');
    assert.equal(err.error, 'invalid_json');
    assert.equal(typeof err.message, 'string');
    c.send(JSON.stringify({ type: 'ping', t: 1 }));
    assert.deepEqual(await c.json(), { type: 'pong', t: 1 });
    assert.equal(c.ws.readyState, WebSocket.OPEN);
    await c.end();
  });

  test('JSON that is not an object with a string type gets invalid_message', async () => {
    const c = await Client.open(t.url);
    await c.json();
    for (const bad of ['[1,2]', '"ping"', '42', 'null', '{"type":5}', '{"t":1}']) {
      c.send(bad);
      const err = await c.json();
      assert.equal(err.error, 'invalid_message', bad);
    }
    assert.equal(c.ws.readyState, WebSocket.OPEN);
    await c.end();
  });

  test('default handler: unknown JSON types get unknown_type, binary frames are echoed', async () => {
    const c = await Client.open(t.url);
    await c.json();
    c.send(JSON.stringify({ type: 'subscribe', room: 'x' }));
    const err = await c.json();
    assert.equal(err.type, 'error');
    assert.equal(err.error, 'unknown_type');
    assert.match(String(err.message), /subscribe/);
    const payload = Buffer.from(Array.from({ length: 300 }, (_, i) => i % 256));
    c.send(payload);
    const f = await c.next();
    assert.equal(f.binary, true);
    assert.deepEqual(f.data, payload);
    await c.end();
  });

  test('a frame of exactly SOCKET_MAX_PAYLOAD_BYTES passes; one byte more closes with 1009 (binary and text)', async () => {
    const c = await Client.open(t.url);
    await c.json();
    c.send(Buffer.alloc(LIMIT, 7));
    const f = await c.next();
    assert.equal(f.data.length, LIMIT);
    c.send(Buffer.alloc(LIMIT + 1, 7));
    const closed = await c.closed;
    assert.equal(closed.code, 1009);

    const d = await Client.open(t.url);
    await d.json();
    d.send(JSON.stringify({ type: 'echo', data: 'x'.repeat(LIMIT) }));
    assert.equal((await d.closed).code, 1009);
  });

  test('a frame far over the limit is cut without buffering it and the node keeps serving', async () => {
    const c = await Client.open(t.url);
    await c.json();
    c.send(Buffer.alloc(LIMIT * 8));
    const closed = await c.closed;
    // Beyond 2x the limit uWS drops the TCP connection itself (no close frame: 1006); see socket/constants.ts.
    assert.ok([1006, 1009].includes(closed.code), `close code ${closed.code}`);
    const d = await Client.open(t.url);
    assert.equal((await d.json()).type, 'welcome');
    await d.end();
  });

  test('any other path is 404 not_found; plain GET on /ws/connect is 426; nothing admin on the WebSocket port', async () => {
    for (const path of ['/ws/other', '/', '/ws/connect/extra', '/drain', '/healthz', '/metrics']) {
      const r = await refusedUpgrade(`ws://127.0.0.1:${t.node.port}${path}`);
      assert.equal(r.status, 404, path);
      assert.equal(r.body.error, 'not_found', path);
    }
    for (const path of ['/drain', '/healthz', '/readyz', '/metrics']) {
      const res = await fetch(`http://127.0.0.1:${t.node.port}${path}`, { method: path === '/drain' ? 'POST' : 'GET' });
      assert.equal(res.status, 404, path);
      assert.equal(((await res.json()) as { error: string }).error, 'not_found');
    }
    const plain = await fetch(`http://127.0.0.1:${t.node.port}/ws/connect`);
    assert.equal(plain.status, 426);
    assert.equal(((await plain.json()) as { error: string }).error, 'upgrade_required');
    // Still not draining after all that.
    const ready = await fetch(`${t.admin}/readyz`);
    assert.equal(ready.status, 200);
  });

  test('the first offered subprotocol is selected', async () => {
    const c = await Client.open(t.url, ['chat.v2', 'chat.v1']);
    assert.equal(c.ws.protocol, 'chat.v2');
    await c.end();
  });

  test('connections are counted and the count drops on close', async () => {
    const base = t.node.connections();
    const cs = await Promise.all([1, 2, 3].map(() => Client.open(t.url)));
    assert.equal(t.node.connections(), base + 3);
    await Promise.all(cs.map((c) => c.end()));
    await waitFor(() => t.node.connections() === base);
  });
});

describe('socket node backpressure', () => {
  test('a client that stops reading is closed once SOCKET_MAX_BACKPRESSURE_BYTES is exceeded', async () => {
    const t = await startNode({ SOCKET_MAX_BACKPRESSURE_BYTES: '1024' });
    try {
      const c = await Client.open(t.url);
      await c.json();
      const sock = (c.ws as unknown as { _socket: import('node:net').Socket })._socket;
      sock.pause(); // the kernel buffers fill, then uWS buffers, then a send is dropped
      const data = 'x'.repeat(64 * 1024);
      const msg = JSON.stringify({ type: 'echo', data });
      await waitFor(async () => {
        for (let i = 0; i < 16; i++) c.send(msg);
        const m = await (await fetch(`${t.admin}/metrics`)).text();
        return /rtc_socket_backpressure_closed_total\{[^}]*\} 1/.test(m);
      }, 20_000, 10);
      sock.resume();
      // uWS queues the 1008 close frame behind the full buffer and drops it at the same limit, so the
      // client usually sees the TCP close (1006): what matters is that the node let go of it.
      const closed = await c.closed;
      assert.ok([1006, 1008].includes(closed.code), `close code ${closed.code}`);
      assert.equal(t.node.connections(), 0);
    } finally {
      await t.node.close();
    }
  });
});
