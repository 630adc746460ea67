/**
 * Limits agree end to end: at the boundary, through a real socket node, a request head the gateway lets
 * through is one the node accepts, and one byte or one header line more is answered 431 by the gateway
 * itself (never a 502/504 that blames the pod). Between gateway and node sits a relay that delivers the
 * gateway's bytes in 512-byte segments, as a real network with a 1,448-byte MSS would split a 4 KiB head
 * (on loopback one write is one segment, and uWebSockets.js then takes heads of ~125 KiB).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { createMemoryRegistry, type Registry } from '../src/registry/index.js';
import { startNode, type TestNode } from './socket-support.js';
import { pod, startGateway, upgradeOutcome, upgradeRequest, type TestGateway } from './support/upstream.js';

const SEGMENT_BYTES = 512;
const SEGMENT_GAP_MS = 2;
/** The gateway's share of a split head is its first bytes; after these the relay just pipes. */
const SPLIT_FIRST_BYTES = 64 * 1024;

/** A TCP relay to `port` that forwards the first bytes from each client in small, separate segments. */
async function startSegmentingRelay(port: number): Promise<{ port: number; accepted(): number; close(): Promise<void> }> {
  let accepted = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((inbound) => {
    accepted++;
    const outbound = net.connect({ port, host: '127.0.0.1', noDelay: true });
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        sockets.delete(s);
        inbound.destroy();
        outbound.destroy();
      });
    }
    outbound.pipe(inbound);
    let sent = 0;
    const queue: Buffer[] = [];
    let pumping = false;
    const pump = () => {
      const chunk = queue.shift();
      if (!chunk) {
        pumping = false;
        return;
      }
      pumping = true;
      const piece = chunk.subarray(0, SEGMENT_BYTES);
      if (chunk.length > SEGMENT_BYTES) queue.unshift(chunk.subarray(SEGMENT_BYTES));
      outbound.write(piece);
      sent += piece.length;
      setTimeout(pump, sent < SPLIT_FIRST_BYTES ? SEGMENT_GAP_MS : 0);
    };
    inbound.on('data', (d: Buffer) => {
      queue.push(d);
      if (!pumping) pump();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    accepted: () => accepted,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** Largest n in [lo, hi] with `ok(n)`, given ok(lo) and not ok(hi). */
async function largest(lo: number, hi: number, ok: (n: number) => Promise<boolean>): Promise<number> {
  assert.ok(await ok(lo), `${lo} should pass`);
  assert.ok(!(await ok(hi)), `${hi} should not pass`);
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (await ok(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}

describe('request head limits through a real socket node', () => {
  let registry: Registry;
  let n: TestNode;
  let relay: Awaited<ReturnType<typeof startSegmentingRelay>>;
  let gw: TestGateway;
  before(async () => {
    registry = createMemoryRegistry();
    n = await startNode({}, { registry });
    relay = await startSegmentingRelay(n.node.port);
    gw = await startGateway({ GATEWAY_UPSTREAM_TIMEOUT_MS: '3000' }, { registry });
    await gw.registry.heartbeat(pod('via-network', relay.port));
  });
  after(async () => {
    await gw.gateway.close();
    await relay.close();
    await n.node.close();
    await registry.close();
  });

  const outcome = (extra: string) => upgradeOutcome(gw.gateway.port, upgradeRequest('/ws/via-network/connect', extra), 8000);
  const pad = (bytes: number) => `X-Pad: ${'x'.repeat(bytes)}\r\n`;
  const lines = (count: number) => Array.from({ length: count }, (_, i) => `X-H${i}: v\r\n`).join('');

  test(`one large header: the largest the gateway passes reaches the node whole, split in ${SEGMENT_BYTES}-byte segments; one byte more is 431 at the gateway`, async () => {
    const limit = gw.config.gatewayMaxHeaderBytes;
    const passes = async (bytes: number) => {
      const r = await outcome(pad(bytes));
      assert.ok(r.status === 101 || (r.status === 431 && r.error === 'headers_too_large'), `pad ${bytes}: ${JSON.stringify(r)}`);
      return r.status === 101;
    };
    const best = await largest(0, limit, passes);
    // The boundary is the limit itself, not somewhere safely below it: the client's head is within its
    // forwarded head's rewrite (a different Host, X-Forwarded-*, X-Request-Id) of GATEWAY_MAX_HEADER_BYTES.
    const clientHead = upgradeRequest('/ws/via-network/connect', pad(best)).length;
    assert.ok(clientHead > limit - 300 && clientHead <= limit, `client head ${clientHead} at the boundary, limit ${limit}`);
    const before = relay.accepted();
    assert.deepEqual(await outcome(pad(best + 1)), { status: 431, error: 'headers_too_large' });
    assert.equal(relay.accepted(), before, 'the refused head was sent towards the pod');
  });

  test('many headers: the most the gateway passes reach the node; one line more is 431 at the gateway, not a hang', async () => {
    const passes = async (count: number) => {
      const r = await outcome(lines(count));
      assert.ok(r.status === 101 || (r.status === 431 && r.error === 'headers_too_large'), `${count} lines: ${JSON.stringify(r)}`);
      return r.status === 101;
    };
    const best = await largest(0, 100, passes);
    const before = relay.accepted();
    const t0 = Date.now();
    assert.deepEqual(await outcome(lines(best + 1)), { status: 431, error: 'headers_too_large' });
    assert.ok(Date.now() - t0 < 1000, 'answered at once');
    assert.equal(relay.accepted(), before, 'the refused head was sent towards the pod');
  });
});
