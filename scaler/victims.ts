/** Victim accounting: after a scale-in, which pods Kubernetes removed and whether each was a least-loaded one (metric + log). */
import type { Logger } from 'pino';
import { observeVictims, type PendingVictims } from './deletion-cost.js';
import type { RecordEvent } from './events.js';
import type { ScalerMetrics } from './metrics.js';
import type { Workload } from './workload/workload.js';

/** The scale-in whose removed pods are still being looked for. */
export interface VictimAccounting {
  /** Start looking for the pods removed by this scale-in. */
  track(pending: PendingVictims): void;
  /** Look again at time `t`; returns how many removed pods are still unobserved (they count as draining). */
  check(t: number): number;
  /** Forget the scale-in being watched (leadership lost). */
  reset(): void;
}

/** Dependencies of {@link victimAccounting}. */
export interface VictimDeps {
  workload: Workload;
  logger: Logger;
  metrics: ScalerMetrics;
  event: RecordEvent;
  victimTimeoutMs: number;
  /** Withdraw the retire request of cordoned pods that were not removed (they turn Ready again at once). */
  withdraw: (names: readonly string[]) => Promise<void>;
}

/** Victim accounting over the workload's cached pods. */
export function victimAccounting({ workload, logger, metrics, event, victimTimeoutMs, withdraw }: VictimDeps): VictimAccounting {
  let pending: PendingVictims | undefined;
  return {
    track(p) {
      pending = p;
    },
    reset() {
      pending = undefined;
    },
    check(t) {
      if (!pending) return 0;
      const { victims, done, timedOut } = observeVictims(pending, workload.listPods(), t);
      const expected = pending.from - pending.to;
      if (!done) return expected - victims.length;
      const meant = pending.expected;
      for (const v of victims) {
        metrics.victims.inc({ honored: String(v.honored) });
        const verdict = meant
          ? v.honored
            ? 'the cordoned pod, as intended'
            : `NOT the cordoned pod: ${[...meant].join(', ')} was meant`
          : v.honored
            ? 'one of the least-loaded (deletion cost honored)'
            : `NOT one of the least-loaded: pods with ≤ ${pending.threshold} connections were expected`;
        logger.info({ podId: v.name, connections: v.connections, honored: v.honored, threshold: pending.threshold, expected: meant ? [...meant] : undefined }, `scale-in removed pod ${v.name} with ${v.connections} connections: ${verdict}`);
        event('victim', `scale-in removed ${v.name} with ${v.connections} connections${v.honored ? (meant ? ' (the cordoned pod)' : ' (least-loaded)') : ''}`, v.name);
        if (!v.honored) event('not-honoured', `scale-in removed ${v.name} (${v.connections} connections), not ${meant ? `the cordoned ${[...meant].join(', ')}` : `a pod with ≤ ${pending.threshold} connections`}`, v.name);
      }
      if (timedOut) logger.warn({ expected, observed: victims.length }, `only ${victims.length} of ${expected} removed pod(s) were observed within ${victimTimeoutMs} ms of the scale-in`);
      if (meant) {
        const removed = new Set(victims.map((v) => v.name));
        const left = [...meant].filter((n) => !removed.has(n));
        if (left.length > 0) void withdraw(left);
      }
      pending = undefined;
      return 0;
    },
  };
}
