/**
 * The gateway's request-head parser against Node's own llhttp (an `http.Server` with `insecureHTTPParser: false`
 * and the same `maxHeaderSize`), case by case over test/fixtures/request-heads.json: a head llhttp refuses is
 * refused by the gateway too; a head the gateway refuses that llhttp accepts must be listed there as `stricter`,
 * with the reason (and a listed one must really be stricter). Then the real gateway gets every head: none that
 * either parser refuses ever reaches a pod, and the gateway's own refusals carry their status and JSON code.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { examineHead, type HeadStep } from '../gateway/request-head.js';
import { Answer } from '../gateway/respond.js';
import { pod, startGateway, startWsUpstream, upgradeRequest, waitFor, type TestGateway, type WsUpstream } from './support/upstream.js';

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
/** llhttp's decision per case name, from the first suite, for the second. */
const nodeDecisions = new Map<string, NodeDecision>();

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
      nodeDecisions.set(c.name, n);
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

describe('request heads through the real gateway', () => {
  let up: WsUpstream;
  let gw: TestGateway;
  before(async () => {
    up = await startWsUpstream({ hello: 'hi' });
    gw = await startGateway({ GATEWAY_HANDSHAKE_TIMEOUT_MS: '300' });
    await gw.registry.heartbeat(pod('p', up.port));
  });
  after(async () => {
    await gw.gateway.close();
    await up.close();
  });

  /** Send `buf` and collect the answer until the gateway closes (or, for a proxied upgrade, until its 101). */
  async function exchange(buf: Buffer): Promise<string> {
    const s = net.connect(gw.gateway.port, '127.0.0.1');
    s.on('error', () => undefined);
    let text = '';
    s.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (text.startsWith('HTTP/1.1 101 ')) s.destroy();
      // A complete answer on a keep-alive connection: nothing more comes.
      const end = text.indexOf('\r\n\r\n');
      const length = /\r\ncontent-length: *(\d+)\r\n/i.exec(text.slice(0, end + 2));
      if (end !== -1 && length && text.length >= end + 4 + Number(length[1])) s.destroy();
    });
    s.write(buf);
    await once(s, 'close');
    return text;
  }

  test('every head the gateway refuses is answered with its status and code; none that either parser refuses reaches the pod', async () => {
    assert.equal(nodeDecisions.size, CASES.length, 'the llhttp suite ran first');
    const problems: string[] = [];
    let proxied = 0;
    for (const c of CASES) {
      const buf = bytes(c);
      const step = examineHead(buf, 0, LIMIT);
      const before = up.seen.length;
      const text = await exchange(buf);
      const reached = up.seen.length > before;
      if (reached) proxied++;
      // An incomplete head waits for GATEWAY_HANDSHAKE_TIMEOUT_MS.
      const error = step.kind === 'refuse' ? step.refusal.error : step.kind === 'more' ? Answer.REQUEST_TIMEOUT : undefined;
      if (error) {
        const body = text.slice(text.indexOf('\r\n\r\n') + 4);
        if (!text.startsWith(`HTTP/1.1 ${error.status} `) || !body.includes(`"error":"${error.code}"`)) problems.push(`${c.name}: expected ${error.status} ${error.code}, got ${JSON.stringify(text.slice(0, 60))}`);
      }
      const refusedSomewhere = error !== undefined || nodeDecisions.get(c.name) === 'refused';
      if (reached && refusedSomewhere) problems.push(`${c.name}: refused by a parser, yet it reached the pod`);
      if (c.name === 'valid upgrade' && !text.startsWith('HTTP/1.1 101 ')) problems.push(`${c.name}: not proxied: ${JSON.stringify(text.slice(0, 60))}`);
    }
    assert.deepEqual(problems, []);
    assert.ok(proxied > 10, `only ${proxied} heads reached the pod`);
  });

  test('after a plain request on a keep-alive connection, an upgrade on it is proxied under the same upgrade rules', async () => {
    const after = async (second: string) => {
      const s = net.connect(gw.gateway.port, '127.0.0.1');
      s.on('error', () => undefined);
      let text = '';
      s.on('data', (d: Buffer) => {
        text += d.toString('latin1');
        if (text.includes('HTTP/1.1 101 ')) s.destroy();
      });
      s.write('GET /healthz HTTP/1.1\r\nHost: gw.test\r\n\r\n');
      await waitFor(() => text.includes('"status":"ok"'));
      const before = up.seen.length;
      s.write(second);
      await once(s, 'close');
      return { answer: text.slice(text.indexOf('HTTP/1.1 ', 1)), reached: up.seen.length > before };
    };
    const ok = await after(upgradeRequest('/ws/p/connect'));
    assert.match(ok.answer, /^HTTP\/1\.1 101 /);
    assert.equal(ok.reached, true);
    const chunked = await after(upgradeRequest('/ws/p/connect', 'Transfer-Encoding: chunked\r\n') + '0\r\n\r\n');
    assert.match(chunked.answer, /^HTTP\/1\.1 400 /);
    assert.match(chunked.answer, /"error":"bad_request"/);
    assert.equal(chunked.reached, false);
    const twoHosts = await after(upgradeRequest('/ws/p/connect', 'Host: other.test\r\n'));
    assert.match(twoHosts.answer, /^HTTP\/1\.1 400 /);
    assert.equal(twoHosts.reached, false);
  });
});
