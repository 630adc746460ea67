/**
 * The state of the one VU a worker runs, shared by the k6 module implementations: identity, the event loop
 * (what keeps an iteration alive), metric samples, and the blocking channel to the main thread.
 */
import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { Cell, type CheckResult, type FromWorker, type HttpRequest, type HttpResponse, type MetricDecl, type MetricType, type Sample, type ScenarioInfo } from './protocol.js';

/** Thrown through the script when the VU is interrupted; never caught by the runtime as a script error. */
export class Interrupted extends Error {
  constructor() {
    super('VU interrupted');
    this.name = 'Interrupted';
  }
}

/** Something that keeps the event loop alive (a timer, an open WebSocket) and can be dropped on interrupt. */
export interface LoopTask {
  /** Stop silently: no more callbacks reach the script. */
  cancel(): void;
}

const METRIC_NAME = /^[a-zA-Z_][a-zA-Z0-9_]{0,127}$/;

class VuState {
  vuId = 0;
  env: Record<string, string> = {};
  /** True while the script's module is being evaluated (k6's init context). */
  inInit = true;
  scenario: ScenarioInfo | undefined;
  iterationInScenario = 0;
  iterationInInstance = 0;
  group = '';
  cells: Int32Array | undefined;
  httpPort: MessagePort | undefined;
  /** Posts to the main thread (set by the worker entry). */
  post: ((msg: FromWorker) => void) | undefined;
  private readonly tasks = new Set<LoopTask>();
  private samples: Sample[] = [];
  private checks: CheckResult[] = [];
  private newMetrics: MetricDecl[] = [];
  readonly metrics = new Map<string, MetricDecl>();
  private idleWaiter: (() => void) | undefined;
  private failure: unknown;

  /** Declare a metric (k6 allows it only in the init context). */
  declare(name: string, type: MetricType, isTime: boolean): void {
    if (!this.inInit) throw new Error(`metric "${name}": metrics must be declared in the init context`);
    if (!METRIC_NAME.test(name)) throw new Error(`invalid metric name "${name}"`);
    const had = this.metrics.get(name);
    if (had && (had.type !== type || had.isTime !== isTime)) throw new Error(`metric "${name}" already declared as a ${had.type}`);
    if (had) return;
    const decl = { name, type, isTime };
    this.metrics.set(name, decl);
    this.newMetrics.push(decl);
  }

  /** Record a sample with the VU's current tags. */
  emit(metric: string, value: number, tags: Record<string, string> = {}): void {
    const base: Record<string, string> = this.scenario ? { scenario: this.scenario.name } : {};
    if (this.group) base.group = this.group;
    this.samples.push({ metric, value, tags: { ...base, ...tags }, time: Date.now() });
  }

  check(name: string, ok: boolean): void {
    this.checks.push({ group: this.group, name, ok });
  }

  /** Samples, checks and declarations since the last call. */
  drain(): { samples: Sample[]; checks: CheckResult[]; metrics: MetricDecl[] } {
    const out = { samples: this.samples, checks: this.checks, metrics: this.newMetrics };
    this.samples = [];
    this.checks = [];
    this.newMetrics = [];
    return out;
  }

  /** Send what was recorded to the main thread now (also before blocking: a blocked worker's timers do not run). */
  flush(): void {
    const batch = this.drain();
    if (batch.samples.length || batch.checks.length || batch.metrics.length) this.post?.({ type: 'samples', ...batch });
  }

  interrupted(): boolean {
    return this.cells !== undefined && Atomics.load(this.cells, Cell.INTERRUPT) === 1;
  }

  /** Throws {@link Interrupted} when the VU must stop. */
  assertRunning(): void {
    if (this.interrupted()) throw new Interrupted();
  }

  /** Block the VU (k6's sleep): woken early by an interrupt. */
  block(ms: number): void {
    const cells = this.cells;
    if (!cells) throw new Error('sleep() is not available in this context');
    this.flush();
    if (ms > 0) Atomics.wait(cells, Cell.INTERRUPT, 0, ms);
    this.assertRunning();
  }

  /** A blocking HTTP round trip through the main thread. */
  http(req: HttpRequest): HttpResponse {
    const cells = this.cells;
    const port = this.httpPort;
    if (!cells || !port) throw new Error('k6/http: making requests in the init context is not supported');
    this.flush();
    Atomics.store(cells, Cell.HTTP_READY, 0);
    port.postMessage(req);
    while (Atomics.load(cells, Cell.HTTP_READY) === 0) Atomics.wait(cells, Cell.HTTP_READY, 0);
    const msg = receiveMessageOnPort(port);
    if (!msg) throw new Error('k6 test runtime: HTTP response missing');
    return msg.message as HttpResponse;
  }

  addTask(task: LoopTask): void {
    this.tasks.add(task);
  }

  removeTask(task: LoopTask): void {
    this.tasks.delete(task);
    this.maybeIdle();
  }

  /** Run a script callback from the event loop: a throw ends the iteration (as in k6), an interrupt is silent. */
  callback(fn: () => unknown): void {
    try {
      const r = fn();
      if (r instanceof Promise) r.catch((err: unknown) => this.fail(err));
    } catch (err) {
      this.fail(err);
    }
    this.maybeIdle();
  }

  fail(err: unknown): void {
    this.failure ??= err;
    this.cancelAll();
  }

  /** Drop every pending task without calling back into the script. */
  cancelAll(): void {
    for (const t of [...this.tasks]) t.cancel();
    this.tasks.clear();
    this.maybeIdle();
  }

  /** Resolves once no task is pending (the iteration's event loop is empty); rejects with a callback's error. */
  async idle(): Promise<void> {
    for (;;) {
      if (this.tasks.size > 0) await new Promise<void>((r) => (this.idleWaiter = r));
      // Let promise chains and already queued I/O callbacks schedule more work before judging the loop empty.
      await new Promise((r) => setImmediate(r));
      if (this.tasks.size === 0) break;
    }
    const failure = this.failure;
    this.failure = undefined;
    if (failure !== undefined) throw failure;
  }

  private maybeIdle(): void {
    if (this.tasks.size === 0 && this.idleWaiter) {
      const w = this.idleWaiter;
      this.idleWaiter = undefined;
      w();
    }
  }
}

/** The VU of this worker thread. */
export const vu = new VuState();
