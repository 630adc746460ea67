/**
 * The k6 scripts of loadtest/k6: type-checked against @types/k6 alone, and run through the test-only k6
 * runtime (test/support/k6) against a real `rtc-edge dev` stack with fast scaler settings.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/config.js';
import { start as startDev, type DevHandle } from '../app/dev.js';
import { createLogger } from '../src/logger.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const RUN = path.join(ROOT, 'test/support/k6/run.ts');
/** Fast dev settings: 4 connections per pod, scale-in 1.5 s after the load falls, short drains. */
const FAST_DEV = { GATEWAY_PORT: '0', HEARTBEAT_MS: '200', SCALER_INTERVAL_MS: '300', SOCKET_TARGET_CONNECTIONS: '4', SCALE_IN_STABILIZATION_MS: '1500', DRAIN_WINDOW_MS: '300', LOG_LEVEL: 'silent' };
/** Latency bounds for a shared, loaded CI machine: the tests judge behaviour, the benchmarks judge speed. */
const LOOSE = { PING_P95_MS: '5000', HANDSHAKE_P95_MS: '10000' };

interface K6Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `node --import tsx test/support/k6/run.ts <script> -e K=V...`, resolved when it exits. */
function k6(script: string, env: Record<string, string>, whileRunning?: () => void): Promise<K6Run> {
  const args = ['--import', 'tsx', RUN, script, ...Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`])];
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  whileRunning?.();
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

async function podCount(dev: DevHandle): Promise<number> {
  const res = await fetch(`${dev.url}/api/pods`);
  return ((await res.json()) as { pods: unknown[] }).pods.length;
}

async function withDev<T>(fn: (dev: DevHandle, dir: string) => Promise<T>, overrides: Record<string, string> = {}): Promise<T> {
  const dev = await startDev(loadConfig({ ...FAST_DEV, ...overrides }, 'dev'), { logger: createLogger('silent'), host: '127.0.0.1', banner: () => {} });
  const dir = mkdtempSync(path.join(tmpdir(), 'k6-test-'));
  try {
    return await fn(dev, dir);
  } finally {
    await dev.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const json = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as { metrics: Record<string, { values: Record<string, number>; thresholds?: Record<string, { ok: boolean }> }>; storm?: Record<string, number> };

// scripts/test.sh type-checks loadtest/k6 itself; this shows that its tsconfig would catch what k6 lacks.
test('the k6 tsconfig sees only k6 types: an API k6 lacks, or a Node or DOM global, fails the check', () => {
  const tsc = path.join(ROOT, 'node_modules/typescript/bin/tsc');
  const dir = mkdtempSync(path.join(tmpdir(), 'k6-types-'));
  try {
    writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({ extends: path.join(ROOT, 'loadtest/k6/tsconfig.json'), compilerOptions: { typeRoots: [path.join(ROOT, 'node_modules/@types')] }, files: [path.join(ROOT, 'test/fixtures/k6/bad-api.ts')], include: [] }),
    );
    const bad = spawnSync(process.execPath, [tsc, '-p', dir], { encoding: 'utf8' });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stdout, /Property 'fetch' does not exist/);
    assert.match(bad.stdout, /Property 'terminate' does not exist on type 'WebSocket'/);
    assert.match(bad.stdout, /Cannot find name 'URL'/);
    assert.match(bad.stdout, /Cannot find name 'process'/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the runtime refuses every import it does not implement, naming each, and bad thresholds with exit 104', async () => {
  const imports = await k6('test/fixtures/k6/unimplemented.js', {});
  assert.equal(imports.code, 107, imports.stderr);
  assert.match(imports.stderr, /k6 module "k6\/crypto" is not implemented/);
  assert.match(imports.stderr, /"node:fs" is not a k6 module/);
  assert.match(imports.stderr, /"ws" is not a k6 module/);
  const thresholds = await k6('test/fixtures/k6/bad-threshold.js', {});
  assert.equal(thresholds.code, 104, thresholds.stderr);
  assert.match(thresholds.stderr, /no metric name "no_such_metric" found/);
  assert.match(thresholds.stderr, /a rate metric has no "p\(95\)"/);
  // Typed but absent in k6: the iteration fails (logged, exit 0 as in k6) instead of reading undefined.
  const constants = await k6('test/fixtures/k6/ws-constants.js', {});
  assert.equal(constants.code, 0, constants.stderr);
  assert.match(constants.stderr, /k6's WebSocket has no OPEN constant/);
});

test('a threshold with abortOnFail ends the run at its next evaluation (exit 99), interrupting a sleeping VU', async () => {
  const t0 = Date.now();
  const run = await k6('test/fixtures/k6/abort-on-fail.js', {});
  assert.equal(run.code, 99, run.stderr);
  assert.match(run.stderr, /thresholds crossed with abortOnFail: errors count<1/);
  assert.ok(Date.now() - t0 < 25_000, `took ${Date.now() - t0} ms; the VU sleeps 30 s`);
});

test('scale-out-in.ts against rtc-edge dev: /api/pods rises above the minimum and comes back, exit 0; an impossible threshold exits 99', async () => {
  await withDev(async (dev, dir) => {
    const min = await podCount(dev);
    assert.equal(min, 2);
    const seen: number[] = [];
    let polling = true;
    const poll = (async () => {
      while (polling) {
        seen.push(await podCount(dev));
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    const summary = path.join(dir, 'scale.json');
    // 16 clients at 4 connections per pod: the scaler wants 4 pods while they are connected.
    const run = await k6('loadtest/k6/scale-out-in.ts', { BASE_URL: dev.url, VUS: '16', RAMP_UP: '2s', HOLD: '4s', RAMP_DOWN: '1s', SCALE_IN_WAIT: '10s', PING_MS: '300', POLL: '250ms', EXPECT_SCALE: 'true', SUMMARY_JSON: summary, ...LOOSE });
    polling = false;
    await poll;
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.ok(Math.max(...seen) > min, `pods seen by the test: ${seen.join(',')}`);
    assert.equal(seen.at(-1), min, `pods seen by the test: ${seen.join(',')}`);
    assert.match(run.stdout, /scale-out: first new pod [\d.]+s after the start/);
    assert.match(run.stdout, /scale-in: back to the baseline [\d.]+s after the clients left/);
    const data = json(summary);
    assert.ok(data.metrics.pods!.values.max! > min);
    assert.equal(data.metrics.ws_connect_success!.values.fails, 0);
    assert.ok(Object.values(data.metrics.ping_rtt!.thresholds!).every((t) => t.ok));

    const impossible = await k6('loadtest/k6/scale-out-in.ts', { BASE_URL: dev.url, VUS: '4', RAMP_UP: '1s', HOLD: '2s', RAMP_DOWN: '0s', SCALE_IN_WAIT: '0s', PING_MS: '200', PING_P95_MS: '0', SUMMARY_JSON: path.join(dir, 'impossible.json') });
    assert.equal(impossible.code, 99, impossible.stdout + impossible.stderr);
    assert.match(impossible.stderr, /thresholds on metrics 'ping_rtt' have been crossed: p\(95\)<0/);
    assert.match(impossible.stdout, /✗ ping_rtt: p\(95\)<0/);
  });
});

test('drain-reconnect.ts: every client pinned to the drained pod is back on another pod within the drain window plus its backoff', async () => {
  await withDev(async (dev, dir) => {
    const summary = path.join(dir, 'drain.json');
    // DRAIN_AT and SLACK_MS leave room for a loaded CI machine; a client that does not follow the notice (or
    // waits far longer than retryAfterMs with jitter) still misses the bound.
    const run = await k6('loadtest/k6/drain-reconnect.ts', { BASE_URL: dev.url, VUS: '10', DRAIN_AT: '4s', DRAIN_WINDOW_MS: '300', SLACK_MS: '5000', PING_MS: '300', SUMMARY_JSON: summary });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /re-homed in time: 10 of 10/);
    const data = json(summary);
    assert.deepEqual([data.metrics.rehomed_in_time!.values.passes, data.metrics.rehomed_in_time!.values.fails], [10, 0]);
    // The pod's own /drain answer: all 10 pinned connections were drained, none left behind.
    assert.equal(data.metrics.drained_connections!.values.count, 10);
    // A target well above the clients keeps the scaler at its minimum, and a long scale-in delay keeps the
    // replacement it starts for the drained pod from being scaled in again mid-test: only the drain moves anyone.
  }, { SOCKET_TARGET_CONNECTIONS: '100', SCALE_IN_STABILIZATION_MS: '60000' });
});

test('connect-storm.ts prints connects per second and the handshake p95 through the gateway', async () => {
  await withDev(async (dev, dir) => {
    const summary = path.join(dir, 'storm.json');
    const run = await k6('loadtest/k6/connect-storm.ts', { BASE_URL: dev.url, VUS: '2', CONNS: '25', HOLD: '500ms', SUMMARY_JSON: summary, ...LOOSE });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /connect-storm: 50\/50 connections in [\d.]+s = \d+ connects\/s; handshake p95 [\d.]+ ms/);
    const storm = json(summary).storm!;
    assert.equal(storm.connected, 50);
    assert.ok(storm.connectsPerSecond! > 0 && storm.handshakeP95Ms! > 0, JSON.stringify(storm));
  });
});
