/**
 * `npm run bench:k6`: the k6 scripts' own figures on this machine, run through the test-only k6 runtime
 * (test/support/k6; k6 itself is never run here) against an in-process `rtc-edge dev`:
 * - connect-storm.ts through the gateway: connects per second over the burst and the handshake p95;
 * - scale-out-in.ts in dev: time to the first new pod, and from the clients leaving back to the minimum.
 * Writes artifacts/bench-k6.json (rendered into BENCHMARKS.md by `npm run bench`).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { start as startDev } from '../app/dev.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const OUT = path.join(ROOT, 'artifacts');

/** Sizes of each run: a burst of 1,000 connections; 80 clients past 4 pods of 20 connections. */
const STORM = { VUS: '10', CONNS: '100', HOLD: '2s' };
const SCALE_DEV = { SOCKET_TARGET_CONNECTIONS: '20' };
const SCALE = { VUS: '80', RAMP_UP: '10s', HOLD: '10s', RAMP_DOWN: '5s', SCALE_IN_WAIT: '50s', PING_MS: '1000', EXPECT_SCALE: 'true' };

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The command line a user types for the same run with their own k6. */
const k6Command = (script: string, env: Record<string, string>) => `k6 run ${Object.entries(env).map(([k, v]) => `-e ${k}=${v}`).join(' ')} loadtest/k6/${script}`;

function runScript(script: string, env: Record<string, string>): Promise<number | null> {
  const args = ['--import', 'tsx', path.join(ROOT, 'test/support/k6/run.ts'), path.join(ROOT, 'loadtest/k6', script), ...Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`])];
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  return new Promise((resolve) => child.on('close', resolve));
}

async function withDev<T>(env: Record<string, string>, fn: (url: string) => Promise<T>): Promise<T> {
  const dev = await startDev(loadConfig({ GATEWAY_PORT: '0', LOG_LEVEL: 'warn', ...env }, 'dev'), { logger: createLogger('warn'), host: '127.0.0.1', banner: () => {} });
  try {
    return await fn(dev.url);
  } finally {
    await dev.close();
  }
}

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  const stormFile = path.join(OUT, 'k6-connect-storm.json');
  const scaleFile = path.join(OUT, 'k6-scale-out-in.json');
  const loadBefore = os.loadavg()[0];
  const storm = await withDev({}, async (url) => ({ code: await runScript('connect-storm.ts', { BASE_URL: url, ...STORM, SUMMARY_JSON: stormFile }), url }));
  const scale = await withDev(SCALE_DEV, async (url) => ({ code: await runScript('scale-out-in.ts', { BASE_URL: url, ...SCALE, SUMMARY_JSON: scaleFile }), url }));
  const s = JSON.parse(readFileSync(stormFile, 'utf8')) as Json;
  const o = JSON.parse(readFileSync(scaleFile, 'utf8')) as Json;
  const result = {
    runtime: 'test/support/k6 (test-only k6 runtime; one worker thread per VU)',
    // The machine is shared: the 1-minute load average before and after says how much CPU the run had.
    loadAverage: { before: Number(loadBefore.toFixed(1)), after: Number(os.loadavg()[0].toFixed(1)), cpus: os.cpus().length },
    stormCommand: `npx rtc-edge dev & ${k6Command('connect-storm.ts', STORM)}`,
    stormExit: storm.code,
    storm: s.storm,
    scaleCommand: `${Object.entries(SCALE_DEV).map(([k, v]) => `${k}=${v}`).join(' ')} npx rtc-edge dev & ${k6Command('scale-out-in.ts', SCALE)}`,
    scaleExit: scale.code,
    scale: {
      basePods: o.metrics.pods?.values?.min,
      peakPods: o.metrics.pods?.values?.max,
      scaleOutS: (o.metrics.scale_out_time?.values?.max ?? NaN) / 1000,
      scaleInS: (o.metrics.scale_in_time?.values?.max ?? NaN) / 1000,
      pingP95Ms: o.metrics.ping_rtt?.values?.['p(95)'],
      connectSuccess: o.metrics.ws_connect_success?.values?.rate,
      reconnects: o.metrics.reconnects?.values?.count ?? 0,
    },
  };
  writeFileSync(path.join(OUT, 'bench-k6.json'), `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:k6: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
