/** Who may act, without the Kubernetes client: the local backend's elector and the leadership-lost signal (scaler/leader.ts has the Lease elector). */

/** Who may act. */
export interface LeaderElector {
  /** This replica's holder identity (POD_NAME). */
  readonly identity: string;
  /** True while this replica holds a Lease it renewed within the renew deadline. */
  isLeader(): boolean;
  /** Aborted the moment this replica's leadership ends (already aborted while it stands by): API calls and waits take it. */
  signal(): AbortSignal;
  start(): void;
  /** Stop campaigning; with `release` (default) hand the Lease back so a standby takes over at once. */
  close(opts?: { release?: boolean }): Promise<void>;
  /** Called on every gain or loss of leadership; returns an unsubscribe function. */
  onChange(listener: (leading: boolean) => void): () => void;
}

/** The single-process elector of the local backend: always the leader. */
export function alwaysLeader(identity = 'local'): LeaderElector {
  const term = new AbortController();
  return { identity, isLeader: () => true, signal: () => term.signal, start() {}, async close() {}, onChange: () => () => {} };
}

/** The reason of an aborted leadership signal: callers tell it apart from API failures. */
export class LeadershipLost extends Error {
  override readonly name = 'LeadershipLost';
}

/** True when `err` is the abort of a leadership signal. */
export function isLeadershipLost(err: unknown): boolean {
  return err instanceof LeadershipLost;
}
