import { test } from 'node:test';
import assert from 'node:assert/strict';
import { captureLogs } from '../../test/support/logs.js';
import { checkPodRecord, checkPodRecordText, createRecordGuard, MAX_RECORD_BYTES } from './record.js';

const good = { podId: 'socket-a1', ip: '10.0.0.7', port: 8080, adminPort: 9090, connections: 3, draining: false, startedAt: 1, updatedAt: 2, heartbeatMs: 2000 };

test('a good record passes, with only the known fields kept', () => {
  assert.deepEqual(checkPodRecord(good, 'socket-a1'), { pod: good });
  assert.deepEqual(checkPodRecord({ ...good, ip: 'fd00::7', cordoned: true }), { pod: { ...good, ip: 'fd00::7', cordoned: true } });
  const { adminPort: _omit, ...withoutAdmin } = good;
  assert.deepEqual(checkPodRecord(withoutAdmin), { pod: withoutAdmin }, 'adminPort is optional (older writers)');
  assert.deepEqual(checkPodRecord({ ...good, html: '<script>', __proto__: { port: 1 } }), { pod: good }, 'unknown fields are dropped');
});

test('every hostile field is refused with a reason naming it', () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ port: 70000 }, /^port 70000 is not an integer from 1 to 65535$/],
    [{ port: 0 }, /^port 0 /],
    [{ port: '8080' }, /^port "8080" /],
    [{ port: 80.5 }, /^port 80\.5 /],
    [{ port: -1 }, /^port -1 /],
    [{ adminPort: 65536 }, /^adminPort 65536 /],
    [{ adminPort: null }, /^adminPort null /],
    [{ ip: 'socket-a1.socket.rtc.svc' }, /^ip "socket-a1\.socket\.rtc\.svc" is not an IPv4 or IPv6 literal/],
    [{ ip: 'localhost' }, /^ip "localhost"/],
    [{ ip: 'fe80::1%eth0' }, /^ip "fe80::1%eth0" .*no zone/],
    [{ ip: '10.0.0.7:8080' }, /^ip /],
    [{ ip: '' }, /^ip "" /],
    [{ ip: 167772167 }, /^ip 167772167 /],
    [{ podId: 'Socket_A' }, /^podId "Socket_A" is not a DNS-1123 label/],
    [{ podId: 'a'.repeat(64) }, /^podId "a{39}… is not/],
    [{ podId: 7 }, /^podId 7 /],
    [{ connections: -1 }, /^connections -1 is not a non-negative safe integer$/],
    [{ connections: 1.5 }, /^connections 1\.5 /],
    [{ connections: 2 ** 60 }, /^connections /],
    [{ connections: '3' }, /^connections "3" /],
    [{ draining: 'false' }, /^draining "false" is not a boolean$/],
    [{ draining: 0 }, /^draining 0 /],
    [{ cordoned: 'yes' }, /^cordoned "yes" is not a boolean$/],
    [{ startedAt: '1' }, /^startedAt "1" /],
    [{ updatedAt: null }, /^updatedAt null /],
    [{ heartbeatMs: 0 }, /^heartbeatMs 0 is not a positive finite number$/],
    [{ heartbeatMs: -2000 }, /^heartbeatMs -2000 /],
    [{ heartbeatMs: undefined }, /^heartbeatMs missing /],
  ];
  for (const [patch, reason] of cases) {
    const r = checkPodRecord({ ...good, ...patch }, typeof patch.podId === 'string' ? patch.podId : 'socket-a1');
    assert.ok('invalid' in r, `${JSON.stringify(patch)} was accepted`);
    assert.match(r.invalid, reason, JSON.stringify(patch));
  }
  // Non-finite numbers cannot come out of JSON.parse, but a memory writer could hand them over.
  for (const field of ['startedAt', 'updatedAt', 'heartbeatMs']) {
    for (const v of [Infinity, NaN]) assert.ok('invalid' in checkPodRecord({ ...good, [field]: v }), `${field}=${v}`);
  }
  for (const raw of [null, [good], 'socket-a1', 42]) assert.match((checkPodRecord(raw) as { invalid: string }).invalid, /^not a JSON object/);
});

test('a record stored under another pod id is refused (it would shadow that pod)', () => {
  assert.deepEqual(checkPodRecord(good, 'socket-b2'), { invalid: 'stored under pod id "socket-b2" but names pod "socket-a1"' });
});

test('stored text: bounded before JSON.parse, then parsed and checked', () => {
  assert.deepEqual(checkPodRecordText(JSON.stringify(good), 'socket-a1'), { pod: good });
  assert.deepEqual(checkPodRecordText('{not json', 'socket-a1'), { invalid: 'not valid JSON' });
  assert.deepEqual(checkPodRecordText('', 'socket-a1'), { invalid: 'not valid JSON' });
  const padded = JSON.stringify({ ...good, pad: 'x'.repeat(MAX_RECORD_BYTES) });
  assert.deepEqual(checkPodRecordText(padded, 'socket-a1'), { invalid: `larger than ${MAX_RECORD_BYTES} bytes` });
  // Multi-byte characters count as bytes, not UTF-16 units.
  const wide = JSON.stringify({ ...good, pad: '€'.repeat(Math.ceil(MAX_RECORD_BYTES / 3)) });
  assert.ok(wide.length < MAX_RECORD_BYTES);
  assert.deepEqual(checkPodRecordText(wide, 'socket-a1'), { invalid: `larger than ${MAX_RECORD_BYTES} bytes` });
});

test('the guard logs a bad pod id once, counts every skip, and logs again after the pod was good in between', () => {
  const logs = captureLogs();
  const guard = createRecordGuard(logs.logger);
  const bad = checkPodRecord({ ...good, port: 70000 }, 'socket-a1');
  for (let i = 0; i < 5; i++) assert.equal(guard.accept(bad, 'socket-a1', 'list'), undefined);
  assert.equal(guard.accept(checkPodRecord({ ...good, podId: 'socket-b2', ip: 'evil.example' }, 'socket-b2'), 'socket-b2', 'get'), undefined);
  assert.equal(guard.invalidTotal(), 6);
  const warned = logs.lines.filter((l) => l.msg.includes('invalid record'));
  assert.deepEqual(warned.map((l) => [l.podId, l.reason, l.source]), [
    ['socket-a1', 'port 70000 is not an integer from 1 to 65535', 'list'],
    ['socket-b2', 'ip "evil.example" is not an IPv4 or IPv6 literal (no hostname, no zone)', 'get'],
  ]);
  assert.deepEqual(guard.accept(checkPodRecord(good, 'socket-a1'), 'socket-a1', 'list'), good);
  guard.accept(bad, 'socket-a1', 'list');
  assert.equal(logs.lines.filter((l) => l.msg.includes('invalid record')).length, 3);
  assert.equal(guard.invalidTotal(), 7);
});
