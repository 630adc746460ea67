/**
 * One timer for many deadlines of the same length: entries are appended in deadline order (the length is
 * constant), so the head is always the next to expire. No `Timeout` object per socket: Node keeps a
 * socket's own timer alive for the socket's whole life.
 */
import { performance } from 'node:perf_hooks';

/** What a DeadlineList links: an entry is in at most one list at a time. */
export interface DeadlineEntry<T extends DeadlineEntry<T>> {
  deadline: number;
  prev: T | undefined;
  next: T | undefined;
  list: DeadlineList<T> | undefined;
}

/**
 * Deadlines `ms` after each `arm`; `onExpire` runs for every entry whose deadline passed (it is already removed), once
 * the I/O that was pending at that moment has been read: it must check that the entry still waits for what timed out.
 */
export class DeadlineList<T extends DeadlineEntry<T>> {
  private first: T | undefined;
  private last: T | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly ms: number,
    private readonly onExpire: (entry: T) => void,
  ) {}

  /** Start the deadline of `entry` (moved here from any other list). */
  arm(entry: T): void {
    if (entry.list) entry.list.disarm(entry);
    entry.deadline = performance.now() + this.ms;
    entry.list = this;
    entry.prev = this.last;
    if (this.last) this.last.next = entry;
    else this.first = entry;
    this.last = entry;
    if (!this.timer) this.schedule(this.ms);
  }

  /** Remove `entry` if it is in this list. */
  disarm(entry: T): void {
    if (entry.list !== this) return;
    entry.list = undefined;
    if (entry.prev) entry.prev.next = entry.next;
    else this.first = entry.next;
    if (entry.next) entry.next.prev = entry.prev;
    else this.last = entry.prev;
    entry.prev = entry.next = undefined;
  }

  /** Call `fn` for every entry, first to expire first (`fn` must not arm or disarm). */
  forEach(fn: (entry: T) => void): void {
    for (let e = this.first; e; e = e.next) fn(e);
  }

  private schedule(ms: number): void {
    this.timer = setTimeout(() => this.expire(), Math.max(1, Math.ceil(ms)));
    this.timer.unref();
  }

  private expire(): void {
    this.timer = undefined;
    const now = performance.now();
    const due: T[] = [];
    while (this.first && this.first.deadline <= now) {
      const entry = this.first;
      this.disarm(entry);
      due.push(entry);
    }
    if (this.first) this.schedule(this.first.deadline - now);
    // Timers run before the poll phase: on a busy event loop, what completed in time (a head, a pod's 101) may
    // still be unread. onExpire runs after that phase, for the entries nothing armed again meanwhile.
    setImmediate(() => {
      for (const entry of due) if (entry.list === undefined) this.onExpire(entry);
    });
  }
}
