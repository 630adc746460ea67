/** The strict request-head parser on its own: what it reads out of a head, where a head ends, who answers it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { examineHead, findHeadEnd, HEAD_BARE_LF, HEAD_INCOMPLETE, headVerdict, isRefusal, parseRequestHead, type RequestHead } from '../gateway/request-head.js';
import { Answer } from '../gateway/respond.js';
import { upgradeRequest } from './support/upstream.js';

const LIMIT = 4096;
const parse = (head: string): RequestHead => {
  const buf = Buffer.from(head, 'latin1');
  const r = parseRequestHead(buf, findHeadEnd(buf, 0));
  assert.ok(!isRefusal(r), `refused: ${isRefusal(r) ? r.reason : ''}`);
  return r;
};

test('a WebSocket upgrade: method, raw target, header pairs in order with values trimmed, lower-cased map joining repeats', () => {
  const h = parse('GET /ws/p/connect?a=%2F HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nX-Forwarded-For: 1.1.1.1\r\nx-forwarded-for:\t 2.2.2.2 \t\r\nX-Empty:\r\n\r\n');
  assert.equal(h.method, 'GET');
  assert.equal(h.url, '/ws/p/connect?a=%2F');
  assert.equal(h.strictLine, true);
  assert.deepEqual(h.rawHeaders, ['Host', 'gw', 'Upgrade', 'websocket', 'Connection', 'keep-alive, Upgrade', 'X-Forwarded-For', '1.1.1.1', 'x-forwarded-for', '2.2.2.2', 'X-Empty', '']);
  assert.equal(h.headers['x-forwarded-for'], '1.1.1.1, 2.2.2.2');
  assert.equal(h.headers.host, 'gw');
  assert.equal(h.hostFields, 1);
  assert.equal(h.upgrade, true);
  assert.deepEqual(headVerdict(h), { kind: 'upgrade' });
});

test('an upgrade needs both Upgrade and the upgrade token in Connection (as llhttp decides)', () => {
  assert.equal(parse('GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n').upgrade, false);
  assert.equal(parse('GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n\r\n').upgrade, false);
  assert.equal(parse('GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgraded\r\n\r\n').upgrade, false);
  assert.equal(parse('GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: close\r\nConnection: UPGRADE\r\n\r\n').upgrade, true);
});

test('the request line is described, not refused: plain requests and other methods are for Node', () => {
  for (const [line, method, strict] of [
    ['GET /x HTTP/1.1', 'GET', true],
    ['GET /x HTTP/1.0', 'GET', false],
    ['GET http://a/x HTTP/1.1', 'GET', false],
    ['GET * HTTP/1.1', 'GET', false],
    ['GET /x  HTTP/1.1', 'GET', false],
    ['POST /x HTTP/1.1', 'POST', true],
    ['get /x HTTP/1.1', 'get', true],
    ['G@T /x HTTP/1.1', '', false],
  ] as const) {
    const h = parse(`${line}\r\nHost: x\r\n\r\n`);
    assert.equal(h.method, method, line);
    assert.equal(h.strictLine, strict, line);
    assert.deepEqual(headVerdict(h), { kind: 'http' }, `${line}: not an upgrade`);
  }
  const post = parse(upgradeRequest('/ws/p/connect').replace(/^GET/, 'POST'));
  assert.deepEqual(headVerdict(post), { kind: 'http' }, "a POST upgrade is Node's (405)");
});

test('the upgrade rules: strict line, no body, exactly one non-empty Host', () => {
  const verdict = (head: string) => {
    const v = headVerdict(parse(head));
    return v.kind === 'refuse' ? v.refusal.error : v.kind;
  };
  assert.equal(verdict(upgradeRequest('/ws/p/connect')), 'upgrade');
  assert.equal(verdict(upgradeRequest('/ws/p/connect', 'Content-Length: 0\r\n')), 'upgrade');
  assert.equal(verdict(upgradeRequest('/ws/p/connect').replace('HTTP/1.1', 'HTTP/1.0')), Answer.BAD_UPGRADE_LINE);
  assert.equal(verdict(upgradeRequest('http://gw/ws/p/connect')), Answer.BAD_UPGRADE_LINE);
  assert.equal(verdict(upgradeRequest('/ws/p/connect', 'Content-Length: 1\r\n')), Answer.UPGRADE_WITH_BODY);
  assert.equal(verdict(upgradeRequest('/ws/p/connect', 'Transfer-Encoding: identity\r\n')), Answer.UPGRADE_WITH_BODY);
  assert.equal(verdict(upgradeRequest('/ws/p/connect', 'Host: again\r\n')), Answer.BAD_HOST);
  assert.equal(verdict(upgradeRequest('/ws/p/connect').replace('Host: gw.test', 'Host: ')), Answer.BAD_HOST);
  assert.equal(verdict(upgradeRequest('/ws/p/connect').replace('Host: gw.test\r\n', '')), Answer.BAD_HOST);
});

test('findHeadEnd: the end of the head, a bare LF at once, and nothing more until the blank line', () => {
  const head = Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\nBODY');
  assert.equal(findHeadEnd(head, 0), head.length - 4);
  assert.equal(findHeadEnd(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n'), 0), HEAD_INCOMPLETE);
  assert.equal(findHeadEnd(Buffer.from('GET / HTTP/1.1\nHost'), 0), HEAD_BARE_LF);
  assert.equal(findHeadEnd(Buffer.from('\n'), 0), HEAD_BARE_LF);
});

test('examineHead fed in every split gives the same step as the whole head', () => {
  const head = Buffer.from(upgradeRequest('/ws/p/connect') + 'EARLY');
  const whole = examineHead(head, 0, LIMIT);
  assert.equal(whole.kind, 'upgrade');
  assert.equal(whole.kind === 'upgrade' && head.subarray(whole.end).toString(), 'EARLY');
  for (let cut = 1; cut < head.length - 5; cut++) {
    assert.equal(examineHead(head.subarray(0, cut), 0, LIMIT).kind, 'more', `cut at ${cut}`);
    const step = examineHead(head, cut, LIMIT);
    assert.deepEqual(step, whole, `resumed at ${cut}`);
  }
});

test('examineHead: too large is 431 as soon as the limit is passed, complete or not', () => {
  const big = Buffer.from(upgradeRequest('/ws/p/connect', `X-Big: ${'x'.repeat(LIMIT)}\r\n`));
  const step = examineHead(big, 0, LIMIT);
  assert.equal(step.kind === 'refuse' && step.refusal.error, Answer.HEADERS_TOO_LARGE);
  const partial = examineHead(big.subarray(0, LIMIT + 1), 0, LIMIT);
  assert.equal(partial.kind === 'refuse' && partial.refusal.error, Answer.HEADERS_TOO_LARGE);
  assert.equal(examineHead(big.subarray(0, LIMIT), 0, LIMIT).kind, 'more');
});
