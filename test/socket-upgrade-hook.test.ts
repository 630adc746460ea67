/**
 * The `onUpgrade` hook on a real socket node behind the real gateway: what the hook sees, refusals reaching
 * the client unchanged, data attached to the session, and every way a hook can fail (503, never a crash).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { refuseUpgrade, type MessageHandler, type UpgradeRequest, type UpgradeResult } from '../socket/index.js';
import { outcomeOf } from '../socket/upgrade.js';
import { parsePlacementKey } from '../src/placement-key.js';
import { Client, startNode, waitFor, type TestNode } from './socket-support.js';
import { rawExchange, startGateway, upgradeRequest, type TestGateway } from './support/upstream.js';

const TIMEOUT_MS = 300;

/** A hook steered by `?mode=`; every request it saw is kept. */
function steeredHandler(seen: UpgradeRequest[], aborted: unknown[]): MessageHandler {
  return {
    onUpgrade(req): UpgradeResult | Promise<UpgradeResult> {
      seen.push(req);
      switch (req.query.get('mode')) {
        case 'deny401':
          return refuseUpgrade(401, { error: 'token_missing', message: 'no token in the query string' });
        case 'deny403':
          return refuseUpgrade(403);
        case 'deny429':
          return Promise.resolve(refuseUpgrade(429, { retryAfterS: 7, message: 'slow down' }));
        case 'badcode':
          return refuseUpgrade(403, { error: 'Not A Code!' });
        case 'throw':
          throw new Error('hook boom');
        case 'reject':
          return Promise.reject(new Error('later boom'));
        case 'badvalue':
          return { refuse: 500 } as never;
        case 'hang':
          return new Promise((resolve) => req.signal.addEventListener('abort', () => {
            aborted.push(req.signal.reason);
            resolve(undefined);
          }));
        case 'slow':
          return sleep(TIMEOUT_MS / 2).then(() => ({ data: { slow: true } }));
        default:
          return { data: { user: req.query.get('user'), seenBy: req.podId } };
      }
    },
    onOpen(s) {
      s.sendJson({ type: 'hello', data: s.data, clientAddress: s.clientAddress, key: s.key ?? null });
    },
    onMessage(s, m) {
      s.sendJson({ type: m.type, data: s.data });
    },
  };
}

/** Status, headers and raw body of a refused upgrade. */
async function refusal(port: number, path: string, extra = ''): Promise<{ status: number; body: string; head: string }> {
  const r = await rawExchange(port, upgradeRequest(path, extra));
  return { status: r.status, body: r.body, head: r.text.slice(0, r.text.indexOf('\r\n\r\n')).toLowerCase() };
}

describe('onUpgrade through the gateway', () => {
  let t: TestNode;
  let gw: TestGateway;
  const seen: UpgradeRequest[] = [];
  const aborted: unknown[] = [];
  let connect: (query: string) => string;

  before(async () => {
    t = await startNode({ SOCKET_UPGRADE_TIMEOUT_MS: String(TIMEOUT_MS), HEARTBEAT_MS: '200' }, { handler: steeredHandler(seen, aborted) });
    gw = await startGateway({ HEARTBEAT_MS: '200' }, { registry: t.registry });
    await waitFor(async () => (await fetch(`${gw.base}/ws/assign`)).status === 200);
    connect = (query) => `/ws/${t.node.podId}/connect?${query}`;
  });
  after(async () => {
    await gw.gateway.close();
    await t.node.close();
  });

  test('the hook sees headers, query, client address, pod id and a valid key; the session sees the attached data', async () => {
    const ws = await Client.open(gw.ws(t.node.podId, 'user=ada&key=room:42.a_b-c&x=%20y'));
    const hello = await ws.json();
    assert.equal(hello.type, 'welcome');
    assert.deepEqual(await ws.json(), { type: 'hello', data: { user: 'ada', seenBy: t.node.podId }, clientAddress: '127.0.0.1', key: 'room:42.a_b-c' });
    ws.send(JSON.stringify({ type: 'whoami' }));
    assert.deepEqual(await ws.json(), { type: 'whoami', data: { user: 'ada', seenBy: t.node.podId } });
    await ws.end();
    const req = seen.at(-1)!;
    assert.equal(req.podId, t.node.podId);
    assert.equal(req.query.get('x'), ' y');
    assert.equal(req.key, 'room:42.a_b-c');
    assert.equal(req.clientAddress, '127.0.0.1');
    assert.equal(req.headers['sec-websocket-version'], '13');
    assert.match(req.headers['x-request-id'] ?? '', /./, 'the gateway set X-Request-Id');
    assert.equal(req.signal.aborted, false);
  });

  test('a key outside [A-Za-z0-9._:-]{1,128} is refused 400 invalid_key before the hook runs, and repeated headers are joined', async () => {
    const before = seen.length;
    for (const bad of ['a%20b', 'x'.repeat(129), '', 'caf%C3%A9', 'a+b', 'a%2Fb', 'ok&key=twice']) {
      const r = await refusal(gw.gateway.port, connect(`key=${bad}`));
      assert.equal(r.status, 400, bad);
      assert.equal(JSON.parse(r.body).error, 'invalid_key', bad);
    }
    assert.equal(seen.length, before, 'the hook never saw a bad key');
    assert.deepEqual(parsePlacementKey('key=' + 'k'.repeat(128)), { kind: 'key', key: 'k'.repeat(128) });
    assert.deepEqual(parsePlacementKey('%6Bey=room'), { kind: 'key', key: 'room' }, 'an encoded parameter name is the same parameter');
    const r = await rawExchange(gw.gateway.port, upgradeRequest(connect('mode=deny403'), 'X-Tag: one\r\nX-Tag: two\r\n'));
    assert.equal(r.status, 403);
    assert.equal(seen.at(-1)!.headers['x-tag'], 'one, two');
  });

  test('refusals (401, 403, 429) reach the client unchanged through the gateway: status, JSON body, Retry-After', async () => {
    const cases: [string, number, Record<string, string>][] = [
      ['mode=deny401', 401, { error: 'token_missing', message: 'no token in the query string' }],
      ['mode=deny403', 403, { error: 'forbidden', message: 'the application refused this connection' }],
      ['mode=deny429', 429, { error: 'too_many_requests', message: 'slow down' }],
    ];
    for (const [query, status, body] of cases) {
      const through = await refusal(gw.gateway.port, connect(query));
      const direct = await refusal(t.node.port, `/ws/connect?${query}`);
      assert.equal(through.status, status, query);
      assert.deepEqual(JSON.parse(through.body), body, query);
      assert.equal(through.body, direct.body, `${query}: the gateway changed the body`);
      assert.match(through.head, /content-type: application\/json/);
    }
    assert.match((await refusal(gw.gateway.port, connect('mode=deny429'))).head, /\r\nretry-after: 7(\r\n|$)/);
  });

  test('a malformed refusal code keeps the status and sends the default code', async () => {
    const r = await refusal(gw.gateway.port, connect('mode=badcode'));
    assert.equal(r.status, 403);
    assert.equal((JSON.parse(r.body) as { error: string }).error, 'forbidden');
  });

  test('a throw, a rejection or a bad return value refuses with 503 upgrade_hook_failed; the node keeps serving', async () => {
    const failures = async () => Number(/^rtc_socket_handler_errors_total(?:\{[^}]*\})? (\d+)/m.exec(await (await fetch(`${t.admin}/metrics`)).text())?.[1] ?? 0);
    const before = await failures();
    for (const mode of ['throw', 'reject', 'badvalue']) {
      const r = await refusal(gw.gateway.port, connect(`mode=${mode}`));
      assert.equal(r.status, 503, mode);
      assert.equal((JSON.parse(r.body) as { error: string }).error, 'upgrade_hook_failed', mode);
    }
    assert.equal(await failures(), before + 3, 'each failure is counted (and logged, at most once per 10 s)');
    const ws = await Client.open(gw.ws(t.node.podId, 'user=still-up'));
    assert.equal((await ws.json()).type, 'welcome');
    await ws.end();
  });

  test('no answer within SOCKET_UPGRADE_TIMEOUT_MS: 503 upgrade_hook_timeout, and the hook is told through its signal', async () => {
    const before = aborted.length;
    const t0 = Date.now();
    const r = await refusal(gw.gateway.port, connect('mode=hang'));
    assert.equal(r.status, 503);
    assert.equal((JSON.parse(r.body) as { error: string }).error, 'upgrade_hook_timeout');
    assert.ok(Date.now() - t0 >= TIMEOUT_MS - 20, 'answered before the timeout');
    await waitFor(() => aborted.length > before);
    assert.match(String((aborted.at(-1) as Error).message), /SOCKET_UPGRADE_TIMEOUT_MS/);
  });

  test('a client that leaves while the hook runs: the hook is aborted, nothing is written, no crash', async () => {
    const before = aborted.length;
    const s = net.connect(t.node.port, '127.0.0.1');
    s.on('error', () => undefined);
    s.write(upgradeRequest('/ws/connect?mode=hang'));
    await waitFor(() => seen.at(-1)?.query.get('mode') === 'hang' && !seen.at(-1)!.signal.aborted);
    s.destroy();
    await waitFor(() => aborted.length > before);
    assert.match(String((aborted.at(-1) as Error).message), /client closed/);
    // A slow hook whose client leaves: its late accept is dropped without touching the aborted response.
    const s2 = net.connect(t.node.port, '127.0.0.1');
    s2.on('error', () => undefined);
    s2.write(upgradeRequest('/ws/connect?mode=slow'));
    await waitFor(() => seen.at(-1)?.query.get('mode') === 'slow');
    s2.destroy();
    await sleep(TIMEOUT_MS);
    const metrics = await (await fetch(`${t.admin}/metrics`)).text();
    assert.match(metrics, /rtc_socket_upgrades_rejected_total\{[^}]*error="client_aborted"[^}]*\} [2-9]/);
    const ws = await Client.open(`${t.url}?user=after-abort`);
    assert.equal((await ws.json()).type, 'welcome');
    await ws.end();
  });
});

test('outcomeOf: the contract of the return value', () => {
  assert.deepEqual(outcomeOf(undefined), { kind: 'accept', data: undefined });
  assert.deepEqual(outcomeOf({ data: 0 }), { kind: 'accept', data: 0 });
  for (const bad of [true, 'yes', 7, {}, { refuse: 200 }, { refuse: '401' }]) assert.equal(outcomeOf(bad).kind, 'failed', JSON.stringify(bad));
  const long = outcomeOf(refuseUpgrade(401, { message: 'm'.repeat(1000), retryAfterS: -1 }));
  assert.equal(long.kind, 'refuse');
  if (long.kind === 'refuse') {
    assert.equal((JSON.parse(long.reply.body) as { message: string }).message.length, 200);
    assert.equal(long.reply.headers, undefined, 'a negative retryAfterS sets no header');
  }
});
