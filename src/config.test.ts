import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { ConfigError, DEFAULTS, loadConfig } from './config.js';
import { parseRedisUrl } from './registry/redis-url.js';

test('defaults match the DESIGN.md table', () => {
  const c = loadConfig({ POD_NAME: 'socket-abc12', POD_IP: '10.0.0.7' });
  assert.equal(c.gatewayPort, 8080);
  assert.equal(c.socketPort, 8080);
  assert.equal(c.adminPort, 9090);
  assert.equal(c.podNamespace, 'rtc');
  assert.equal(c.redisUrl, undefined);
  assert.equal(c.redisPrefix, 'rtc:');
  assert.equal(c.heartbeatMs, 2000);
  assert.equal(c.gatewayResolver, 'registry');
  assert.equal(c.gatewayDnsTemplate, '{podId}.socket.rtc.svc.cluster.local:8080');
  assert.equal(c.scalerWorkload, 'kubernetes');
  assert.equal(c.socketWorkloadName, 'socket');
  assert.equal(c.socketMinReplicas, 2);
  assert.equal(c.socketMaxReplicas, 50);
  assert.equal(c.socketTargetConnections, 1000);
  assert.equal(c.socketMaxPayloadBytes, 1_048_576);
  assert.equal(c.scalerLeaseName, 'rtc-edge-scaler');
  assert.equal(c.scalerIntervalMs, 5000);
  assert.equal(c.scaleInStabilizationMs, 300_000);
  assert.equal(c.drainWindowMs, 60_000);
  assert.equal(c.drainTimeoutMs, 300_000);
  assert.equal(c.logLevel, 'info');
  assert.equal(c.podName, 'socket-abc12');
  assert.equal(c.podIp, '10.0.0.7');
});

test('dev defaults to the local workload', () => {
  assert.equal(loadConfig({}, 'dev').scalerWorkload, 'local');
  assert.equal(loadConfig({ SCALER_WORKLOAD: 'kubernetes' }, 'dev').scalerWorkload, 'kubernetes');
});

test('every bad variable is reported at once', () => {
  let err: unknown;
  try {
    loadConfig({ SOCKET_PORT: 'abc', HEARTBEAT_MS: '-1', GATEWAY_RESOLVER: 'consul', POD_NAME: 'Bad_Name', REDIS_URL: 'http://x', LOG_LEVEL: 'loud' });
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof ConfigError);
  const names = err.problems.map((p) => p.split('=')[0]);
  assert.deepEqual(names.sort(), ['GATEWAY_RESOLVER', 'HEARTBEAT_MS', 'LOG_LEVEL', 'POD_NAME', 'REDIS_URL', 'SOCKET_PORT']);
  assert.match(err.message, /SOCKET_PORT="abc": expected a TCP port/);
  assert.match(err.message, /HEARTBEAT_MS="-1": expected an integer between 100 and 60000/);
});

test('cross-field problems are reported with the others', () => {
  assert.throws(
    () => loadConfig({ SOCKET_MIN_REPLICAS: '10', SOCKET_MAX_REPLICAS: '3', DRAIN_WINDOW_MS: '9000', DRAIN_TIMEOUT_MS: '1000', ADMIN_PORT: '99999' }),
    (e: unknown) => e instanceof ConfigError && e.problems.length === 3 && e.problems.some((p) => p.includes('SOCKET_MIN_REPLICAS=10 is greater')) && e.problems.some((p) => p.includes('DRAIN_WINDOW_MS')) && e.problems.some((p) => p.startsWith('ADMIN_PORT')),
  );
});

test('socket role rejects the admin port equal to the WebSocket port', () => {
  assert.throws(() => loadConfig({ SOCKET_PORT: '7000', ADMIN_PORT: '7000' }, 'socket'), /admin endpoints must not share/);
});

test('redis URL forms: standalone, TLS, sentinel, cluster', () => {
  for (const url of ['redis://127.0.0.1:6379', 'rediss://user:pw@redis.example:6380/2', 'redis+sentinel://s1:26379,s2:26379/mymaster', 'redis+cluster://n1:6379,n2:6379']) {
    assert.equal(loadConfig({ REDIS_URL: url }).redisUrl, url);
  }
  assert.throws(() => loadConfig({ REDIS_URL: 'redis+sentinel://s1:26379' }), /missing master name/);
});

test('GATEWAY_POD_CIDRS: empty means any address; a bad entry is named', () => {
  assert.deepEqual(loadConfig({}).gatewayPodCidrs, []);
  assert.deepEqual(loadConfig({ GATEWAY_POD_CIDRS: '10.0.0.0/8, fd00::/8,10.1.2.3' }).gatewayPodCidrs, ['10.0.0.0/8', 'fd00::/8', '10.1.2.3/32']);
  assert.throws(
    () => loadConfig({ GATEWAY_POD_CIDRS: '10.0.0.0/8,10.0.0.0/40,pods.local', HEARTBEAT_MS: 'x' }),
    (e: unknown) => e instanceof ConfigError && e.problems.length === 2 && /GATEWAY_POD_CIDRS=.*"10\.0\.0\.0\/40".*"pods\.local"/.test(e.problems.find((p) => p.startsWith('GATEWAY_POD_CIDRS')) ?? ''),
  );
});

test('REDIS_PASSWORD becomes the password of REDIS_URL (percent-encoded), keeping the user; it needs a REDIS_URL', () => {
  assert.equal(loadConfig({ REDIS_URL: 'redis://rtc-edge-redis:6379', REDIS_PASSWORD: 'p@s/s:w#rd' }).redisUrl, 'redis://:p%40s%2Fs%3Aw%23rd@rtc-edge-redis:6379');
  assert.equal(loadConfig({ REDIS_URL: 'rediss://app:old@redis.example:6380/2', REDIS_PASSWORD: 'new' }).redisUrl, 'rediss://app:new@redis.example:6380/2');
  assert.equal(parseRedisUrl(loadConfig({ REDIS_URL: 'redis+sentinel://s1:26379,s2/mymaster', REDIS_PASSWORD: 'n@w' }).redisUrl!).options.password, 'n@w');
  assert.throws(() => loadConfig({ REDIS_PASSWORD: 'x' }), (e: unknown) => e instanceof ConfigError && /REDIS_PASSWORD is set but REDIS_URL is not/.test(e.message) && !/"x"/.test(e.message));
});

test('idle timeout must suit uWebSockets.js', () => {
  assert.equal(loadConfig({ SOCKET_IDLE_TIMEOUT_S: '0' }).socketIdleTimeoutS, 0);
  assert.equal(loadConfig({ SOCKET_IDLE_TIMEOUT_S: '16' }).socketIdleTimeoutS, 16);
  assert.throws(() => loadConfig({ SOCKET_IDLE_TIMEOUT_S: '10' }), /SOCKET_IDLE_TIMEOUT_S/);
});

test('every default is itself valid', () => {
  const env = Object.fromEntries(Object.entries(DEFAULTS));
  assert.doesNotThrow(() => loadConfig(env));
});

test('the CLI stops with exit code 2 and names every bad variable', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'app/cli.ts', 'socket'], {
    env: { ...process.env, SOCKET_PORT: 'abc', HEARTBEAT_MS: '-1' },
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /SOCKET_PORT="abc"/);
  assert.match(r.stderr, /HEARTBEAT_MS="-1"/);
  assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/, 'no stack trace for a configuration error');
});

test('the CLI prints help and rejects unknown roles', () => {
  const help = spawnSync(process.execPath, ['--import', 'tsx', 'app/cli.ts', '--help'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /Usage: rtc-edge <role>/);
  for (const role of ['gateway', 'socket', 'scaler', 'dev', 'status']) assert.match(help.stdout, new RegExp(`\\n  ${role} `));
  const bad = spawnSync(process.execPath, ['--import', 'tsx', 'app/cli.ts', 'proxy'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /unknown role "proxy"/);
  const badFlag = spawnSync(process.execPath, ['--import', 'tsx', 'app/cli.ts', 'gateway', '--bogus'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(badFlag.status, 2);
  assert.match(badFlag.stderr, /Unknown option '--bogus'/);
});

test('SOCKET_MIN_REPLICAS=0 is refused with the reason (no scale-to-zero), with the other problems', () => {
  assert.throws(
    () => loadConfig({ SOCKET_MIN_REPLICAS: '0', SCALER_INTERVAL_MS: '1' }, 'scaler'),
    (e: unknown) =>
      e instanceof ConfigError &&
      e.problems.length === 2 &&
      e.problems.some((p) => p.startsWith('SOCKET_MIN_REPLICAS') && p.includes('must be at least 1') && p.includes('503 forever')) &&
      e.problems.some((p) => p.startsWith('SCALER_INTERVAL_MS')),
  );
  assert.equal(loadConfig({ SOCKET_MIN_REPLICAS: '1' }, 'scaler').socketMinReplicas, 1);
});

test('GATEWAY_DNS_TEMPLATE needs {podId} and a port from 1 to 65535 (port 70000 would make every connect fail)', () => {
  assert.equal(loadConfig({ GATEWAY_DNS_TEMPLATE: '{podId}.socket:8080' }).gatewayDnsTemplate, '{podId}.socket:8080');
  for (const bad of ['{podId}.socket:70000', '{podId}.socket:0', '{podId}.socket', 'socket:8080']) {
    assert.throws(() => loadConfig({ GATEWAY_DNS_TEMPLATE: bad }), (e: unknown) => e instanceof ConfigError && /GATEWAY_DNS_TEMPLATE/.test(e.problems[0] ?? ''), bad);
  }
});
