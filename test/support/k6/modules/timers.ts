/** `k6/timers`: setTimeout/setInterval that keep the VU's iteration alive until they fire or are cleared. */
import { vu, type LoopTask } from '../state.js';

const live = new Map<number, LoopTask>();
let nextId = 1;

function schedule(fn: (...args: unknown[]) => void, delay: number, args: unknown[], repeat: boolean): number {
  vu.assertRunning();
  const id = nextId++;
  const ms = Math.max(0, Number(delay) || 0);
  const task: LoopTask = {
    cancel: () => {
      globalThis.clearTimeout(handle);
      live.delete(id);
    },
  };
  const fire = () => {
    if (!repeat) {
      live.delete(id);
      vu.removeTask(task);
    }
    vu.callback(() => fn(...args));
  };
  // The globals, not this module's exports of the same names.
  const handle = repeat ? globalThis.setInterval(fire, ms) : globalThis.setTimeout(fire, ms);
  live.set(id, task);
  vu.addTask(task);
  return id;
}

function clear(id: number): void {
  const task = live.get(id);
  if (!task) return;
  task.cancel();
  vu.removeTask(task);
}

/** Call `fn` once after `delay` ms. */
export function setTimeout(fn: (...args: unknown[]) => void, delay: number, ...args: unknown[]): number {
  return schedule(fn, delay, args, false);
}

/** Cancel a setTimeout. */
export function clearTimeout(id: number): void {
  clear(id);
}

/** Call `fn` every `delay` ms until cleared. */
export function setInterval(fn: (...args: unknown[]) => void, delay: number, ...args: unknown[]): number {
  return schedule(fn, delay, args, true);
}

/** Cancel a setInterval. */
export function clearInterval(id: number): void {
  clear(id);
}
