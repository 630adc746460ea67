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

/** Deadlines `ms` after each `arm`; `onExpire` runs for every entry whose deadline passed (it is already removed). */
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

  private schedule(ms: number): void {
    this.timer = setTimeout(() => this.expire(), Math.max(1, Math.ceil(ms)));
    this.timer.unref();
  }

  private expire(): void {
    this.timer = undefined;
    const now = performance.now();
    while (this.first && this.first.deadline <= now) {
      const entry = this.first;
      this.disarm(entry);
      this.onExpire(entry);
    }
    if (this.first) this.schedule(this.first.deadline - now);
  }
}
