/**
 * This pod's cordon mark, followed from the registry (change announcements at once, a read every heartbeat
 * for a missed one). A `retire` request makes the pod report NotReady, so that the ReplicaSet's scale-down
 * ranking takes exactly this pod; the node bounds that by SOCKET_NOT_READY_MAX_MS on its own clock, so a
 * scale-in that never comes (a scaler that died, a race lost) cannot keep the pod out of service.
 */
import type { Logger } from 'pino';
import type { CordonMark, Registry } from '../src/registry/registry.js';

/** A running cordon follower. */
export interface CordonWatch {
  /** The scaler has marked this pod (no new clients are assigned to it). */
  cordoned(): boolean;
  /** A retire request is fresh: /readyz fails. */
  retiring(): boolean;
  /** Read the mark now (called on every heartbeat). Never rejects. */
  refresh(): Promise<void>;
  stop(): void;
}

/** Options of watchCordon. */
export interface CordonWatchOptions {
  registry: Registry;
  podId: string;
  /** Longest NotReady spell per retire request. */
  maxNotReadyMs: number;
  logger: Logger;
  now?: () => number;
}

/** Start following the mark of `podId`. */
export function watchCordon(opts: CordonWatchOptions): CordonWatch {
  const { registry, podId, maxNotReadyMs, logger } = opts;
  const now = opts.now ?? Date.now;
  let mark: CordonMark | undefined;
  /** The retire request being honoured and when it arrived; a request already seen never restarts the bound. */
  let retire: { id: string; since: number } | undefined;
  let expiredLogged: string | undefined;
  let stopped = false;

  function apply(next: CordonMark | undefined): void {
    if (stopped) return;
    const was = mark !== undefined;
    mark = next;
    if (was !== (next !== undefined)) logger.info({ cordoned: next !== undefined }, next ? 'cordoned by the scaler: no new clients are assigned here' : 'uncordoned');
    const id = next?.retire;
    if (id === undefined) {
      if (retire && retiring()) logger.info({ retire: retire.id }, 'retire request withdrawn; Ready again');
      retire = undefined;
      return;
    }
    if (retire?.id === id) return;
    retire = { id, since: now() };
    logger.info({ retire: id, maxNotReadyMs }, `reporting NotReady: the scaler is about to remove this pod (at most ${maxNotReadyMs} ms)`);
  }

  function retiring(): boolean {
    if (!retire) return false;
    if (now() - retire.since < maxNotReadyMs) return true;
    if (expiredLogged !== retire.id) {
      expiredLogged = retire.id;
      logger.warn({ retire: retire.id, maxNotReadyMs }, `not removed within ${maxNotReadyMs} ms of the retire request; Ready again`);
    }
    return false;
  }

  const unsubscribe = registry.subscribe((c) => {
    if (c.type === 'cordon' && c.podId === podId) apply(c.mark ?? undefined);
  });

  return {
    cordoned: () => mark !== undefined,
    retiring,
    async refresh() {
      try {
        apply(await registry.cordonOf(podId));
      } catch (err) {
        logger.debug({ err }, 'cordon mark not read; keeping the last known one');
      }
    },
    stop() {
      stopped = true;
      unsubscribe();
    },
  };
}
