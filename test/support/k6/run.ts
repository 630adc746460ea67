/**
 * Test-only k6 runtime: `node --import tsx test/support/k6/run.ts <script> [-e KEY=VALUE]...`.
 *
 * Runs the project's k6 scripts in the test suite without k6 (which this project never builds, installs or
 * runs). Each VU is a worker thread with its own copy of the script; the `ramping-vus` and `per-vu-iterations`
 * executors, thresholds
 * (evaluated at the end, and every 2 s for abortOnFail ones), setup/teardown and handleSummary follow k6's
 * documentation, as do the exit codes: 99 thresholds failed, 104 invalid options, 107 script error, 108
 * test.abort(). It implements only what the scripts in loadtest/k6 use; it is not a k6 replacement.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { MessageChannel, Worker } from 'node:worker_threads';
import { bundleScript, BundleError } from './bundle.js';
import { MetricStore } from './metrics-store.js';
import { maxVUs, parseOptions, scheduleMs, vusAt, type RunOptions, type Scenario } from './options.js';
import { Cell, type CheckResult, type FromWorker, type HttpRequest, type HttpResponse, type InitReport, type ToWorker } from './protocol.js';
import { plainSummary, summaryData } from './summary.js';
import { evaluate, parseThresholds, type Threshold } from './thresholds.js';
import type { VuWorkerData } from './vu.js';

/** k6's exit codes (errext/exitcodes). */
export const ExitCode = { OK: 0, THRESHOLDS_FAILED: 99, INVALID_CONFIG: 104, SCRIPT_EXCEPTION: 107, SCRIPT_ABORTED: 108 } as const;

const TICK_MS = 50;
const ABORT_EVAL_MS = 2_000;
const VUS_SAMPLE_MS = 1_000;
/** k6's error_code for a failed request; -1 marks a timeout (http.ts maps it to k6's 1050). */
const HTTP_ERROR = 1000;
const HTTP_TIMEOUT = -1;

class Failure extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** One VU worker, from the main thread's side. */
class VuHandle {
  readonly worker: Worker;
  readonly cells: Int32Array;
  active = false;
  iterating = false;
  iterations = 0;
  private waiter: ((msg: Extract<FromWorker, { type: 'done' }>) => void) | undefined;
  private initWaiter: ((msg: FromWorker) => void) | undefined;

  constructor(
    readonly id: number,
    bundle: string,
    env: Record<string, string>,
    private readonly run: Runner,
  ) {
    const shared = new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT * 2);
    this.cells = new Int32Array(shared);
    const channel = new MessageChannel();
    channel.port1.on('message', (req: HttpRequest) => void this.http(channel.port1, req));
    channel.port1.unref();
    const data: VuWorkerData = { vuId: id, env, cells: shared, httpPort: channel.port2 };
    this.worker = new Worker(bundle, { workerData: data, transferList: [channel.port2] });
    this.worker.on('message', (msg: FromWorker) => this.onMessage(msg));
    this.worker.on('error', (err) => run.fatal(new Failure(ExitCode.SCRIPT_EXCEPTION, `VU ${id} crashed: ${err.stack ?? err.message}`)));
  }

  private onMessage(msg: FromWorker): void {
    switch (msg.type) {
      case 'samples':
        this.run.ingest(msg.samples, msg.checks, msg.metrics);
        return;
      case 'abort':
        this.run.abort(msg.reason);
        return;
      case 'done': {
        const w = this.waiter;
        this.waiter = undefined;
        w?.(msg);
        return;
      }
      default: {
        const w = this.initWaiter;
        this.initWaiter = undefined;
        w?.(msg);
      }
    }
  }

  private send(msg: ToWorker): void {
    this.worker.postMessage(msg);
  }

  init(): Promise<InitReport> {
    return new Promise((resolve, reject) => {
      this.initWaiter = (msg) => (msg.type === 'init' ? resolve(msg.report) : reject(new Failure(ExitCode.SCRIPT_EXCEPTION, msg.type === 'init-error' ? msg.error : 'unexpected message')));
      this.send({ type: 'init' });
    });
  }

  /** Run one script function (setup, teardown, handleSummary, or an iteration) and wait for it. */
  private await(msg: ToWorker): Promise<Extract<FromWorker, { type: 'done' }>> {
    return new Promise((resolve) => {
      this.waiter = resolve;
      this.send(msg);
    });
  }

  call(fn: 'setup' | 'teardown' | 'handleSummary', arg?: unknown) {
    Atomics.store(this.cells, Cell.INTERRUPT, 0);
    return this.await({ type: 'call', fn, arg });
  }

  async iterate(s: Scenario, startTime: number, data: unknown, iterationInInstance: number) {
    Atomics.store(this.cells, Cell.INTERRUPT, 0);
    this.iterating = true;
    const iterationInScenario = this.run.nextIteration(s.name);
    try {
      return await this.await({ type: 'iterate', scenario: { name: s.name, executor: s.executor, startTime }, exec: s.exec, data, iterationInScenario, iterationInInstance });
    } finally {
      this.iterating = false;
    }
  }

  interrupt(): void {
    Atomics.store(this.cells, Cell.INTERRUPT, 1);
    Atomics.notify(this.cells, Cell.INTERRUPT);
    this.send({ type: 'interrupt' });
  }

  private async http(port: MessageChannel['port1'], req: HttpRequest): Promise<void> {
    const t0 = performance.now();
    let res: HttpResponse;
    try {
      const r = await fetch(req.url, { method: req.method, headers: req.headers, body: req.body, signal: AbortSignal.timeout(req.timeoutMs) });
      const body = await r.text();
      res = { status: r.status, headers: Object.fromEntries(r.headers), body, durationMs: performance.now() - t0, error: '', errorCode: 0 };
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      const timeout = e.name === 'TimeoutError';
      const error = timeout ? 'request timeout' : `${req.method} ${req.url}: ${e.cause?.code ?? e.cause?.message ?? e.message}`;
      res = { status: 0, headers: {}, body: '', durationMs: performance.now() - t0, error, errorCode: timeout ? HTTP_TIMEOUT : HTTP_ERROR };
    }
    port.postMessage(res);
    Atomics.store(this.cells, Cell.HTTP_READY, 1);
    Atomics.notify(this.cells, Cell.HTTP_READY);
  }
}

/** One run of one script. */
class Runner {
  readonly store = new MetricStore();
  private readonly checks: CheckResult[] = [];
  private readonly iterationCounts = new Map<string, number>();
  private thresholds: Threshold[] = [];
  private aborted: { code: number; reason: string } | undefined;
  private readonly vus: VuHandle[] = [];
  private fatalError: Failure | undefined;
  private wake: (() => void) | undefined;
  private started = 0;

  constructor(
    private readonly bundle: string,
    private readonly env: Record<string, string>,
  ) {}

  ingest(samples: { metric: string; value: number; tags: Record<string, string> }[], checks: CheckResult[], metrics: InitReport['metrics']): void {
    for (const m of metrics) this.store.declare(m);
    for (const s of samples) this.store.add({ ...s, time: 0 });
    this.checks.push(...checks);
  }

  nextIteration(scenario: string): number {
    const n = this.iterationCounts.get(scenario) ?? 0;
    this.iterationCounts.set(scenario, n + 1);
    return n;
  }

  abort(reason: string, code: number = ExitCode.SCRIPT_ABORTED): void {
    this.aborted ??= { code, reason };
    for (const v of this.vus) if (v.iterating) v.interrupt();
    this.wake?.();
  }

  fatal(f: Failure): void {
    this.fatalError ??= f;
    this.abort(f.message, f.code);
  }

  private vu(id: number): VuHandle {
    const h = new VuHandle(id, this.bundle, this.env, this);
    this.vus.push(h);
    return h;
  }

  async execute(): Promise<number> {
    const control = this.vu(0);
    let options: RunOptions;
    try {
      const report = await control.init();
      for (const m of report.metrics) this.store.declare(m);
      try {
        options = parseOptions(report.options, report.exports);
        this.thresholds = parseThresholds(options.thresholds, this.store);
      } catch (err) {
        throw new Failure(ExitCode.INVALID_CONFIG, (err as Error).message);
      }
      const hasFn = (name: string) => report.exports.includes(name);

      let data: unknown;
      if (hasFn('setup')) {
        const r = await control.call('setup');
        if (r.error) throw new Failure(ExitCode.SCRIPT_EXCEPTION, `setup() failed: ${r.error}`);
        data = r.result;
      }
      const total = options.scenarios.reduce((n, s) => n + maxVUs(s), 0);
      const pools: VuHandle[][] = [];
      let nextId = 1;
      for (const s of options.scenarios) pools.push(Array.from({ length: maxVUs(s) }, () => this.vu(nextId++)));
      await Promise.all(pools.flat().map((v) => v.init()));
      this.store.sink('vus_max')!.add(total);

      this.started = Date.now();
      await this.runScenarios(options, pools, data);
      const durationMs = Date.now() - this.started;
      if (this.fatalError) throw this.fatalError;

      if (hasFn('teardown')) {
        const r = await control.call('teardown', data);
        if (r.error) process.stderr.write(`teardown() failed: ${r.error}\n`);
      }
      const failed = evaluate(this.thresholds, this.store, durationMs);
      // k6 adds what setup() returned as `setup_data`.
      const summary = { ...summaryData(this.store, this.thresholds, this.checks, durationMs, options.summaryTrendStats), ...(hasFn('setup') ? { setup_data: data } : {}) };
      if (hasFn('handleSummary')) {
        const r = await control.call('handleSummary', summary);
        if (r.error) process.stderr.write(`handleSummary() failed: ${r.error}\n${plainSummary(summary)}`);
        else writeOutputs(r.result);
      } else {
        process.stdout.write(plainSummary(summary));
      }
      for (const t of failed) process.stderr.write(`thresholds on metrics '${t.key}' have been crossed: ${t.source}\n`);
      if (this.aborted) {
        process.stderr.write(`test aborted: ${this.aborted.reason}\n`);
        return this.aborted.code;
      }
      return failed.length > 0 ? ExitCode.THRESHOLDS_FAILED : ExitCode.OK;
    } finally {
      await Promise.all(this.vus.map((v) => v.worker.terminate()));
    }
  }

  /** The ramping-vus executor for every scenario at once. */
  private async runScenarios(options: RunOptions, pools: VuHandle[][], data: unknown): Promise<void> {
    const loops: Promise<void>[] = [];
    let iterationInInstance = 0;
    const ended = new Set<Scenario>();
    const rampTimers = new Map<VuHandle, NodeJS.Timeout>();
    const finished = new Map<Scenario, number>();
    const started = new Set<VuHandle>();
    const start = (s: Scenario, v: VuHandle, startTime: number) => {
      v.active = true;
      clearTimeout(rampTimers.get(v));
      rampTimers.delete(v);
      if (v.iterating) return; // still finishing the last iteration; the loop below picks it up again
      const limit = s.executor === 'per-vu-iterations' ? s.iterations : Infinity;
      loops.push(
        (async () => {
          let n = 0;
          while (v.active && !this.aborted && n < limit) {
            await v.iterate(s, startTime, data, iterationInInstance++);
            n++;
          }
          if (n >= limit) {
            v.active = false;
            finished.set(s, (finished.get(s) ?? 0) + 1);
          }
        })(),
      );
    };
    const stop = (v: VuHandle, graceMs: number) => {
      if (!v.active) return;
      v.active = false;
      if (v.iterating && !rampTimers.has(v)) rampTimers.set(v, setTimeout(() => v.iterating && !v.active && v.interrupt(), graceMs));
    };

    let lastVus = 0;
    let lastAbortEval = 0;
    for (;;) {
      const now = Date.now();
      const elapsed = now - this.started;
      let active = 0;
      options.scenarios.forEach((s, i) => {
        const pool = pools[i]!;
        const t = elapsed - s.startTimeMs;
        if (t < 0 || ended.has(s)) return;
        if (t >= scheduleMs(s) || (s.executor === 'per-vu-iterations' && finished.get(s) === pool.length)) {
          ended.add(s);
          for (const v of pool) stop(v, s.gracefulStopMs);
          return;
        }
        const want = vusAt(s, t);
        pool.forEach((v, j) => {
          if (j >= want) stop(v, s.gracefulRampDownMs);
          else if (!v.active && (s.executor === 'ramping-vus' || !started.has(v))) {
            started.add(v);
            start(s, v, this.started + s.startTimeMs);
          }
        });
        active += pool.filter((v) => v.active).length;
      });
      if (now - lastVus >= VUS_SAMPLE_MS) {
        this.store.sink('vus')!.add(active);
        lastVus = now;
      }
      if (now - lastAbortEval >= ABORT_EVAL_MS) {
        lastAbortEval = now;
        const due = this.thresholds.filter((t) => t.abortOnFail && elapsed >= t.delayAbortEvalMs);
        const crossed = evaluate(due, this.store, elapsed);
        if (crossed.length > 0) this.abort(`thresholds crossed with abortOnFail: ${crossed.map((t) => `${t.key} ${t.source}`).join(', ')}`, ExitCode.THRESHOLDS_FAILED);
      }
      if (this.aborted || ended.size === options.scenarios.length) break;
      await new Promise<void>((r) => {
        this.wake = r;
        setTimeout(r, TICK_MS);
      });
    }
    // Every loop ends once its VU is inactive and its last iteration returned (or was interrupted).
    await Promise.all(loops);
    for (const t of rampTimers.values()) clearTimeout(t);
  }
}

/** Write handleSummary's result: `stdout`, `stderr`, or a file path (relative to the working directory). */
function writeOutputs(result: unknown): void {
  if (!result || typeof result !== 'object') return;
  for (const [target, content] of Object.entries(result as Record<string, unknown>)) {
    const text = typeof content === 'string' ? content : JSON.stringify(content);
    if (target === 'stdout') process.stdout.write(text);
    else if (target === 'stderr') process.stderr.write(text);
    else {
      mkdirSync(path.dirname(path.resolve(target)), { recursive: true });
      writeFileSync(target, text);
    }
  }
}

/** Parse `<script> [-e KEY=VALUE]...`; throws with usage on bad arguments. */
export function parseArgs(argv: string[]): { script: string; env: Record<string, string> } {
  const env: Record<string, string> = {};
  let script: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-e' || a === '--env') {
      const kv = argv[++i];
      const eq = kv?.indexOf('=') ?? -1;
      if (!kv || eq <= 0) throw new Error(`${a} expects KEY=VALUE`);
      env[kv.slice(0, eq)] = kv.slice(eq + 1);
    } else if (!script && !a.startsWith('-')) script = a;
    else throw new Error(`unexpected argument "${a}"`);
  }
  if (!script) throw new Error('no script given');
  return { script, env };
}

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`k6 test runtime: ${(err as Error).message}\nusage: node --import tsx test/support/k6/run.ts <script> [-e KEY=VALUE]...\n`);
    return 2;
  }
  let bundle: string;
  try {
    bundle = await bundleScript(args.script);
  } catch (err) {
    process.stderr.write(`k6 test runtime: ${args.script}: ${(err as Error).message}\n`);
    return err instanceof BundleError ? ExitCode.SCRIPT_EXCEPTION : 1;
  }
  // k6 run passes the system environment to __ENV (--include-system-env-vars), -e values win.
  const env = { ...(process.env as Record<string, string>), ...args.env };
  try {
    return await new Runner(bundle, env).execute();
  } catch (err) {
    const code = err instanceof Failure ? err.code : ExitCode.SCRIPT_EXCEPTION;
    process.stderr.write(`k6 test runtime: ${(err as Error).message}\n`);
    return code;
  } finally {
    rmSync(path.dirname(bundle), { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`k6 test runtime: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);
