/**
 * A burst of connections past the gateway's socket ceiling (GATEWAY_MAX_CONNECTIONS + SOCKET_HEADROOM): every
 * client not proxied is answered `503 gateway_overloaded` with `Retry-After`; none is closed without an answer
 * (a reconnect storm used to see resets here).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { SOCKET_HEADROOM } from '../gateway/constants.js';
import { pod, startGateway, startWsUpstream, upgradeRequest, type TestGateway, type WsUpstream } from './support/upstream.js';

const MAX_CONNECTIONS = 5;
const PAST_CEILING = 100;
const LONG_MS = '60000';
const NO_ANSWER = 'closed without an answer';
/** Lets the gateway accept the idle clients before the burst. */
const SETTLE_MS = 200;

let ws: WsUpstream;
let gw: TestGateway;

before(async () => {
  ws = await startWsUpstream({ hello: 'hi' });
  gw = await startGateway({ GATEWAY_MAX_CONNECTIONS: String(MAX_CONNECTIONS), GATEWAY_HANDSHAKE_TIMEOUT_MS: LONG_MS, GATEWAY_UPSTREAM_TIMEOUT_MS: LONG_MS });
  await gw.registry.heartbeat(pod('echo', ws.port));
});
after(async () => {
  await gw.gateway.close();
  await ws.close();
});

/** Connect, send an upgrade, resolve with the answer's head (or NO_ANSWER); proxied sockets stay open in `held`. */
function attempt(port: number, held: net.Socket[]): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let text = '';
    s.on('error', () => undefined);
    s.on('data', (d) => {
      text += d.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = text.slice(0, end);
      if (head.startsWith('HTTP/1.1 101')) held.push(s);
      else s.end();
      resolve(`${head}\r\n\r\n${text.slice(end + 4)}`);
    });
    s.on('close', () => resolve(NO_ANSWER));
    s.write(upgradeRequest('/ws/echo/connect'));
  });
}

/** A client that connects and sends nothing yet (a head still coming, a keep-alive `/ws/assign` socket). */
function idle(port: number, closed: { n: number }): Promise<net.Socket> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    s.on('close', () => closed.n++);
    s.on('connect', () => resolve(s));
  });
}

test('connections past the socket ceiling get 503 gateway_overloaded + Retry-After, never a reset', async () => {
  const port = gw.gateway.port;
  const held: net.Socket[] = [];
  // The ceiling is filled: MAX_CONNECTIONS proxied, SOCKET_HEADROOM accepted but not proxied.
  const proxied = await Promise.all(Array.from({ length: MAX_CONNECTIONS }, () => attempt(port, held)));
  assert.deepEqual(proxied.map((a) => a.slice(0, 12)), Array.from({ length: MAX_CONNECTIONS }, () => 'HTTP/1.1 101'));
  const idleClosed = { n: 0 };
  const idlers = await Promise.all(Array.from({ length: SOCKET_HEADROOM }, () => idle(port, idleClosed)));
  await new Promise((r) => setTimeout(r, SETTLE_MS));

  const answers = await Promise.all(Array.from({ length: PAST_CEILING }, () => attempt(port, held)));
  const kinds = new Map<string, number>();
  for (const a of answers) {
    const kind = a === NO_ANSWER ? a : a.slice(0, 12);
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  }
  const summary = JSON.stringify([...kinds]);
  assert.equal(kinds.get('HTTP/1.1 503'), PAST_CEILING, summary);
  for (const a of answers) {
    assert.match(a, /\r\nretry-after: \d+\r\n/i);
    assert.match(a, /"gateway_overloaded"/);
  }
  assert.equal(idleClosed.n, 0, 'a client within the ceiling was closed');
  assert.equal(held.length, MAX_CONNECTIONS);
  for (const s of [...held, ...idlers]) s.destroy();
});
