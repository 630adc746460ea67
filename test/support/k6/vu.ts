/**
 * The worker that is one k6 VU: it evaluates the bundled script (its own copy, as each k6 VU has its own JS
 * runtime), runs iterations, setup/teardown/handleSummary, and streams metric samples to the main thread.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import type { FromWorker, ToWorker } from './protocol.js';
import { Interrupted, vu } from './state.js';

/** What run.ts passes to each worker. */
export interface VuWorkerData {
  vuId: number;
  env: Record<string, string>;
  cells: SharedArrayBuffer;
  httpPort: MessagePort;
}

const SAMPLE_FLUSH_MS = 200;
type ScriptModule = Record<string, unknown>;

const port = parentPort!;
const data = workerData as VuWorkerData;
const g = globalThis as Record<string, unknown>;
g.__ENV = data.env;
g.__VU = data.vuId;
g.__ITER = 0;
vu.vuId = data.vuId;
vu.env = data.env;
vu.cells = new Int32Array(data.cells);
vu.httpPort = data.httpPort;
vu.post = (m: FromWorker) => port.postMessage(m);

const flush = () => vu.flush();
setInterval(flush, SAMPLE_FLUSH_MS).unref();

let script: ScriptModule | undefined;

function describe(err: unknown): string {
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}

/** Run one script function to completion: its promise, then an empty event loop. */
async function runToIdle(fn: unknown, arg: unknown): Promise<unknown> {
  if (typeof fn !== 'function') throw new Error('not a function');
  const result: unknown = await (fn as (a: unknown) => unknown)(arg);
  await vu.idle();
  return result;
}

async function handle(msg: ToWorker): Promise<void> {
  switch (msg.type) {
    case 'init': {
      try {
        // @ts-expect-error resolved by the bundler (bundle.ts) to the script under test
        script = (await import('k6-test-runtime:script')) as ScriptModule;
        vu.inInit = false;
        const options = script.options ?? {};
        const exports = Object.keys(script).filter((k) => typeof script![k] === 'function');
        flush();
        vu.post!({ type: 'init', report: { options: JSON.parse(JSON.stringify(options)) as unknown, exports, metrics: [...vu.metrics.values()] } });
      } catch (err) {
        vu.post!({ type: 'init-error', error: describe(err) });
      }
      return;
    }
    case 'call': {
      try {
        const result = await runToIdle(script![msg.fn], msg.arg);
        flush();
        vu.post!({ type: 'done', result: result === undefined ? undefined : (JSON.parse(JSON.stringify(result)) as unknown) });
      } catch (err) {
        flush();
        vu.post!({ type: 'done', error: describe(err) });
      }
      return;
    }
    case 'iterate': {
      vu.scenario = msg.scenario;
      vu.iterationInScenario = msg.iterationInScenario;
      vu.iterationInInstance = msg.iterationInInstance;
      g.__ITER = msg.iterationInScenario;
      const t0 = performance.now();
      let error: string | undefined;
      try {
        await runToIdle(script![msg.exec], msg.data);
      } catch (err) {
        vu.cancelAll();
        if (!(err instanceof Interrupted) && !vu.interrupted()) error = describe(err);
      }
      const interrupted = vu.interrupted();
      if (!interrupted) {
        vu.emit('iterations', 1);
        vu.emit('iteration_duration', performance.now() - t0);
      }
      if (error) console.error(`ERRO VU ${vu.vuId} iteration ${msg.iterationInScenario} of ${msg.scenario.name}: ${error}`);
      vu.group = '';
      flush();
      vu.post!({ type: 'done', interrupted, ...(error ? { error } : {}) });
      return;
    }
    case 'interrupt':
      vu.cancelAll();
      return;
  }
}

port.on('message', (msg: ToWorker) => void handle(msg));
