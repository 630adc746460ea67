import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCidrMatcher, parseCidrList } from './cidr.js';

test('a CIDR list parses IPv4, IPv6 and bare addresses into canonical entries', () => {
  assert.deepEqual(parseCidrList(''), []);
  assert.deepEqual(parseCidrList('  '), []);
  assert.deepEqual(parseCidrList('10.0.0.0/8, fd00::/8,192.168.1.5 , ::1,0.0.0.0/0'), ['10.0.0.0/8', 'fd00::/8', '192.168.1.5/32', '::1/128', '0.0.0.0/0']);
});

test('every bad entry is named in one error', () => {
  const bad = ['10.0.0.0/33', 'fd00::/129', 'pods.internal', '10.0.0.0/', '10.0.0.0/+8', 'fe80::1%eth0', '010.0.0.1', '10.0.0.0/8/9'];
  for (const entry of bad) assert.throws(() => parseCidrList(`10.0.0.0/8,${entry}`), (err: Error) => err.message.includes(`"${entry}"`), entry);
  assert.throws(() => parseCidrList('10.0.0.0/8,,fd00::/8'), /empty entry/);
  assert.throws(() => parseCidrList('10.0.0.0/8,'), /empty entry/);
  assert.throws(
    () => parseCidrList('10.0.0.0/33,nope'),
    (err: Error) => /"10\.0\.0\.0\/33": prefix "\/33" must be an integer from 0 to 32 for IPv4/.test(err.message) && /"nope": "nope" is not an IPv4 or IPv6 address/.test(err.message),
  );
});

test('the matcher covers IPv4, IPv6 and IPv4-mapped IPv6 peers', () => {
  const m = createCidrMatcher(parseCidrList('10.0.0.0/8,fd00::/8,192.168.1.5'));
  assert.equal(m.size, 3);
  for (const inside of ['10.0.0.1', '10.255.255.255', '::ffff:10.0.0.1', '::FFFF:10.1.2.3', 'fd00::1', 'fdff:ffff::1', '192.168.1.5', '::ffff:192.168.1.5']) {
    assert.equal(m.contains(inside), true, inside);
  }
  for (const outside of ['11.0.0.1', '192.168.1.6', '::ffff:11.0.0.1', 'fe00::1', '::1', '127.0.0.1', 'not-an-ip', '', '10.0.0.1.example.com']) {
    assert.equal(m.contains(outside), false, outside);
  }
});

test('an IPv4-mapped IPv6 rule covers the plain IPv4 peer, and a link-local zone is ignored when matching', () => {
  const m = createCidrMatcher(parseCidrList('::ffff:10.0.0.0/120,fe80::/10'));
  assert.equal(m.contains('10.0.0.9'), true);
  assert.equal(m.contains('10.1.0.9'), false);
  assert.equal(m.contains('fe80::1%eth0'), true);
});

test('an empty list contains nothing (the caller decides what empty means)', () => {
  const m = createCidrMatcher([]);
  assert.equal(m.size, 0);
  assert.equal(m.contains('10.0.0.1'), false);
});
