/**
 * Every way a proxied connection can end ends both sockets: 5,000 connections per way, then the open
 * descriptor count returns to its baseline. And running out of descriptors never crashes the gateway.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync } from 'node:fs';
import net from 'node:net';
import { once } from 'node:events';
import {
  openFds, pod, startGateway, startRawUpstream, startWsUpstream, upgradeRequest, waitFor,
  type RawUpstream, type TestGateway, type WsUpstream,
} from './support/upstream.js';

const PER_WAY = 5000;
const CONCURRENCY = 500;
/** The timeout a test is about; any other is LONG_MS. */
const SHORT_MS = '100';
const LONG_MS = '60000';
/** The test pods re-register this often (their records say a 60 s heartbeat). */
const BEAT_EVERY_MS = 10_000;

/** Run `fn` `n` times, `CONCURRENCY` at a time. */
async function many(n: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < n) await fn(next++);
  }));
}

/** One client connection; `script` drives it; resolves when the socket has closed. */
function client(port: number, script: (s: net.Socket, onHead: (cb: (status: number) => void) => void) => void): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    let text = '';
    let headCb: ((status: number) => void) | undefined;
    s.on('error', () => undefined);
    s.on('data', (d) => {
      if (headCb === undefined) return;
      text += d.toString('latin1');
      if (text.includes('\r\n')) {
        const cb = headCb;
        headCb = undefined;
        cb(Number(text.slice(9, 12)));
      }
    });
    s.on('close', () => resolve());
    script(s, (cb) => (headCb = cb));
  });
}

describe('gateway robustness', () => {
  let gw: TestGateway;
  let ws: WsUpstream;
  const raw: Record<string, RawUpstream> = {};
  let baseline = 0;
  const statuses = new Map<string, Map<number, number>>();
  const count = (way: string, status: number) => {
    const m = statuses.get(way) ?? new Map<number, number>();
    m.set(status, (m.get(status) ?? 0) + 1);
    statuses.set(way, m);
  };

  // Pods a test gateway routes to, heartbeated like real pods for as long as the file runs (minutes under load).
  const pods: Array<[string, number]> = [];
  let beats: NodeJS.Timeout | undefined;
  const gateways: TestGateway[] = [];
  const beatAll = () => Promise.all(gateways.flatMap((g) => pods.map(([id, p]) => g.registry.heartbeat(pod(id, p)))));
  /** A gateway routing to every pod; timeouts are long unless a test is about them, so load cannot turn an answer into 504/408. */
  async function gatewayFor(env: Record<string, string> = {}): Promise<TestGateway> {
    const g = await startGateway({ GATEWAY_UPSTREAM_TIMEOUT_MS: LONG_MS, GATEWAY_HANDSHAKE_TIMEOUT_MS: LONG_MS, ...env });
    gateways.push(g);
    await beatAll();
    return g;
  }
  async function closeGateway(g: TestGateway): Promise<void> {
    gateways.splice(gateways.indexOf(g), 1);
    await g.gateway.close();
  }

  before(async () => {
    ws = await startWsUpstream({ hello: 'hi' });
    for (const b of ['hang', 'close', 'close-after-101', 'half-close-after-101', 'open-after-101'] as const) raw[b] = await startRawUpstream(b);
    const dead = net.createServer().listen(0, '127.0.0.1');
    await once(dead, 'listening');
    const deadPort = (dead.address() as net.AddressInfo).port;
    await new Promise((r) => dead.close(r));
    pods.push(['echo', ws.port], ['refused', deadPort], ...Object.entries(raw).map(([b, u]): [string, number] => [b, u.port]));
    beats = setInterval(() => void beatAll(), BEAT_EVERY_MS);
    gw = await gatewayFor();
    await new Promise((r) => setTimeout(r, 20));
    baseline = openFds();
  });
  after(async () => {
    clearInterval(beats);
    await gw.gateway.close();
    await ws.close();
    for (const u of Object.values(raw)) await u.close();
  });

  async function backToBaseline(way: string, g: TestGateway = gw): Promise<void> {
    await waitFor(() => openFds() <= baseline, 10_000).catch(() => undefined);
    assert.equal(g.gateway.connections(), 0, `${way}: proxied connections left`);
    const fds = openFds();
    assert.ok(fds <= baseline, `${way}: ${fds} descriptors open, baseline ${baseline}`);
  }

  const half = PER_WAY / 2;
  const port = () => gw.gateway.port;

  test(`client aborts mid-handshake (${PER_WAY}: half before its head is complete, half while the pod is slow)`, async () => {
    await many(PER_WAY, (i) => client(port(), (s) => {
      if (i < half) s.write('GET /ws/echo/connect HTTP/1.1\r\nHost: x\r\nUpgr', () => s.destroy());
      else s.write(upgradeRequest('/ws/hang/connect'), () => setTimeout(() => s.destroy(), 5));
    }));
    // The pod's answer never comes and its timeout is long: only the client's leaving can end these at once.
    await backToBaseline('client aborts');
    // Those the gateway read a head from before the client left (on a loaded machine not all) are 499s.
    const m = /^rtc_gateway_upgrades_total\{code="499",role="gateway"\} (\d+)$/m.exec(await (await fetch(`${gw.admin}/metrics`)).text());
    assert.ok(m && Number(m[1]) > 0 && Number(m[1]) <= half, `499s: ${m?.[1]}`);
  });

  test(`upstream refuses (${PER_WAY} → 502)`, async () => {
    await many(PER_WAY, () => client(port(), (s, head) => {
      head((st) => count('refused', st));
      s.write(upgradeRequest('/ws/refused/connect'));
    }));
    assert.deepEqual([...statuses.get('refused')!], [[502, PER_WAY]]);
    await backToBaseline('upstream refuses');
  });

  test(`upstream closes (${PER_WAY}: half before answering → 502, half after its 101)`, async () => {
    await many(PER_WAY, (i) => client(port(), (s, head) => {
      head((st) => count('upstream closes', st));
      s.write(upgradeRequest(i < half ? '/ws/close/connect' : '/ws/close-after-101/connect'));
    }));
    const m = statuses.get('upstream closes')!;
    assert.equal((m.get(502) ?? 0) + (m.get(101) ?? 0), PER_WAY, JSON.stringify([...m]));
    assert.equal(m.get(502), half);
    await backToBaseline('upstream closes');
  });

  test(`client closes after the upgrade (${PER_WAY}: half abruptly, half after a message)`, async () => {
    await many(PER_WAY, (i) => client(port(), (s, head) => {
      head((st) => {
        count('client closes', st);
        if (i < half) s.destroy();
        else s.write(Buffer.from([0x81, 0x82, 0, 0, 0, 0, 0x68, 0x69]), () => s.destroy());
      });
      s.write(upgradeRequest('/ws/echo/connect'));
    }));
    assert.deepEqual([...statuses.get('client closes')!], [[101, PER_WAY]]);
    await backToBaseline('client closes');
  });

  test(`either side half-closes (${PER_WAY}: half the client sends FIN, half the pod does)`, async () => {
    await many(PER_WAY, (i) => client(port(), (s, head) => {
      head((st) => {
        count('half-close', st);
        if (i < half) s.end();
      });
      s.write(upgradeRequest(i < half ? '/ws/open-after-101/connect' : '/ws/half-close-after-101/connect'));
    }));
    assert.deepEqual([...statuses.get('half-close')!], [[101, PER_WAY]]);
    await backToBaseline('half-close');
  });

  test(`slow handshake (${PER_WAY}: half a slowloris client → 408, half a slow pod → 504)`, async () => {
    // Each timeout on its own gateway, the other one long: a loaded machine only makes an answer later, never another.
    const slowClient = await gatewayFor({ GATEWAY_HANDSHAKE_TIMEOUT_MS: SHORT_MS });
    const slowPod = await gatewayFor({ GATEWAY_UPSTREAM_TIMEOUT_MS: SHORT_MS });
    await many(PER_WAY, (i) => client((i < half ? slowClient : slowPod).gateway.port, (s, head) => {
      head((st) => count('slow', st));
      s.resume();
      if (i < half) s.write('GET /ws/echo/connect HTTP/1.1\r\nHost: x\r\n');
      else s.write(upgradeRequest('/ws/hang/connect'));
    }));
    const m = statuses.get('slow')!;
    assert.equal(m.get(408), half, JSON.stringify([...m]));
    assert.equal(m.get(504), half, JSON.stringify([...m]));
    for (const g of [slowClient, slowPod]) assert.equal(g.gateway.connections(), 0, 'slow handshake: proxied connections left');
    await closeGateway(slowClient);
    await closeGateway(slowPod);
    await backToBaseline('slow handshake');
  });

  test('out of descriptors: 503 on upstream connect, accept failures closed, existing connections keep working, recovers', async () => {
    // Its own gateway with default (long) handshake timeouts.
    const gw2 = await gatewayFor();
    await new Promise((r) => setTimeout(r, 20));
    const base2 = openFds();
    const port = () => gw2.gateway.port;
    // A proxied connection made before the exhaustion.
    const a = net.connect(port(), '127.0.0.1');
    a.on('error', () => undefined);
    let aText = '';
    a.on('data', (d) => (aText += d.toString('latin1')));
    a.write(upgradeRequest('/ws/echo/connect'));
    await waitFor(() => aText.includes('hi'));
    // A client connected (and accepted) before the exhaustion that asks only afterwards.
    const b = net.connect(port(), '127.0.0.1');
    b.on('error', () => undefined);
    let bText = '';
    b.on('data', (d) => (bText += d.toString('latin1')));
    await once(b, 'connect');
    await new Promise((r) => setTimeout(r, 50));

    const hog: number[] = [];
    try {
      for (;;) hog.push(openSync('/dev/null', 'r'));
    } catch (err) {
      assert.equal((err as NodeJS.ErrnoException).code, 'EMFILE');
    }
    try {
      b.write(upgradeRequest('/ws/echo/connect'));
      await waitFor(() => bText.includes('\r\n\r\n'));
      assert.match(bText, /^HTTP\/1\.1 503 /);
      assert.match(bText, /"gateway_overloaded"/);

      // One descriptor for a new client: the gateway's accept() then fails with EMFILE.
      closeSync(hog.pop()!);
      const c = net.connect(port(), '127.0.0.1');
      let cText = '';
      c.on('data', (d) => (cText += d.toString('latin1')));
      c.on('error', () => undefined);
      c.write(upgradeRequest('/ws/echo/connect'));
      await once(c, 'close');
      assert.ok(!cText.startsWith('HTTP/1.1 101'), 'a connection was proxied without descriptors');

      // The existing connection still relays (masked "ping" text frame → echo).
      aText = '';
      a.write(Buffer.from([0x81, 0x84, 0, 0, 0, 0, 0x70, 0x69, 0x6e, 0x67]));
      await waitFor(() => aText.includes('ping'));
    } finally {
      for (const fd of hog) closeSync(fd);
    }
    // Recovered.
    const d = net.connect(port(), '127.0.0.1');
    let dText = '';
    d.on('data', (x) => (dText += x.toString('latin1')));
    d.on('error', () => undefined);
    d.write(upgradeRequest('/ws/echo/connect'));
    await waitFor(() => dText.includes('hi'));
    assert.match(dText, /^HTTP\/1\.1 101 /);
    for (const s of [a, b, d]) s.destroy();
    await waitFor(() => openFds() <= base2 && gw2.gateway.connections() === 0, 10_000);
    await closeGateway(gw2);
  });
});
