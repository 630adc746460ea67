/** The application handler hook: loaded from SOCKET_HANDLER, failures answered with handler_failed, never a crash. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import { start } from '../socket/index.js';
import { Client, startNode, testConfig, waitFor, type TestNode } from './socket-support.js';
import { captureLogs } from './support/logs.js';

const HANDLER_SOURCE = `
export const events = [];
export default async function create({ podId, config }) {
  events.push({ kind: 'init', podId, payload: config.socketMaxPayloadBytes });
  return {
    onOpen(s) { events.push({ kind: 'open', sessionId: s.sessionId }); s.sendJson({ type: 'hello', podId: s.podId }); },
    onMessage(s, m) {
      if (m.type === 'upper') return void s.sendJson({ type: 'upper', text: String(m.text).toUpperCase() });
      if (m.type === 'boom') throw new Error('sync boom');
      if (m.type === 'later') return new Promise((_, reject) => setTimeout(() => reject(new Error('async boom')), 5));
      if (m.type === 'close-me') return void s.close(4001, 'bye');
      if (m.type === 'close-weird') return void s.close(1006, 'é'.repeat(100));
      if (m.type === 'send-after-close') {
        setTimeout(() => events.push({ kind: 'late-send', ok: s.send('late'), open: s.open }), 30);
        return void s.close(4002, 'gone');
      }
      s.sendError('EDGE_ERR_UNKNOWN_TYPE');
    },
    onClose(s, code) { events.push({ kind: 'close', sessionId: s.sessionId, code }); },
  };
}
`;

describe('handler module from SOCKET_HANDLER', () => {
  let dir: string;
  let file: string;
  let t: TestNode;
  let events: Array<Record<string, unknown>>;

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rtc-handler-'));
    file = path.join(dir, 'handler.mjs');
    await fs.writeFile(file, HANDLER_SOURCE);
    t = await startNode({ SOCKET_HANDLER: file });
    events = ((await import(pathToFileURL(file).href)) as { events: Array<Record<string, unknown>> }).events;
  });
  after(async () => {
    await t.node.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  test('the factory gets the pod id and config; onOpen runs after welcome', async () => {
    assert.deepEqual(events[0], { kind: 'init', podId: t.node.podId, payload: t.config.socketMaxPayloadBytes });
    const c = await Client.open(t.url);
    const welcome = await c.json();
    assert.equal(welcome.type, 'welcome');
    assert.deepEqual(await c.json(), { type: 'hello', podId: t.node.podId });
    assert.ok(events.some((e) => e.kind === 'open' && e.sessionId === welcome.sessionId));
    await c.end();
    await waitFor(() => events.some((e) => e.kind === 'close' && e.sessionId === welcome.sessionId));
  });

  test('unknown types reach the handler; ping and echo stay with the node', async () => {
    const c = await Client.open(t.url);
    await c.json();
    await c.json();
    c.send(JSON.stringify({ type: 'upper', text: 'abc' }));
    assert.deepEqual(await c.json(), { type: 'upper', text: 'ABC' });
    c.send(JSON.stringify({ type: 'ping', t: 9 }));
    assert.deepEqual(await c.json(), { type: 'pong', t: 9 });
    // No onBinary in this module: binary frames keep the default echo.
    c.send(Buffer.from([9, 8, 7]));
    assert.deepEqual((await c.next()).data, Buffer.from([9, 8, 7]));
    await c.end();
  });

  test('a throwing or rejecting handler gets handler_failed and the connection stays open', async () => {
    const c = await Client.open(t.url);
    await c.json();
    await c.json();
    c.send(JSON.stringify({ type: 'boom' }));
    const e1 = await c.json();
    assert.equal(e1.type, 'error');
    assert.equal(e1.error, 'handler_failed');
    assert.doesNotMatch(String(e1.message), /boom/, 'internal error text is not sent to clients');
    c.send(JSON.stringify({ type: 'later' }));
    assert.equal((await c.json()).error, 'handler_failed');
    c.send(JSON.stringify({ type: 'upper', text: 'still here' }));
    assert.deepEqual(await c.json(), { type: 'upper', text: 'STILL HERE' });
    assert.equal(c.ws.readyState, WebSocket.OPEN);
    const m = await (await fetch(`${t.admin}/metrics`)).text();
    assert.match(m, /rtc_socket_handler_errors_total\{[^}]*\} 2/);
    assert.equal(t.lines.filter((l) => l.msg === 'application handler failed').length, 1, 'handler failures are logged rate-limited');
    await c.end();
  });

  test('the handler can close with its own code; a send after close is a no-op, not a crash', async () => {
    const c = await Client.open(t.url);
    await c.json();
    await c.json();
    c.send(JSON.stringify({ type: 'close-me' }));
    const closed = await c.closed;
    assert.equal(closed.code, 4001);
    assert.equal(closed.reason, 'bye');

    const w = await Client.open(t.url);
    await w.json();
    await w.json();
    w.send(JSON.stringify({ type: 'close-weird' }));
    const weird = await w.closed;
    assert.equal(weird.code, 1000, 'a reserved code (1006) becomes 1000');
    assert.equal(weird.reason, 'é'.repeat(61), 'the reason is cut to 123 bytes on a character boundary');

    const d = await Client.open(t.url);
    await d.json();
    await d.json();
    d.send(JSON.stringify({ type: 'send-after-close' }));
    assert.equal((await d.closed).code, 4002);
    const late = await waitFor(() => events.find((e) => e.kind === 'late-send'));
    assert.deepEqual(late, { kind: 'late-send', ok: false, open: false });
    const e = await Client.open(t.url);
    assert.equal((await e.json()).type, 'welcome');
    await e.end();
  });
});

describe('handler loading', () => {
  test('the example counter handler loads from a relative path', async () => {
    const t = await startNode({ SOCKET_HANDLER: './examples/handlers/counter.ts' });
    try {
      const c = await Client.open(t.url);
      await c.json();
      c.send(JSON.stringify({ type: 'x' }));
      assert.equal((await c.json()).error, 'unknown_type');
      c.send(JSON.stringify({ type: 'count' }));
      const count = await c.json();
      assert.equal(count.type, 'count');
      assert.equal(count.messages, 2);
      assert.equal(count.podId, t.node.podId);
      await c.end();
    } finally {
      await t.node.close();
    }
  });

  test('deps.handler is used instead of a module', async () => {
    const t = await startNode({}, { handler: { onMessage: (s, m) => void s.sendJson({ type: 'got', of: m.type }) } });
    try {
      const c = await Client.open(t.url);
      await c.json();
      c.send(JSON.stringify({ type: 'thing' }));
      assert.deepEqual(await c.json(), { type: 'got', of: 'thing' });
      await c.end();
    } finally {
      await t.node.close();
    }
  });

  test('a missing or malformed handler module stops start-up with an error naming SOCKET_HANDLER and the problem', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rtc-handler-bad-'));
    try {
      await fs.writeFile(path.join(dir, 'num.mjs'), 'export default 42;\n');
      await fs.writeFile(path.join(dir, 'empty.mjs'), 'export const x = 1;\n');
      await fs.writeFile(path.join(dir, 'badhook.mjs'), 'export default { onMessage: "nope" };\n');
      await fs.writeFile(path.join(dir, 'factory.mjs'), 'export default () => { throw new Error("no db"); };\n');
      const cases: Array<[string, RegExp]> = [
        [path.join(dir, 'missing.mjs'), /SOCKET_HANDLER=.*missing\.mjs: cannot load the module/],
        [path.join(dir, 'num.mjs'), /expected an object/],
        [path.join(dir, 'empty.mjs'), /no default export/],
        [path.join(dir, 'badhook.mjs'), /onMessage must be functions?/],
        [path.join(dir, 'factory.mjs'), /handler factory failed: no db/],
      ];
      for (const [spec, re] of cases) {
        const { logger } = captureLogs();
        await assert.rejects(start(testConfig({ SOCKET_HANDLER: spec }), { logger, host: '127.0.0.1' }), re, spec);
      }
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
