/**
 * A resolver answer the gateway cannot dial (port 70000, a hostname, a throw, a rejection) answers 502
 * upstream_unreachable to that one client while every other proxied connection keeps relaying; every 502
 * and 504 is logged once with pod id, address, reason and X-Request-Id; relayed bytes count while live.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import WebSocket from 'ws';
import { Resolved, type Resolution, type Resolver, type Upstream } from '../gateway/resolvers/resolver.js';
import { rawExchange, startGateway, startRawUpstream, startWsUpstream, upgradeRequest, waitFor, type RawUpstream, type TestGateway, type WsUpstream } from './support/upstream.js';
import { freePort } from './support/net.js';

/** A resolver answering from a table; `throws`/`rejects` misbehave the way a buggy backend could. */
function tableResolver(table: Map<string, Upstream | 'throws' | 'rejects' | 'dns-timeout'>): Resolver {
  return {
    kind: 'registry',
    resolve(podId): Resolution | Promise<Resolution> {
      const entry = table.get(podId);
      if (entry === undefined) return Resolved.NOT_FOUND;
      if (entry === 'throws') throw new Error('resolver bug');
      if (entry === 'rejects') return Promise.reject(new Error('resolver bug (async)'));
      if (entry === 'dns-timeout') return Promise.resolve(Resolved.TIMEOUT);
      return entry;
    },
    ready: async () => undefined,
    close: async () => undefined,
  };
}

function metric(text: string, name: string, label: string): number {
  const m = new RegExp(`^${name}\\{${label}[^}]*\\} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

describe('connect failures', () => {
  let up: WsUpstream;
  let hang: RawUpstream;
  let gw: TestGateway;
  let refusedPort: number;

  before(async () => {
    up = await startWsUpstream({ hello: 'hi' });
    hang = await startRawUpstream('hang');
    refusedPort = await freePort();
    const table = new Map<string, Upstream | 'throws' | 'rejects' | 'dns-timeout'>([
      ['ok', { host: '127.0.0.1', port: up.port }],
      ['bad-port', { host: '127.0.0.1', port: 70000 }],
      ['port-zero', { host: '127.0.0.1', port: 0 }],
      ['fractional-port', { host: '127.0.0.1', port: 80.5 }],
      ['hostname', { host: 'pod.example.invalid', port: up.port }],
      ['empty-host', { host: '', port: up.port }],
      ['throws', 'throws'],
      ['rejects', 'rejects'],
      ['refused', { host: '127.0.0.1', port: refusedPort }],
      ['hang', { host: '127.0.0.1', port: hang.port }],
      ['dns-timeout', 'dns-timeout'],
    ]);
    gw = await startGateway({ GATEWAY_UPSTREAM_TIMEOUT_MS: '300' }, { resolver: tableResolver(table) });
  });
  after(async () => {
    await gw.gateway.close();
    await Promise.all([up.close(), hang.close()]);
  });

  test('an undialable answer gets 502 upstream_unreachable for that client; a live connection keeps relaying; each 502/504 is logged once', async () => {
    const live = new WebSocket(gw.ws('ok'));
    await once(live, 'message');
    const cases: [string, number, string, string | null][] = [
      ['bad-port', 502, 'bad_address', '127.0.0.1:70000'],
      ['port-zero', 502, 'bad_address', '127.0.0.1:0'],
      ['fractional-port', 502, 'bad_address', '127.0.0.1:80.5'],
      ['hostname', 502, 'bad_address', `pod.example.invalid:${up.port}`],
      ['empty-host', 502, 'bad_address', `:${up.port}`],
      ['throws', 502, 'resolve_failed', null],
      ['rejects', 502, 'resolve_failed', null],
      ['refused', 502, 'connect_error', `127.0.0.1:${refusedPort}`],
      ['hang', 504, 'timeout', `127.0.0.1:${hang.port}`],
      ['dns-timeout', 504, 'resolve_failed', null],
    ];
    for (const [podId, status, reason, address] of cases) {
      const requestId = `req-${podId}`;
      const r = await rawExchange(gw.gateway.port, upgradeRequest(`/ws/${podId}/connect`, `X-Request-Id: ${requestId}\r\n`));
      assert.equal(r.status, status, `${podId}: ${r.text.slice(0, 120)}`);
      assert.equal((JSON.parse(r.body) as { error: string }).error, status === 502 ? 'upstream_unreachable' : 'upstream_timeout', podId);
      // The gateway survived and the proxied connection still relays.
      live.send(`after ${podId}`);
      const [echo] = await once(live, 'message');
      assert.equal(String(echo), `after ${podId}`);
      const logged = gw.lines.filter((l) => l.requestId === requestId);
      assert.equal(logged.length, 1, `${podId}: ${JSON.stringify(logged)}`);
      const line = logged[0]!;
      assert.equal(line.podId, podId);
      assert.equal(line.status, status);
      assert.equal(line.reason, reason);
      assert.equal(line.address, address);
      if (podId === 'refused') assert.equal(line.code, 'ECONNREFUSED');
    }
    assert.equal((await fetch(`${gw.base}/healthz`)).status, 200);
    // Refusals that are the client's business (404 pod_not_found) are not logged as pod failures.
    const before = gw.lines.length;
    assert.equal((await rawExchange(gw.gateway.port, upgradeRequest('/ws/unknown/connect'))).status, 404);
    assert.equal(gw.lines.slice(before).filter((l) => l.podId === 'unknown').length, 0);
    live.terminate();
  });

  test('rtc_gateway_relayed_bytes_total counts a live connection before it closes', async () => {
    const scrape = async () => (await fetch(`${gw.admin}/metrics`)).text();
    const t0 = await scrape();
    const in0 = metric(t0, 'rtc_gateway_relayed_bytes_total', 'direction="client_to_pod"');
    const out0 = metric(t0, 'rtc_gateway_relayed_bytes_total', 'direction="pod_to_client"');
    const ws = new WebSocket(gw.ws('ok'));
    await once(ws, 'message');
    const payload = Buffer.alloc(64 * 1024, 1);
    ws.send(payload);
    await once(ws, 'message');
    const t1 = await scrape();
    const in1 = metric(t1, 'rtc_gateway_relayed_bytes_total', 'direction="client_to_pod"');
    const out1 = metric(t1, 'rtc_gateway_relayed_bytes_total', 'direction="pod_to_client"');
    assert.ok(in1 - in0 >= payload.length, `client_to_pod grew by ${in1 - in0} while the connection is open`);
    assert.ok(out1 - out0 >= payload.length, `pod_to_client grew by ${out1 - out0} while the connection is open`);
    // Closing adds only what was not counted yet: nothing is counted twice.
    ws.close();
    await once(ws, 'close');
    await waitFor(() => gw.gateway.connections() === 0);
    const t2 = await scrape();
    const in2 = metric(t2, 'rtc_gateway_relayed_bytes_total', 'direction="client_to_pod"');
    assert.ok(in2 - in1 < 1024, `closing added ${in2 - in1} bytes already counted`);
  });
});
