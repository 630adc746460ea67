/** The forwarding trust rule: tables for clientAddress and forwardedHeaders against real CIDR matchers. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCidrMatcher, parseCidrList } from './cidr.js';
import { clientAddress, forwardedHeaders, normalizeAddress } from './forwarded.js';

const none = createCidrMatcher([]);
const lb = createCidrMatcher(parseCidrList('10.0.0.0/8, fd00::/8'));

test('normalizeAddress drops the IPv4-mapped prefix and a zone index', () => {
  assert.equal(normalizeAddress('::ffff:10.1.2.3'), '10.1.2.3');
  assert.equal(normalizeAddress('fe80::1%eth0'), 'fe80::1');
  assert.equal(normalizeAddress('2001:db8::1'), '2001:db8::1');
});

test('clientAddress: the peer unless trusted; through trusted hops to the first untrusted address', () => {
  const cases: [string, string | undefined, typeof lb, string][] = [
    ['203.0.113.9', '1.2.3.4', none, '203.0.113.9'], // nobody trusted: the header is ignored
    ['203.0.113.9', '1.2.3.4', lb, '203.0.113.9'], // an untrusted peer's header is ignored
    ['::ffff:10.0.0.5', '198.51.100.7', lb, '198.51.100.7'], // one trusted hop
    ['10.0.0.5', '6.6.6.6, 198.51.100.7, 10.0.0.9', lb, '198.51.100.7'], // spoofed left part is never reached
    ['10.0.0.5', '10.0.0.8, 10.0.0.9', lb, '10.0.0.8'], // all trusted: the leftmost
    ['10.0.0.5', '198.51.100.7:4711', lb, '198.51.100.7'], // v4 with a port
    ['10.0.0.5', '[2001:db8::7]:4711', lb, '2001:db8::7'], // v6 in brackets with a port
    ['10.0.0.5', '2001:db8::7', lb, '2001:db8::7'],
    ['10.0.0.5', 'unknown, 10.0.0.9', lb, '10.0.0.9'], // garbage stops at the hop that vouched for it
    ['10.0.0.5', 'not-an-ip', lb, '10.0.0.5'],
    ['10.0.0.5', undefined, lb, '10.0.0.5'],
    ['10.0.0.5', '', lb, '10.0.0.5'],
    ['fd00::5', '198.51.100.7', lb, '198.51.100.7'],
  ];
  for (const [peer, xff, trusted, want] of cases) assert.equal(clientAddress(peer, xff, trusted), want, `${peer} / ${xff}`);
});

test('forwardedHeaders: an untrusted peer gets its own address and the connection protocol; a trusted one extends its chain', () => {
  assert.deepEqual(forwardedHeaders('203.0.113.9', '1.2.3.4', 'https', 'http', lb), { forwardedFor: '203.0.113.9', forwardedProto: 'http', trusted: false });
  assert.deepEqual(forwardedHeaders('::ffff:203.0.113.9', undefined, undefined, 'http', none), { forwardedFor: '203.0.113.9', forwardedProto: 'http', trusted: false });
  assert.deepEqual(forwardedHeaders('10.0.0.5', '198.51.100.7', 'https', 'http', lb), { forwardedFor: '198.51.100.7, 10.0.0.5', forwardedProto: 'https', trusted: true });
  assert.deepEqual(forwardedHeaders('10.0.0.5', undefined, 'gopher', 'http', lb), { forwardedFor: '10.0.0.5', forwardedProto: 'http', trusted: true });
});
