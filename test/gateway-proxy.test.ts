/** Gateway routing and proxy behaviour against upstreams of our own: statuses, headers, hostile paths, limits, drain. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import WebSocket from 'ws';
import { CloseCode } from '../src/constants.js';
import { freePort } from './support/net.js';
import {
  pod, rawExchange, upgradeStatus, startAdminCounter, startGateway, startRawUpstream, startWsUpstream, upgradeRequest, waitFor,
  type AdminCounter, type RawUpstream, type TestGateway, type WsUpstream,
} from './support/upstream.js';

const settle = () => new Promise((r) => setTimeout(r, 10));

async function refused(gw: TestGateway, path: string, extra = ''): Promise<{ status: number; body: Record<string, unknown>; text: string }> {
  const r = await rawExchange(gw.gateway.port, upgradeRequest(path, extra));
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(r.body) as Record<string, unknown>;
  } catch {
    /* not JSON */
  }
  return { status: r.status, body, text: r.text };
}

describe('gateway proxy', () => {
  let up: WsUpstream;
  let admin: AdminCounter;
  let hang: RawUpstream;
  let node503: RawUpstream;
  let gw: TestGateway;

  before(async () => {
    up = await startWsUpstream({ hello: 'hello', perMessageDeflate: true, protocols: (offered) => (offered.has('superchat') ? 'superchat' : false) });
    admin = await startAdminCounter();
    hang = await startRawUpstream('hang');
    node503 = await startRawUpstream('respond-503');
    gw = await startGateway({ GATEWAY_UPSTREAM_TIMEOUT_MS: '300' });
    await gw.registry.heartbeat(pod('pod-a', up.port, { adminPort: admin.port }));
    await gw.registry.heartbeat(pod('pod-draining', up.port, { draining: true, adminPort: admin.port }));
    await gw.registry.heartbeat(pod('pod-refused', await freePort()));
    await gw.registry.heartbeat(pod('pod-hang', hang.port));
    await gw.registry.heartbeat(pod('pod-503', node503.port));
    await settle();
  });
  after(async () => {
    await gw.gateway.close();
    await Promise.all([up.close(), admin.close(), hang.close(), node503.close()]);
  });

  test('proxies to /ws/connect on the pod: query kept, subprotocol and extension negotiated end to end, X-Forwarded-* set', async () => {
    const before = up.seen.length;
    const ws = new WebSocket(gw.ws('pod-a', 'token=abc&room=%2Fx'), ['chat', 'superchat'], { perMessageDeflate: true, headers: { 'X-Request-Id': 'req-42', Origin: 'https://app.example' } });
    const [hello] = await once(ws, 'message');
    assert.equal(String(hello), 'hello');
    assert.equal(ws.protocol, 'superchat');
    assert.match(ws.extensions, /permessage-deflate/);
    ws.send('ping through');
    const [echo] = await once(ws, 'message');
    assert.equal(String(echo), 'ping through');
    ws.send(Buffer.from([1, 2, 3]));
    const [bin] = await once(ws, 'message');
    assert.deepEqual([...(bin as Buffer)], [1, 2, 3]);
    const seen = up.seen[before]!;
    assert.equal(seen.url, '/ws/connect?token=abc&room=%2Fx');
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen.headers['x-forwarded-proto'], 'http');
    assert.equal(seen.headers['x-request-id'], 'req-42');
    assert.equal(seen.headers.origin, 'https://app.example');
    assert.equal(seen.headers.host, `127.0.0.1:${up.port}`);
    assert.equal(gw.gateway.connections(), 1);
    ws.close(CloseCode.NORMAL);
    const [code] = await once(ws, 'close');
    assert.equal(code, CloseCode.NORMAL);
    await waitFor(() => gw.gateway.connections() === 0);
  });

  test('large messages both ways survive the relay (backpressure)', async () => {
    const ws = new WebSocket(gw.ws('pod-a'));
    await once(ws, 'message');
    const big = Buffer.alloc(4 * 1024 * 1024, 7);
    ws.send(big);
    const [back] = await once(ws, 'message');
    assert.equal((back as Buffer).length, big.length);
    assert.ok((back as Buffer).equals(big));
    ws.terminate();
  });

  test('unknown pod: 404 pod_not_found at once, no upstream attempt', async () => {
    const accepted = hang.accepted();
    const t = Date.now();
    const r = await refused(gw, '/ws/pod-unknown/connect');
    assert.equal(r.status, 404);
    assert.deepEqual(r.body.error, 'pod_not_found');
    assert.equal(typeof r.body.message, 'string');
    assert.ok(Date.now() - t < 1000);
    assert.equal(hang.accepted(), accepted);
  });

  test('draining pod: 503 pod_draining with Retry-After', async () => {
    const r = await refused(gw, '/ws/pod-draining/connect');
    assert.equal(r.status, 503);
    assert.equal(r.body.error, 'pod_draining');
    assert.match(r.text, /\r\nretry-after: \d+\r\n/i);
  });

  test('upstream refused: 502 upstream_unreachable', async () => {
    const r = await refused(gw, '/ws/pod-refused/connect');
    assert.equal(r.status, 502);
    assert.equal(r.body.error, 'upstream_unreachable');
  });

  test('upstream slower than GATEWAY_UPSTREAM_TIMEOUT_MS: 504 upstream_timeout, upstream socket closed', async () => {
    const t = Date.now();
    const r = await refused(gw, '/ws/pod-hang/connect');
    assert.equal(r.status, 504);
    assert.equal(r.body.error, 'upstream_timeout');
    assert.ok(Date.now() - t >= 250);
    await waitFor(() => hang.open() === 0);
  });

  test("the pod's own refusal (503 node_draining) is forwarded as is", async () => {
    const r = await refused(gw, '/ws/pod-503/connect');
    assert.equal(r.status, 503);
    assert.equal(r.body.error, 'node_draining');
  });

  test('plain GET on a connect route: 426; bad ids: 400 with or without upgrade; other paths: 404; wrong method: 405', async () => {
    const plain = await fetch(`${gw.base}/ws/pod-a/connect`);
    assert.equal(plain.status, 426);
    assert.equal(((await plain.json()) as { error: string }).error, 'upgrade_required');
    assert.equal(plain.headers.get('upgrade'), 'websocket');
    const bad = await fetch(`${gw.base}/ws/Pod_A/connect`);
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { error: string }).error, 'invalid_pod_id');
    assert.equal((await refused(gw, '/ws/Pod_A/connect')).body.error, 'invalid_pod_id');
    const nf = await fetch(`${gw.base}/nope`);
    assert.equal(nf.status, 404);
    assert.equal(((await nf.json()) as { error: string }).error, 'not_found');
    const post = await fetch(`${gw.base}/ws/assign`, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(((await post.json()) as { error: string }).error, 'method_not_allowed');
    const postUpgrade = await rawExchange(gw.gateway.port, upgradeRequest('/ws/pod-a/connect').replace(/^GET/, 'POST'));
    assert.equal(postUpgrade.status, 405);
    const h2c = await rawExchange(gw.gateway.port, 'GET /ws/pod-a/connect HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n');
    assert.equal(h2c.status, 400);
  });

  test('never an open proxy: hostile paths get their status and only /ws/connect ever reaches a pod', async () => {
    const upstreamBefore = up.seen.length;
    const hostile: [string, number][] = [
      ['/ws/pod-a/../../drain', 404],
      ['/ws/pod-a/connect/../../drain', 404],
      ['/ws/pod-a/connect/..%2F..%2Fdrain', 404],
      ['/ws/pod-a%2F..%2Fdrain/connect', 400],
      ['/ws/..%2F..%2Fdrain/connect', 400],
      ['/ws/%2e%2e/connect', 400],
      ['/ws/../connect', 400],
      ['/ws/./connect', 400],
      ['//ws/pod-a/connect', 404],
      ['/ws//pod-a/connect', 400],
      ['/ws/pod-a//connect', 400],
      ['/ws/pod-a\\..\\drain/connect', 400],
      ['/ws/POD-A/connect', 400],
      ['/ws/-pod-a/connect', 400],
      ['/ws/' + 'a'.repeat(64) + '/connect', 400],
      ['/ws/' + 'a'.repeat(200) + '/connect', 400],
      ['/ws/pod-a%00/connect', 400],
      ['/ws/pod-a%0d%0aX-Evil:%201/connect', 400],
      ['/ws/p\u00f6d/connect', 400],
      ['/drain', 404],
      ['/metrics/../drain', 404],
      ['/ws/connect', 404],
      ['/ws/pod-a', 404],
      ['/ws/pod-a/connect?x=\u00e9', 400],
      ['/ws/pod-a/connect?next=/drain&a=..%2Fdrain', 101],
    ];
    const results: string[] = [];
    for (const [path, expected] of hostile) {
      const raw = Buffer.from(upgradeRequest(path), 'utf8');
      const r = expected === 101 ? await upgradeStatus(gw.gateway.port, raw) : await rawExchange(gw.gateway.port, raw, 3000);
      results.push(`${path} → ${r.status}`);
      if (expected === 101) assert.equal(r.status, 101, path);
      else assert.equal(r.status, expected, `${path}: ${r.text.slice(0, 200)}`);
    }
    // CR/LF and spaces in the request line: an HTTP/0.9-style line without the upgrade headers (426), or not parsed at all.
    for (const raw of ['GET /ws/pod-a/connect\r\nX: y HTTP/1.1\r\n\r\n', 'GET /ws/pod a/connect HTTP/1.1\r\nHost: x\r\n\r\n', `GET /ws/${'a/'.repeat(10_000)}connect HTTP/1.1\r\nHost: x\r\n\r\n`]) {
      const r = await upgradeStatus(gw.gateway.port, raw, 3000);
      assert.ok([400, 426, 431].includes(r.status), `${JSON.stringify(raw.slice(0, 40))} → ${r.status}`);
    }
    assert.equal(admin.hits(), 0, 'admin endpoint reached');
    assert.equal(admin.connections(), 0, 'admin port connected');
    const paths = up.seen.slice(upstreamBefore).map((s) => s.url);
    assert.ok(paths.length >= 1);
    for (const p of paths) assert.match(p, /^\/ws\/connect(\?|$)/, `pod was asked for ${p}`);
  });

  test('/ws/assign hands out live, non-draining pods; /api/pods and /api/events answer', async () => {
    const r = await fetch(`${gw.base}/ws/assign`);
    assert.equal(r.status, 200);
    const body = (await r.json()) as { podId: string; url: string };
    assert.ok(['pod-a', 'pod-refused', 'pod-hang', 'pod-503'].includes(body.podId));
    assert.equal(body.url, `/ws/${body.podId}/connect`);
    const pods = (await (await fetch(`${gw.admin}/api/pods`)).json()) as { pods: { podId: string }[]; desiredReplicas: number | null; totalConnections: number };
    assert.equal(pods.pods.length, 5);
    for (const k of ['podId', 'ip', 'port', 'connections', 'draining', 'updatedAt']) assert.ok(k in pods.pods[0]!, `missing ${k}`);
    assert.equal(pods.desiredReplicas, null);
    await gw.registry.setScalerDecision({ desiredReplicas: 3, currentReplicas: 2, reason: 'test', at: Date.now() });
    await gw.registry.pushEvent({ at: Date.now(), kind: 'scale-out', message: 'Scaling Deployment socket from 2 to 3 replicas' });
    // /api/pods answers from the gateway's view, which reads the decision with its periodic sync (HEARTBEAT_MS).
    await waitFor(async () => ((await (await fetch(`${gw.admin}/api/pods`)).json()) as { desiredReplicas: number }).desiredReplicas === 3, 3 * gw.config.heartbeatMs);
    const ev = (await (await fetch(`${gw.admin}/api/events`)).json()) as { events: { kind: string }[] };
    assert.equal(ev.events[0]!.kind, 'scale-out');
    const page = await fetch(`${gw.admin}/`);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    assert.match(await page.text(), /<html/i);
    assert.equal((await fetch(`${gw.base}/healthz`)).status, 200);
    assert.equal((await fetch(`${gw.base}/readyz`)).status, 200);
  });

  test('metrics: upgrades by code, active connections, handshake histogram, bytes each way', async () => {
    const text = await (await fetch(`${gw.admin}/metrics`)).text();
    assert.match(text, /rtc_gateway_upgrades_total\{code="101"[^}]*\} [1-9]/);
    assert.match(text, /rtc_gateway_upgrades_total\{code="404"[^}]*\} [1-9]/);
    assert.match(text, /rtc_gateway_upgrades_total\{code="502"[^}]*\} [1-9]/);
    assert.match(text, /rtc_gateway_upgrades_total\{code="504"[^}]*\} [1-9]/);
    assert.match(text, /rtc_gateway_handshake_seconds_count\{[^}]*\} [1-9]/);
    assert.match(text, /rtc_gateway_active_connections\{[^}]*\} 0/);
    assert.match(text, /rtc_gateway_relayed_bytes_total\{direction="client_to_pod"[^}]*\} [1-9]/);
    assert.match(text, /rtc_gateway_relayed_bytes_total\{direction="pod_to_client"[^}]*\} [1-9]/);
  });
});

describe('gateway limits', () => {
  test('header size (431), slowloris (408), GATEWAY_MAX_CONNECTIONS (503 gateway_overloaded)', async () => {
    const up = await startWsUpstream({ hello: 'hi' });
    const gw = await startGateway({ GATEWAY_MAX_HEADER_BYTES: '2048', GATEWAY_HANDSHAKE_TIMEOUT_MS: '300', GATEWAY_MAX_CONNECTIONS: '2' });
    try {
      await gw.registry.heartbeat(pod('p', up.port));
      await settle();
      const big = await rawExchange(gw.gateway.port, upgradeRequest('/ws/p/connect', `X-Big: ${'x'.repeat(4096)}\r\n`));
      assert.equal(big.status, 431);
      assert.equal((JSON.parse(big.body) as { error: string }).error, 'headers_too_large');

      const slow = net.connect(gw.gateway.port, '127.0.0.1');
      slow.on('error', () => undefined);
      let got = '';
      slow.on('data', (d) => (got += d.toString()));
      slow.write('GET /ws/p/connect HTTP/1.1\r\nHost: x\r\n');
      const drip = setInterval(() => slow.write('X-Drip: 1\r\n'), 50);
      const idle = net.connect(gw.gateway.port, '127.0.0.1');
      idle.on('error', () => undefined);
      idle.resume();
      await Promise.all([once(slow, 'close'), once(idle, 'close')]);
      clearInterval(drip);
      assert.match(got, /^HTTP\/1\.1 408/);

      const a = new WebSocket(gw.ws('p'));
      const b = new WebSocket(gw.ws('p'));
      await Promise.all([once(a, 'message'), once(b, 'message')]);
      const third = await rawExchange(gw.gateway.port, upgradeRequest('/ws/p/connect'));
      assert.equal(third.status, 503);
      assert.equal((JSON.parse(third.body) as { error: string }).error, 'gateway_overloaded');
      assert.match(third.text, /\r\nretry-after: \d+\r\n/i);
      a.send('still here');
      const [m] = await once(a, 'message');
      assert.equal(String(m), 'still here');
      a.terminate();
      await waitFor(() => gw.gateway.connections() === 1);
      const c = new WebSocket(gw.ws('p'));
      await once(c, 'message');
      b.terminate();
      c.terminate();
    } finally {
      await gw.gateway.close();
      await up.close();
    }
  });

  test('graceful close: stops accepting at once; the proxied connection gets its 1001 within GATEWAY_DRAIN_MS', async () => {
    const up = await startWsUpstream({ hello: 'hi' });
    const gw = await startGateway({ GATEWAY_DRAIN_MS: '400' });
    await gw.registry.heartbeat(pod('p', up.port));
    await settle();
    const ws = new WebSocket(gw.ws('p'));
    await once(ws, 'message');
    const closedAt = once(ws, 'close');
    const t0 = Date.now();
    const closing = gw.gateway.close();
    // No new connections (the listen socket is closed at once).
    const refused = net.connect(gw.gateway.port, '127.0.0.1');
    const [err] = (await once(refused, 'error')) as [NodeJS.ErrnoException];
    assert.equal(err.code, 'ECONNREFUSED');
    const [code, reason] = await closedAt;
    assert.equal(code, CloseCode.GOING_AWAY);
    assert.match(String(reason), /shutting down/);
    assert.ok(Date.now() - t0 < 400 + 1000, 'the 1001 came after the drain window');
    await closing;
    await up.close();
  });

  test('graceful close cuts at a frame boundary while a large message is in flight', async () => {
    const up = await startWsUpstream({});
    const gw = await startGateway({ GATEWAY_DRAIN_MS: '0' });
    await gw.registry.heartbeat(pod('p', up.port));
    await settle();
    const ws = new WebSocket(gw.ws('p'));
    await once(ws, 'open');
    const big = Buffer.alloc(8 * 1024 * 1024, 3);
    const received: Buffer[] = [];
    ws.on('message', (d) => received.push(d as Buffer));
    const errors: Error[] = [];
    ws.on('error', (e) => errors.push(e));
    ws.send(big);
    // Wait until the echo starts flowing back, then close mid-message.
    await waitFor(() => up.sockets.size === 1);
    await new Promise((r) => setTimeout(r, 20));
    const closed = once(ws, 'close');
    await gw.gateway.close();
    const [code] = await closed;
    assert.deepEqual(errors, [], 'the client saw a framing error');
    assert.equal(code, CloseCode.GOING_AWAY);
    for (const r of received) assert.equal(r.length, big.length, 'a truncated message was delivered');
    await up.close();
  });
});
