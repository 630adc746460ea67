/** Gateway pure parts: route parsing (DNS-1123 pod ids), assignment spread, frame boundaries, handshake head, fd budget. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { parseTarget, isPodId } from '../gateway/routes.js';
import { createAssigner } from '../gateway/assign.js';
import { advance, atBoundary, frameSize, type FrameCursor } from '../gateway/frames.js';
import { buildUpstreamRequest, requestIdOf } from '../gateway/handshake.js';
import { effectiveMaxConnections } from '../gateway/index.js';
import { balanceOrders } from '../gateway/workers.js';
import { FD_RESERVE } from '../gateway/constants.js';
import { renderTemplate } from '../gateway/resolvers/dns.js';
import { indexSlices, pickPort } from '../gateway/resolvers/endpointslices.js';
import { isUpstream, Resolved } from '../gateway/resolvers/resolver.js';
import { createCidrMatcher } from '../src/cidr.js';
import { pod } from './support/upstream.js';
import { mulberry32 } from './support/random.js';

test('pod ids are DNS-1123 labels: the nginx regex accepted more, we do not', () => {
  for (const ok of ['a', 'socket-7d9f8-x2x4q', '0', 'a'.repeat(63), 'a-b-c', '9abc']) assert.equal(isPodId(ok), true, ok);
  for (const bad of ['', 'A', 'Socket', '-a', 'a-', 'a'.repeat(64), 'a'.repeat(200), 'a_b', 'a.b', 'a/b', 'é', 'a%2Fb', ' a']) assert.equal(isPodId(bad), false, bad);
});

test('parseTarget: connect routes, fixed routes, invalid ids, unsafe queries', () => {
  const cases: [string, string, Record<string, string>?][] = [
    ['/ws/pod-1/connect', 'connect', { podId: 'pod-1', query: '' }],
    ['/ws/pod-1/connect?token=abc&x=%20y', 'connect', { podId: 'pod-1', query: 'token=abc&x=%20y' }],
    ['/ws/pod-1/connect?a=1#frag', 'connect', { podId: 'pod-1', query: 'a=1' }],
    ['/ws/pod-1/connect#frag', 'connect', { podId: 'pod-1', query: '' }],
    ['/ws/Pod-1/connect', 'invalid_pod_id'],
    ['/ws/-pod/connect', 'invalid_pod_id'],
    ['/ws//connect', 'invalid_pod_id'],
    ['/ws/a/b/connect', 'invalid_pod_id'],
    ['/ws/..%2Fadmin/connect', 'invalid_pod_id'],
    ['/ws/' + 'x'.repeat(64) + '/connect', 'invalid_pod_id'],
    ['/ws/pod/connect?a=\u00e9', 'bad_query'],
    ['/ws/pod/connect?a="', 'connect', { podId: 'pod', query: 'a="' }],
    ['/ws/connect', 'not_found'],
    ['/ws/pod/connect/', 'not_found'],
    ['/ws/pod/connect/../../drain', 'not_found'],
    ['/drain', 'not_found'],
    ['http://evil/ws/pod/connect', 'not_found'],
    ['*', 'not_found'],
    ['/ws/assign', 'assign'],
    ['/ws/assign?x=1', 'assign', { query: 'x=1' }],
    ['/ws/assign?key=room%3A1#frag', 'assign', { query: 'key=room%3A1' }],
    ['/', 'status_page'],
    ['/healthz', 'healthz'],
    ['/readyz', 'readyz'],
    ['/metrics', 'metrics'],
    ['/api/pods', 'api_pods'],
    ['/api/events', 'api_events'],
    ['/constructor', 'not_found'],
    ['/__proto__', 'not_found'],
  ];
  for (const [target, kind, fields] of cases) {
    const r = parseTarget(target);
    assert.equal(r.kind, kind, target);
    if (fields) for (const [k, v] of Object.entries(fields)) assert.equal((r as unknown as Record<string, string>)[k], v, `${target} ${k}`);
  }
});

test('assign: 400 rapid assigns over 4 equal pods spread, none gets more than 35%', () => {
  const a = createAssigner();
  const pods = ['p0', 'p1', 'p2', 'p3'].map((id) => pod(id, 1));
  const counts = new Map<string, number>();
  for (let i = 0; i < 400; i++) {
    const p = a.pick(pods)!;
    counts.set(p.podId, (counts.get(p.podId) ?? 0) + 1);
  }
  assert.equal(counts.size, 4);
  for (const [id, n] of counts) assert.ok(n <= 140, `${id} got ${n}/400`);
});

test('assign: prefers the least loaded, skips draining, counts reset on a new heartbeat', () => {
  const a = createAssigner();
  const busy = pod('busy', 1, { connections: 500 });
  const idle = pod('idle', 1, { connections: 10 });
  const draining = pod('drain', 1, { connections: 0, draining: true });
  for (let i = 0; i < 50; i++) assert.equal(a.pick([busy, idle, draining])!.podId, 'idle');
  assert.equal(a.load(idle), 60);
  const next = { ...idle, updatedAt: idle.updatedAt + 1, connections: 55 };
  assert.equal(a.load(next), 55, 'a fresh heartbeat replaces the handed-out estimate');
  assert.equal(a.pick([draining]), undefined);
  assert.equal(a.pick([]), undefined);
});

test('assign: near-equal pods share a burst at random', () => {
  const a = createAssigner();
  const pods = [pod('a', 1, { connections: 100 }), pod('b', 1, { connections: 101 }), pod('c', 1, { connections: 400 })];
  const counts = new Map<string, number>();
  for (let i = 0; i < 200; i++) {
    const p = a.pick(pods)!;
    counts.set(p.podId, (counts.get(p.podId) ?? 0) + 1);
  }
  assert.ok((counts.get('a') ?? 0) > 60 && (counts.get('b') ?? 0) > 60, JSON.stringify([...counts]));
  assert.equal(counts.get('c') ?? 0, 0);
});

test('assign: a cordoned pod never counts as room under either strategy', () => {
  for (const strategy of ['spread', 'pack'] as const) {
    const a = createAssigner({ strategy, targetConnections: 1000 });
    const cordoned = pod('cordoned', 1, { connections: 0, cordoned: true });
    const open = pod('open', 1, { connections: 400 });
    for (let i = 0; i < 50; i++) assert.equal(a.pick([cordoned, open])!.podId, 'open', strategy);
    assert.equal(a.pick([cordoned, pod('drain', 1, { draining: true })]), undefined, `${strategy}: only cordoned and draining pods → none`);
  }
});

test('assign: pack fills the fullest pod below the target, then the next, and spreads once all are full', () => {
  const a = createAssigner({ strategy: 'pack', targetConnections: 100 });
  const pods = [pod('low', 1, { connections: 10 }), pod('mid', 1, { connections: 60 }), pod('high', 1, { connections: 97 }), pod('full', 1, { connections: 100 })];
  const order: string[] = [];
  for (let i = 0; i < 3; i++) order.push(a.pick(pods)!.podId);
  assert.deepEqual(order, ['high', 'high', 'high'], 'the fullest pod below the target first');
  assert.equal(a.load(pods[2]!), 100);
  for (let i = 0; i < 40; i++) assert.equal(a.pick(pods)!.podId, 'mid');
  assert.equal(a.pick(pods)!.podId, 'low', 'mid is at the target now');
  const allFull = [pod('x', 1, { connections: 150 }), pod('y', 1, { connections: 120 })];
  assert.equal(a.pick(allFull)!.podId, 'y', 'every pod at the target: the least loaded');
});

test('assign: pack shares near-equal fullest pods at random', () => {
  const a = createAssigner({ strategy: 'pack', targetConnections: 1000, random: mulberry32(7) });
  const pods = [pod('a', 1, { connections: 500 }), pod('b', 1, { connections: 499 }), pod('c', 1, { connections: 100 })];
  const counts = new Map<string, number>();
  for (let i = 0; i < 40; i++) {
    const p = a.pick(pods)!;
    counts.set(p.podId, (counts.get(p.podId) ?? 0) + 1);
  }
  assert.ok((counts.get('a') ?? 0) > 5 && (counts.get('b') ?? 0) > 5, JSON.stringify([...counts]));
  assert.equal(counts.get('c') ?? 0, 0);
});

function frame(len: number, masked = false): Buffer {
  const hdr = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const b = Buffer.alloc(hdr + (masked ? 4 : 0) + len, 0x61);
  b[0] = 0x82;
  if (len < 126) b[1] = len;
  else if (len < 65536) {
    b[1] = 126;
    b.writeUInt16BE(len, 2);
  } else {
    b[1] = 127;
    b.writeUInt32BE(0, 2);
    b.writeUInt32BE(len, 6);
  }
  if (masked) b[1]! |= 0x80;
  return b;
}

test('frames: sizes and boundaries across arbitrary read splits', () => {
  assert.equal(frameSize(frame(5), 0), 7);
  assert.equal(frameSize(frame(300), 0), 304);
  assert.equal(frameSize(frame(70000), 0), 70010);
  assert.equal(frameSize(frame(5, true), 0), 11);
  assert.equal(frameSize(Buffer.from([0x81]), 0), -1);
  const stream = Buffer.concat([frame(5), frame(300), frame(0), frame(70000), frame(1)]);
  const ends = new Set([7, 311, 313, 70323, 70326]);
  for (const step of [1, 2, 3, 7, 13, 100, 4096, stream.length]) {
    const c: FrameCursor = { left: 0, partial: undefined };
    let pos = 0;
    while (pos < stream.length) {
      const chunk = stream.subarray(pos, Math.min(stream.length, pos + step));
      // Where would a 1001 be cut in this chunk? Must be exactly at a frame end (or chunk start at a boundary).
      const probe: FrameCursor = { left: c.left, partial: c.partial };
      const cut = advance(probe, chunk, true);
      if (cut >= 0) assert.ok(pos + cut === 0 || ends.has(pos + cut), `step ${step}: cut at ${pos + cut}`);
      advance(c, chunk, false);
      pos += chunk.length;
      assert.equal(atBoundary(c), ends.has(pos), `step ${step}: boundary state at ${pos}`);
    }
  }
});

function fakeReq(rawHeaders: string[], remoteAddress = '::ffff:10.1.2.3'): IncomingMessage {
  const headers: Record<string, string> = {};
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const k = rawHeaders[i]!.toLowerCase();
    headers[k] = headers[k] ? `${headers[k]}, ${rawHeaders[i + 1]}` : rawHeaders[i + 1]!;
  }
  return { rawHeaders, headers, socket: { remoteAddress } } as unknown as IncomingMessage;
}

test('handshake head: fixed path, end-to-end headers kept, hop-by-hop dropped, X-Forwarded-* set', () => {
  const req = fakeReq([
    'Host', 'gw.example', 'Upgrade', 'WebSocket', 'Connection', 'keep-alive, Upgrade, X-Secret', 'X-Secret', 'drop me',
    'Sec-WebSocket-Key', 'k==', 'Sec-WebSocket-Version', '13', 'Sec-WebSocket-Protocol', 'chat, superchat',
    'Sec-WebSocket-Extensions', 'permessage-deflate', 'Origin', 'https://app', 'Cookie', 'a=b',
    'X-Forwarded-For', '1.1.1.1', 'X-Forwarded-Proto', 'https', 'Keep-Alive', '5', 'TE', 'trailers', 'Proxy-Authorization', 'x',
    'Content-Length', '0', 'X-Request-Id', 'abc-123',
  ]);
  // The peer 10.1.2.3 is a trusted proxy here: its chain is extended (src/forwarded.test.ts has the untrusted side).
  const head = buildUpstreamRequest(req, 'a=1', { host: '10.0.0.7', port: 8080 }, requestIdOf(req), createCidrMatcher(['10.0.0.0/8']));
  const lines = head.split('\r\n');
  assert.equal(lines[0], 'GET /ws/connect?a=1 HTTP/1.1');
  assert.ok(head.endsWith('\r\n\r\n'));
  const has = (l: string) => assert.ok(lines.includes(l), `missing ${l}\n${head}`);
  const hasNot = (re: RegExp) => assert.ok(!lines.some((l) => re.test(l)), `unexpected ${re}\n${head}`);
  has('Host: 10.0.0.7:8080');
  has('Upgrade: websocket');
  has('Connection: Upgrade');
  has('Sec-WebSocket-Key: k==');
  has('Sec-WebSocket-Protocol: chat, superchat');
  has('Sec-WebSocket-Extensions: permessage-deflate');
  has('Origin: https://app');
  has('Cookie: a=b');
  has('X-Forwarded-For: 1.1.1.1, 10.1.2.3');
  has('X-Forwarded-Proto: https');
  has('X-Forwarded-Host: gw.example');
  has('X-Request-Id: abc-123');
  hasNot(/^X-Secret/i);
  hasNot(/^Keep-Alive/i);
  hasNot(/^TE:/i);
  hasNot(/^Proxy-Authorization/i);
  hasNot(/^Content-Length/i);
  assert.equal(lines.filter((l) => /^host:/i.test(l)).length, 1);
  assert.equal(lines.filter((l) => /^connection:/i.test(l)).length, 1);

  const odd = fakeReq(['Host', 'h', 'X-Request-Id', 'bad id\twith space', 'X-Forwarded-Proto', 'gopher'], '127.0.0.1');
  const head2 = buildUpstreamRequest(odd, '', { host: 'fd00::1', port: 9 }, requestIdOf(odd), createCidrMatcher([]));
  assert.match(head2, /^GET \/ws\/connect HTTP\/1\.1\r\nHost: \[fd00::1\]:9\r\n/);
  assert.match(head2, /\r\nX-Request-Id: [0-9a-f-]{36}\r\n/);
  assert.match(head2, /\r\nX-Forwarded-Proto: http\r\n/);
  assert.match(head2, /\r\nX-Forwarded-For: 127\.0\.0\.1\r\n/);
});

test('fd budget: GATEWAY_MAX_CONNECTIONS is lowered to fit two descriptors per connection', () => {
  assert.equal(effectiveMaxConnections(9500, 20_000), 9500);
  assert.equal(effectiveMaxConnections(20_000, 20_000), Math.floor((20_000 - FD_RESERVE) / 2));
  assert.equal(effectiveMaxConnections(9500, 1024), Math.floor((1024 - FD_RESERVE) / 2));
  assert.equal(effectiveMaxConnections(9500, undefined), 9500);
  assert.equal(effectiveMaxConnections(9500, 10), 1);
});

test('worker accept balancing: the worker above the least-loaded plus the slack stops accepting, never the last one accepting', () => {
  const w = (open: number, accepting = true, ordered: boolean | undefined = undefined) => ({ open, accepting, ordered });
  // Even enough (within 32 connections, or 5 % of the least-loaded): nobody is ordered.
  assert.deepEqual(balanceOrders([w(100), w(131)]), { resume: [], pause: [] });
  assert.deepEqual(balanceOrders([w(6000), w(6290)]), { resume: [], pause: [] });
  // The kernel gave one worker nearly everything: it stops, the other keeps accepting.
  assert.deepEqual(balanceOrders([w(900), w(40)]), { resume: [], pause: [0] });
  assert.deepEqual(balanceOrders([w(6000), w(6301)]), { resume: [], pause: [1] });
  // A restarted worker (0 connections) takes every new connection until it is within the slack.
  assert.deepEqual(balanceOrders([w(5900), w(0), w(6100)]), { resume: [], pause: [0, 2] });
  // Two high workers and one low that is still confirming an earlier order: nobody may be stopped yet.
  assert.deepEqual(balanceOrders([w(900), w(10, true, true), w(950)]), { resume: [], pause: [] });
  // A stopped worker starts again once it is within half the slack, and only then may the other stop.
  assert.deepEqual(balanceOrders([w(120, false), w(100)]), { resume: [], pause: [] });
  assert.deepEqual(balanceOrders([w(115, false), w(100)]), { resume: [0], pause: [] });
  assert.deepEqual(balanceOrders([w(100, false), w(500)]), { resume: [0], pause: [] });
  // The least-loaded worker is stopped (it was the high one a moment ago): it resumes; the high one waits for that.
  assert.deepEqual(balanceOrders([w(0, false), w(500)]), { resume: [0], pause: [] });
  // The only worker left always accepts, whatever it holds; an order in flight is not repeated.
  assert.deepEqual(balanceOrders([w(9000, false)]), { resume: [0], pause: [] });
  assert.deepEqual(balanceOrders([w(9000, false, true)]), { resume: [], pause: [] });
  assert.deepEqual(balanceOrders([w(900, true, false), w(0)]), { resume: [], pause: [] });
  assert.deepEqual(balanceOrders([]), { resume: [], pause: [] });
});

test('dns template rendering', () => {
  assert.deepEqual(renderTemplate('{podId}.socket.rtc.svc.cluster.local:8080', 'p-1'), { host: 'p-1.socket.rtc.svc.cluster.local', port: 8080 });
  assert.deepEqual(renderTemplate('[::1]:81', 'x'), { host: '::1', port: 81 });
});

test('endpointslices: port choice and condition mapping', () => {
  assert.equal(pickPort([{ name: 'admin', port: 9090 }, { name: 'ws', port: 8080 }], 1), 8080);
  assert.equal(pickPort([{ name: 'admin', port: 9090 }, { name: 'x', port: 7000 }], 7000), 7000);
  assert.equal(pickPort([{ name: 'admin', port: 9090 }, { name: 'x', port: 7000 }], 8080), undefined, 'never guesses among several ports');
  assert.equal(pickPort([{ port: 8080 }], 1), 8080);
  const idx = indexSlices([
    {
      addressType: 'IPv4',
      ports: [{ name: 'ws', port: 8080 }],
      endpoints: [
        { addresses: ['10.0.0.1'], conditions: { ready: true }, targetRef: { kind: 'Pod', name: 'ready' } },
        { addresses: ['10.0.0.2'], conditions: { ready: false, serving: true, terminating: true }, targetRef: { kind: 'Pod', name: 'term' } },
        { addresses: ['10.0.0.3'], conditions: { ready: false }, targetRef: { kind: 'Pod', name: 'starting' } },
        { addresses: ['10.0.0.4'], targetRef: { kind: 'Pod', name: 'nil-conditions' } },
        { addresses: ['10.0.0.5'], conditions: { ready: true } },
      ],
    },
  ], 8080);
  assert.deepEqual(idx.get('ready'), { host: '10.0.0.1', port: 8080 });
  assert.equal(idx.get('term'), Resolved.DRAINING);
  assert.equal(idx.get('starting'), Resolved.NOT_READY);
  assert.ok(isUpstream(idx.get('nil-conditions')!));
  assert.equal(idx.size, 4);
});
