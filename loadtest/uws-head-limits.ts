/**
 * `node --import tsx loadtest/uws-head-limits.ts`: the largest WebSocket upgrade request head the pinned
 * uWebSockets.js build accepts, measured against a real socket node on loopback, in three shapes:
 * one large header in one write, many small headers in one write, and one large header split across TCP
 * segments (512-byte writes with a pause between them, as a head larger than one MSS arrives from a real
 * network). Binary search per shape; prints a table and the JSON. GATEWAY_MAX_HEADER_BYTES and
 * POD_MAX_HEADER_LINES (src/constants.ts) are set from these numbers.
 */
import net from 'node:net';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { createMemoryRegistry } from '../src/registry/index.js';
import { start } from '../socket/index.js';

const SEGMENT_BYTES = 512;
const SEGMENT_GAP_MS = 3;
const ANSWER_WAIT_MS = 2000;

/** A head of exactly `bytes` bytes (one large X-Pad header) or with `extra` small headers. */
function head(opts: { bytes?: number; extra?: number }): string {
  const base = (more: string) => `GET /ws/connect HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${more}\r\n`;
  if (opts.extra !== undefined) {
    let more = '';
    for (let i = 0; i < opts.extra; i++) more += `X-H${i}: v\r\n`;
    return base(more);
  }
  const fixed = base('X-Pad: \r\n').length;
  return base(`X-Pad: ${'x'.repeat(Math.max(0, opts.bytes! - fixed))}\r\n`);
}

/** Send `text` (in segments when `split`); true when the node answers 101. */
function accepted(port: number, text: string, split: boolean): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.setNoDelay(true);
    let got = '';
    const done = (ok: boolean) => {
      clearTimeout(timer);
      s.destroy();
      resolve(ok);
    };
    // Too many headers: this build neither answers nor closes, so no answer within the wait is a refusal.
    const timer = setTimeout(() => done(false), ANSWER_WAIT_MS);
    s.on('error', () => done(false));
    s.on('close', () => done(got.startsWith('HTTP/1.1 101')));
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (got.includes('\r\n')) done(got.startsWith('HTTP/1.1 101'));
    });
    if (!split) s.write(text, 'latin1');
    else {
      let at = 0;
      const step = () => {
        if (s.destroyed || at >= text.length) return;
        s.write(text.slice(at, at + SEGMENT_BYTES), 'latin1');
        at += SEGMENT_BYTES;
        setTimeout(step, SEGMENT_GAP_MS);
      };
      step();
    }
  });
}

/** Largest n in [lo, hi) for which `ok(n)` holds, given ok(lo) and not ok(hi). */
async function largest(lo: number, hi: number, ok: (n: number) => Promise<boolean>): Promise<number> {
  if (!(await ok(lo))) throw new Error(`even ${lo} is refused`);
  if (await ok(hi)) throw new Error(`${hi} is still accepted: raise the search bound`);
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (await ok(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}

const registry = createMemoryRegistry();
const config = loadConfig({ SOCKET_PORT: '0', ADMIN_PORT: '0', POD_IP: '127.0.0.1', POD_NAME: 'uws-head-limits', LOG_LEVEL: 'silent' }, 'socket');
const node = await start(config, { logger: createLogger('silent'), registry, host: '127.0.0.1' });
try {
  const oneWrite = await largest(1024, 1024 * 1024, (n) => accepted(node.port, head({ bytes: n }), false));
  const split = await largest(1024, 64 * 1024, (n) => accepted(node.port, head({ bytes: n }), true));
  const extra = await largest(0, 200, (n) => accepted(node.port, head({ extra: n }), false));
  const headerLines = extra + 5; // Host, Upgrade, Connection, Sec-WebSocket-Key, Sec-WebSocket-Version
  const manyBytes = head({ extra }).length;
  const result = { oneLargeHeaderOneWriteBytes: oneWrite, oneLargeHeaderSplitBytes: split, maxHeaderLines: headerLines, maxHeaderLinesHeadBytes: manyBytes };
  console.log(`largest head accepted, one large header in one write:        ${oneWrite} bytes`);
  console.log(`largest head accepted, one large header in ${SEGMENT_BYTES}-byte segments: ${split} bytes`);
  console.log(`most header lines accepted (small headers, one write):     ${headerLines} (a head of ${manyBytes} bytes)`);
  console.log(JSON.stringify(result));
} finally {
  await node.close();
  await registry.close();
}
