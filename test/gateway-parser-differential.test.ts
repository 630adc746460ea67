/**
 * The gateway's request-head parser against Node's own llhttp (an `http.Server` with `insecureHTTPParser: false`
 * and the same `maxHeaderSize`), case by case over test/fixtures/request-heads.json: a head llhttp refuses is
 * refused by the gateway too; a head the gateway refuses that llhttp accepts must be listed there as `stricter`,
 * with the reason (and a listed one must really be stricter).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { examineHead, type HeadStep } from '../gateway/request-head.js';

interface Case {
  name: string;
  head: string;
  stricter?: string;
}

const CASES = (JSON.parse(readFileSync(new URL('./fixtures/request-heads.json', import.meta.url), 'utf8')) as { cases: Case[] }).cases;
/** GATEWAY_MAX_HEADER_BYTES's default, for both parsers. */
const LIMIT = 4096;
const bytes = (c: Case) => Buffer.from(c.head, 'latin1');

type NodeDecision = 'request' | 'upgrade' | 'refused';
type Ours = 'upgrade' | 'http' | 'refused';

/** The gateway's decision once every byte of `buf` is read (the connection then ends: an incomplete head is refused). */
function ours(buf: Buffer): { decision: Ours; step: HeadStep } {
  const step = examineHead(buf, 0, LIMIT);
  return { decision: step.kind === 'refuse' || step.kind === 'more' ? 'refused' : step.kind, step };
}

/** The same, fed one byte at a time (as a slow client would send it). */
function oursByteByByte(buf: Buffer): Ours {
  for (let n = 1; n <= buf.length; n++) {
    const step = examineHead(buf.subarray(0, n), n - 1, LIMIT);
    if (step.kind === 'refuse') return 'refused';
    if (step.kind !== 'more') return step.kind;
  }
  return 'refused';
}

describe('request-head parser vs llhttp', () => {
  let server: http.Server;
  let port: number;
  let seen: NodeDecision | undefined;
  before(async () => {
    server = http.createServer({ insecureHTTPParser: false, maxHeaderSize: LIMIT });
    server.on('request', (_req, res) => {
      seen ??= 'request';
      res.end();
    });
    server.on('upgrade', (_req, socket: net.Socket) => {
      seen ??= 'upgrade';
      socket.destroy();
    });
    server.on('clientError', (_err, socket: net.Socket) => socket.destroy());
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as net.AddressInfo).port;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  /** Send `buf`, end the connection, and report what Node's server made of it (no event: it refused). */
  async function node(buf: Buffer): Promise<NodeDecision> {
    seen = undefined;
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    s.resume();
    s.end(buf);
    await once(s, 'close');
    return seen ?? 'refused';
  }

  test(`${CASES.length} heads: never looser than llhttp, stricter only where listed`, async () => {
    assert.ok(CASES.length >= 60, 'the corpus shrank');
    const problems: string[] = [];
    let stricter = 0;
    for (const c of CASES) {
      const buf = bytes(c);
      const n = await node(buf);
      const { decision: o, step } = ours(buf);
      const b = oursByteByByte(buf);
      const why = step.kind === 'refuse' ? ` (${step.refusal.reason})` : '';
      if (b !== o) problems.push(`${c.name}: ${o} at once but ${b} byte by byte`);
      // 'http' goes on to Node's parser: its decision is Node's.
      const effective = o === 'http' ? n : o;
      if (n === 'refused' && effective !== 'refused') problems.push(`${c.name}: llhttp refuses, the gateway takes it as ${o}`);
      if (o === 'upgrade' && n !== 'upgrade') problems.push(`${c.name}: the gateway proxies it, Node sees ${n}`);
      const isStricter = n !== 'refused' && o === 'refused';
      if (isStricter) stricter++;
      if (isStricter && !c.stricter) problems.push(`${c.name}: refused${why} though llhttp takes it (${n}), and not listed as stricter`);
      if (!isStricter && c.stricter) problems.push(`${c.name}: listed as stricter, but the gateway ${o}, llhttp ${n}`);
    }
    assert.deepEqual(problems, []);
    assert.equal(stricter, CASES.filter((c) => c.stricter).length);
  });
});
