/** `k6/execution`: the VU's and scenario's identity and `test.abort()`; any other property throws. */
import { Interrupted, vu } from '../state.js';

/** An object whose unknown properties fail loudly instead of reading as undefined. */
function strict<T extends object>(what: string, obj: T): T {
  return new Proxy(obj, {
    get(target, prop, receiver) {
      if (typeof prop === 'symbol' || prop in target) return Reflect.get(target, prop, receiver);
      throw new Error(`k6 test runtime: k6/execution ${what}.${prop} is not implemented`);
    },
  });
}

function inScenario() {
  const s = vu.scenario;
  if (!s) throw new Error('k6/execution: scenario information is only available in a scenario iteration');
  return s;
}

/** `exec.vu`. */
export const vuInfo = strict('vu', {
  get idInTest() {
    return vu.vuId;
  },
  get idInInstance() {
    return vu.vuId;
  },
  get iterationInScenario() {
    return vu.iterationInScenario;
  },
  get iterationInInstance() {
    return vu.iterationInInstance;
  },
});

/** `exec.scenario`. */
export const scenario = strict('scenario', {
  get name() {
    return inScenario().name;
  },
  get executor() {
    return inScenario().executor;
  },
  get startTime() {
    return inScenario().startTime;
  },
});

/** `exec.test`: abort() stops the whole run (k6 exit code 108). */
export const test = strict('test', {
  abort(reason?: string): never {
    vu.post?.({ type: 'abort', reason: reason ?? 'test aborted' });
    throw new Interrupted();
  },
});

export { vuInfo as vu };
export default strict('execution', { vu: vuInfo, scenario, test });
