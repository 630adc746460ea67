/** The `k6` module: check, sleep and group (nothing else; a missing export fails the bundle). */
import { vu } from '../state.js';

/** k6's check: each named predicate adds one `checks` sample; true when all passed. */
export function check<T>(val: T, sets: Record<string, (v: T) => unknown>, tags?: Record<string, string>): boolean {
  let all = true;
  for (const [name, fn] of Object.entries(sets)) {
    const ok = Boolean(typeof fn === 'function' ? fn(val) : fn);
    vu.emit('checks', ok ? 1 : 0, { ...tags, check: name });
    vu.check(name, ok);
    all &&= ok;
  }
  return all;
}

/** k6's sleep: blocks this VU (and only this VU) for `seconds`. */
export function sleep(seconds: number): void {
  vu.block(Math.max(0, Number(seconds) * 1000));
}

/** k6's group: tags the samples made inside with `group`; async functions are refused as k6 does. */
export function group<T>(name: string, fn: () => T): T {
  if (name.includes('::')) throw new Error('group and check names may not contain "::"');
  const outer = vu.group;
  vu.group = `${outer}::${name}`;
  const t0 = performance.now();
  try {
    const r = fn();
    if (r instanceof Promise) throw new Error('group() does not support async functions');
    return r;
  } finally {
    vu.emit('group_duration', performance.now() - t0);
    vu.group = outer;
  }
}
