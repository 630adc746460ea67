/**
 * A Redis password never appears in a log line or an error message: a bad REDIS_URL carrying one stops the CLI
 * with the value redacted; a wrong password against a real `redis-server --requirepass` is logged without it;
 * the right one lets a gateway and a socket process share the registry, and neither prints it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Redis } from 'ioredis';
import { ConfigError, loadConfig } from '../src/config.js';
import { createRedisRegistry } from '../src/registry/index.js';
import { captureLogs } from './support/logs.js';
import { startRedis, type RedisServer } from './support/redis.js';
import { spawnRole, type RoleProcess } from './support/role-process.js';
import { waitFor } from './support/upstream.js';

const PASSWORD = 'Pw-7f3c9e1a';
let redis: RedisServer;
before(async () => {
  redis = await startRedis({ password: PASSWORD });
});
after(async () => {
  await redis.stop();
});

test('a bad REDIS_URL is reported with its userinfo redacted (loadConfig and the CLI)', () => {
  const bad = [
    `redis+sentinel://admin:${PASSWORD}/x@s1:26379/mymaster`, // an unencoded '/' the host parser would quote
    `redis+cluster://:${PASSWORD}@n1:notaport`,
    `redis://:${PASSWORD}@`,
    `http://admin:${PASSWORD}@redis:6379`,
    `admin:${PASSWORD}@redis:6379`,
  ];
  for (const url of bad) {
    assert.throws(() => loadConfig({ REDIS_URL: url }), (e: unknown) => e instanceof ConfigError && /REDIS_URL="[^"]*\*\*\*@/.test(e.message) && !e.message.includes(PASSWORD), url);
  }
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'app/cli.ts', 'gateway'], { env: { ...process.env, REDIS_URL: bad[0], HEARTBEAT_MS: 'x' }, encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /REDIS_URL="redis\+sentinel:\/\/\*\*\*@s1:26379\/mymaster": the user:password part is malformed/);
  assert.match(r.stderr, /HEARTBEAT_MS="x"/, 'reported with the other bad variables');
  assert.ok(!`${r.stdout}${r.stderr}`.includes(PASSWORD));
});

test('a wrong password is logged without any password: the registry line and a raw ioredis error logged as err', async (t) => {
  const wrong = `redis://default:${PASSWORD}-wrong@127.0.0.1:${redis.port}`;
  const logs = captureLogs();
  const reg = createRedisRegistry({ url: wrong, prefix: 'pw:', logger: logs.logger, maxBackoffMs: 100 });
  t.after(() => reg.close());
  await waitFor(() => logs.lines.some((l) => /redis unavailable/.test(l.msg)), 5000);
  const line = logs.lines.find((l) => /redis unavailable/.test(l.msg))!;
  assert.match(String((line.err as { message: string }).message), /WRONGPASS/);
  // ioredis's own error object carries AUTH's arguments; the role loggers redact them wherever they log `err`.
  const client = new Redis(wrong, { retryStrategy: () => null, maxRetriesPerRequest: 0 });
  const err = await new Promise<Error>((resolve) => client.once('error', resolve));
  client.disconnect();
  assert.ok(JSON.stringify({ ...err }).includes(PASSWORD), 'the raw ioredis error does carry the password');
  logs.logger.child({ role: 'socket' }).warn({ err }, 'registry heartbeat failed');
  const text = JSON.stringify(logs.lines);
  assert.ok(!text.includes(PASSWORD), text);
});

test('the right password: a gateway and a socket process share a password-protected Redis and never print it', async (t) => {
  const env = { REDIS_URL: redis.url, REDIS_PREFIX: 'pw-ok:', HEARTBEAT_MS: '300', POD_IP: '127.0.0.1', LOG_LEVEL: 'debug' };
  const procs: RoleProcess[] = [];
  t.after(async () => {
    for (const p of procs) await p.kill();
  });
  procs.push(await spawnRole('socket', 'socket node listening', { ...env, SOCKET_PORT: '0', ADMIN_PORT: '0', POD_NAME: 'socket-pw-1' }));
  const gw = await spawnRole('gateway', 'gateway listening', { ...env, GATEWAY_PORT: '0', GATEWAY_ADMIN_PORT: '0', POD_NAME: 'gateway-pw' });
  procs.push(gw);
  await waitFor(async () => {
    const body = (await (await fetch(`http://127.0.0.1:${gw.log.adminPort as number}/api/pods`)).json()) as { pods: { podId: string }[] };
    return body.pods.some((p) => p.podId === 'socket-pw-1');
  }, 10_000, 100);
  for (const p of procs) {
    assert.ok(p.lines.some((l) => l.msg === 'registry: redis connected'));
    assert.ok(!JSON.stringify(p.lines).includes(PASSWORD) && !p.stderr().includes(PASSWORD));
  }
});
