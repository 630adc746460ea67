/**
 * The cordon marks in the registry, driven by the pure plan (scaler/cordon-plan.ts): written and renewed every
 * tick with a TTL (a scaler that dies leaves no pod cordoned for long), removed when the plan drops a pod, and
 * carrying the retire request of the scale-in in progress. Events `cordon` and `uncordon` for the status page.
 */
import type { Logger } from 'pino';
import type { CordonMark, Registry } from '../src/registry/registry.js';
import type { CordonPlan } from './cordon-plan.js';
import type { RetireSteps } from './deletion-cost.js';
import type { RecordEvent } from './events.js';

/** The scaler's side of the cordon marks. */
export interface CordonMarks extends RetireSteps {
  /** Uncordon what the plan drops (call before a scale-out), then write or renew every planned mark. */
  apply(plan: CordonPlan, connections: ReadonlyMap<string, number>, why: string, keys?: ReadonlyMap<string, number>): Promise<void>;
  /** Withdraw every retire request (leadership lost, or the removed pods were observed). */
  reset(): void;
}

/** Dependencies of {@link cordonMarks}. */
export interface CordonMarksDeps {
  registry: Registry;
  logger: Logger;
  event: RecordEvent;
  now: () => number;
  ttlMs: number;
}

/** Cordon marks on `registry`. A failed write is logged and retried on the next tick, never thrown. */
export function cordonMarks({ registry, logger, event, now, ttlMs }: CordonMarksDeps): CordonMarks {
  /** Retire requests in force, by pod: renewals keep them until the pod is gone or the request is withdrawn. */
  const retiring = new Map<string, string>();
  const markOf = (name: string): CordonMark => {
    const id = retiring.get(name);
    return id === undefined ? {} : { retire: id };
  };
  const write = async (what: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (err) {
      logger.warn({ err }, `cordon mark not written (${what}); retrying next tick`);
    }
  };

  return {
    async apply(plan, connections, why, keys) {
      for (const name of plan.remove) {
        retiring.delete(name);
        await write(`uncordon ${name}`, () => registry.uncordon(name));
        logger.info({ podId: name, reason: why }, `uncordoned pod ${name}: ${why}`);
        event('uncordon', `uncordoned ${name}: ${why}`, name);
      }
      for (const name of plan.cordoned) await write(`cordon ${name}`, () => registry.cordon(name, markOf(name), ttlMs));
      for (const name of plan.add) {
        const n = connections.get(name) ?? 0;
        const k = keys?.get(name) ?? 0;
        // The keys stay on the pod until their clients leave; only new keys go elsewhere.
        const held = k > 0 ? `, ${k} keys` : '';
        logger.info({ podId: name, connections: n, keys: k, reason: why }, `cordoned pod ${name} (${n} connections${held}): ${why}; no new clients or keys go to it`);
        event('cordon', `cordoned ${name} (${n} connections${held}): ${why}`, name);
      }
    },
    async retire(names) {
      const id = `${now()}`;
      for (const name of names) {
        retiring.set(name, id);
        await registry.cordon(name, markOf(name), ttlMs);
      }
      logger.info({ victims: names, retire: id }, `asked ${names.join(', ')} to report NotReady before the scale-in`);
    },
    async withdraw(names) {
      for (const name of names) {
        if (!retiring.delete(name)) continue;
        await write(`withdraw ${name}`, () => registry.cordon(name, {}, ttlMs));
      }
    },
    reset() {
      retiring.clear();
    },
  };
}
