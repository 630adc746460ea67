/**
 * Paced closing, shared by the socket node's drain (reconnect + 1012) and the gateway's shutdown (1001):
 * every connection open at the start gets its notice at its own moment in the window. The window is cut
 * into one slot per connection and each notice falls at a random point of its slot (stratified jitter):
 * evenly spread on average, never a burst, never periodic. Connections are taken in random order so
 * clients that connected together do not leave together. Connections may be grouped (`groupOf`: the socket
 * node groups by placement key): a group takes one slot and all its members get their notice together, so a
 * room moves to its new owner at once instead of being split over two pods; a large room is one burst by design.
 */
import { DRAIN_MAX_BATCH, DRAIN_TICK_MS } from './constants.js';

/** The outcome of a paced drain (the socket node answers `/drain` with it). */
export interface DrainResult {
  /** Connections this drain notified (socket node: reconnect notice and close 1012; gateway: 1001). */
  drained: number;
  /** Connections still open when the drain answered (only after DRAIN_TIMEOUT_MS). */
  remaining: number;
}

/** Offsets (ms from the drain start, ascending) of `n` notices spread over `windowMs`. */
export function planDrain(n: number, windowMs: number, random: () => number = Math.random): Float64Array {
  const plan = new Float64Array(n);
  const slot = n > 0 ? windowMs / n : 0;
  for (let i = 0; i < n; i++) plan[i] = (i + random()) * slot;
  return plan;
}

/** Fisher–Yates shuffle in place. */
export function shuffle<T>(items: T[], random: () => number = Math.random): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const tmp = items[i]!;
    items[i] = items[j]!;
    items[j] = tmp;
  }
  return items;
}

/** Options of runDrain. */
export interface DrainRun<T extends { readonly open: boolean }> {
  /** The connections open at the start. */
  targets: T[];
  /** The group a connection belongs to (one slot per group, its members notified together); undefined: its own slot. */
  groupOf?: (target: T) => string | undefined;
  windowMs: number;
  timeoutMs: number;
  /** Send the notice and close. */
  notify(target: T): void;
  /** Open connections now (a counter, not a scan). */
  openConnections(): number;
  random?: () => number;
  now?: () => number;
}

/** Targets in slot order: grouped by `groupOf` (ungrouped ones alone), groups shuffled. */
export function drainGroups<T>(targets: T[], groupOf: ((target: T) => string | undefined) | undefined, random: () => number): T[][] {
  const groups: T[][] = [];
  const byKey = new Map<string, T[]>();
  for (const target of targets) {
    const key = groupOf?.(target);
    if (key === undefined) {
      groups.push([target]);
      continue;
    }
    const group = byKey.get(key);
    if (group) group.push(target);
    else {
      const fresh = [target];
      byKey.set(key, fresh);
      groups.push(fresh);
    }
  }
  return shuffle(groups, random);
}

/** How often a drain whose notices all went out checks whether the last connections closed. */
const SETTLE_POLL_MS = 250;

/** Run the paced notices; resolves when no connection is left or at `timeoutMs`. Never rejects. */
export function runDrain<T extends { readonly open: boolean }>(run: DrainRun<T>): Promise<DrainResult> {
  const random = run.random ?? Math.random;
  const now = run.now ?? performance.now.bind(performance);
  const groups = drainGroups(run.targets, run.groupOf, random);
  const plan = planDrain(groups.length, run.windowMs, random);
  const start = now();
  let next = 0;
  let drained = 0;
  let timer: NodeJS.Timeout | undefined;

  return new Promise<DrainResult>((resolve) => {
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearTimeout(deadline);
      resolve({ drained, remaining: run.openConnections() });
    };
    const deadline = setTimeout(finish, run.timeoutMs);

    const tick = () => {
      if (done) return;
      const elapsed = now() - start;
      let batch = 0;
      // The batch cap yields the loop between groups, never inside one: a room is notified in one go.
      while (next < groups.length && plan[next]! <= elapsed && batch < DRAIN_MAX_BATCH) {
        for (const target of groups[next++]!) {
          if (!target.open) continue; // left by itself before its slot
          try {
            run.notify(target);
          } catch {
            /* a failed send must not stop the drain; the connection is closed by close() at the latest */
          }
          drained++;
          batch++;
        }
      }
      if (run.openConnections() === 0) return finish();
      if (batch >= DRAIN_MAX_BATCH) timer = setTimeout(tick, 0);
      // Connections also leave by themselves (their client went first, or a pod's close was in flight): the wait
      // for a distant slot is polled too, so a drain whose last connection left ends within SETTLE_POLL_MS.
      else if (next < groups.length) timer = setTimeout(tick, Math.min(SETTLE_POLL_MS, Math.max(DRAIN_TICK_MS, plan[next]! - elapsed)));
      else timer = setTimeout(tick, SETTLE_POLL_MS);
    };
    tick();
  });
}
