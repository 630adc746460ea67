import { test } from 'node:test';
import assert from 'node:assert/strict';
import { captureLogs } from '../test/support/logs.js';
import { redactUrl, safeError, scrub, urlSecrets } from './redact.js';

test('redactUrl replaces the whole userinfo, also in malformed values', () => {
  const cases: [string, string][] = [
    ['redis://user:pw@host:6379/0', 'redis://***@host:6379/0'],
    ['rediss://:p%40ss@redis.example:6380', 'rediss://***@redis.example:6380'],
    ['redis+sentinel://u:pa/ss@w@s1:26379,s2/mymaster', 'redis+sentinel://***@s1:26379,s2/mymaster'],
    ['user:pw@host:6379', '***@host:6379'],
    ['redis://host:6379', 'redis://host:6379'],
    ['', ''],
  ];
  for (const [raw, want] of cases) assert.equal(redactUrl(raw), want, raw);
});

test('urlSecrets finds the password as written and decoded; scrub removes each', () => {
  assert.deepEqual(urlSecrets('redis://admin:p%40ss@h:1'), ['admin:p%40ss', 'p%40ss', 'p@ss']);
  assert.deepEqual(urlSecrets('redis://h:1'), []);
  assert.deepEqual(urlSecrets(undefined), []);
  assert.equal(scrub('AUTH p@ss failed (p%40ss)', urlSecrets('redis://admin:p%40ss@h:1')), 'AUTH *** failed (***)');
});

test('safeError keeps type, message and code, never the command arguments', () => {
  const err = Object.assign(new Error('WRONGPASS for hunter2'), { code: 'WRONGPASS', command: { name: 'auth', args: ['hunter2'] } });
  assert.deepEqual(safeError(err, ['hunter2']), { type: 'Error', message: 'WRONGPASS for ***', code: 'WRONGPASS' });
  assert.deepEqual(safeError('boom hunter2', ['hunter2']), { type: 'string', message: 'boom ***' });
});

test('the logger redacts the arguments an ioredis error carries, wherever a role logs it as err', () => {
  const logs = captureLogs();
  const err = Object.assign(new Error('WRONGPASS invalid username-password pair'), { command: { name: 'auth', args: ['default', 'hunter2'] } });
  logs.logger.child({ role: 'socket' }).warn({ err }, 'heartbeat failed');
  logs.logger.warn({ err: Object.assign(new Error('outer'), { cause: err }) }, 'wrapped');
  const text = JSON.stringify(logs.lines);
  assert.doesNotMatch(text, /hunter2/);
  assert.equal((logs.lines[0]!.err as { command: { name: string } }).command.name, 'auth', 'the command name stays for debugging');
});
