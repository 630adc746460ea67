/** Gateway shutdown is paced: 1,000 proxied connections get their 1001 spread over GATEWAY_DRAIN_MS, not at once. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { pod, startGateway, startRawUpstream, upgradeRequest } from './support/upstream.js';

const CONNECTIONS = 1000;
const WINDOW_MS = 3000;
const TENTHS = 10;
/** The plan puts exactly CONNECTIONS / TENTHS into each tenth; timers on 2 shared cores run late, so allow half as much again. */
const TOLERANCE = 0.5;
const OPEN_CONCURRENCY = 100;

/** A raw client through the gateway: resolves once upgraded; `closedAt` is when the gateway's FIN (after its 1001) arrived. */
function connect(port: number, podId: string): Promise<{ closedAt: Promise<number>; socket: net.Socket }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    let upgraded = false;
    socket.on('error', reject);
    const closedAt = new Promise<number>((res) => socket.once('end', () => res(performance.now())));
    socket.on('data', (d: Buffer) => {
      if (upgraded) return;
      text += d.toString('latin1');
      if (!text.includes('\r\n')) return;
      upgraded = true;
      if (text.startsWith('HTTP/1.1 101 ')) resolve({ closedAt, socket });
      else reject(new Error(`upgrade refused: ${text.slice(0, 40)}`));
    });
    socket.write(upgradeRequest(`/ws/${podId}/connect`));
  });
}

test(`SIGTERM closes ${CONNECTIONS} connections spread over GATEWAY_DRAIN_MS with jitter, no more than the planned share (+${TOLERANCE * 100} %) in any tenth`, async (t) => {
  const up = await startRawUpstream('open-after-101');
  const gw = await startGateway({ GATEWAY_DRAIN_MS: String(WINDOW_MS) });
  const clients: { closedAt: Promise<number>; socket: net.Socket }[] = [];
  try {
    await gw.registry.heartbeat(pod('p', up.port));
    await new Promise((r) => setTimeout(r, 20));
    let next = 0;
    await Promise.all(Array.from({ length: OPEN_CONCURRENCY }, async () => {
      while (next < CONNECTIONS) {
        next++;
        clients.push(await connect(gw.gateway.port, 'p'));
      }
    }));
    assert.equal(gw.gateway.connections(), CONNECTIONS);

    const t0 = performance.now();
    const closing = gw.gateway.close();
    const offsets = (await Promise.all(clients.map((c) => c.closedAt))).map((t) => t - t0);
    await closing;

    const perTenth = new Array<number>(TENTHS + 1).fill(0);
    for (const o of offsets) perTenth[Math.min(TENTHS, Math.floor(o / (WINDOW_MS / TENTHS)))]!++;
    const planned = CONNECTIONS / TENTHS;
    const detail = `closes per tenth of the window (last = after it): ${perTenth.join(' ')}`;
    t.diagnostic(detail);
    for (let i = 0; i < TENTHS; i++) {
      assert.ok(perTenth[i]! <= planned * (1 + TOLERANCE), `tenth ${i}: ${perTenth[i]} closes > ${planned * (1 + TOLERANCE)}; ${detail}`);
      assert.ok(perTenth[i]! > 0, `tenth ${i} had no close at all; ${detail}`);
    }
    assert.ok(perTenth[TENTHS]! <= planned * TOLERANCE, `too many closes after the window; ${detail}`);
  } finally {
    for (const c of clients) c.socket.destroy();
    await gw.gateway.close();
    await up.close();
  }
});
