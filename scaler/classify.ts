/** Classify the workload's pods against the registry for the policy: live, booting, unreported, dead, draining. */
import type { PodRecord } from '../src/registry/registry.js';
import type { PodCounts } from './policy.js';
import type { WorkloadSnapshot } from './workload/workload.js';

/** Classifies pods tick after tick; remembers which pods were ever live, so a silent one is dead, not booting. */
export interface PodClassifier {
  /** Count the pods of `snap` at time `t`; `unobserved` removed pods still count as draining. */
  classify(snap: WorkloadSnapshot, live: ReadonlyMap<string, PodRecord>, t: number, unobserved: number): PodCounts;
}

/** A classifier in which a Ready pod that never heartbeated counts as on the way for `bootGraceMs`. */
export function podClassifier(bootGraceMs: number): PodClassifier {
  const seenLive = new Set<string>();
  return {
    classify(snap, live, t, unobserved) {
      const counts: PodCounts = { live: 0, booting: 0, unreported: 0, dead: 0, drained: 0, draining: unobserved };
      const names = new Set<string>();
      for (const p of snap.pods) {
        names.add(p.name);
        const rec = live.get(p.name);
        if (p.terminating) {
          if (rec) counts.draining++; // still has clients leaving it
          continue;
        }
        // Draining without a deletionTimestamp: drained by hand, out of service but not leaving. Not capacity.
        if (rec?.draining) counts.drained++;
        else if (rec) {
          counts.live++;
          seenLive.add(p.name);
        } else if (!seenLive.has(p.name) && !p.ready) counts.booting++;
        else if (!seenLive.has(p.name) && t - (p.readySince || p.createdAt) < bootGraceMs) counts.unreported++;
        else counts.dead++;
      }
      for (const n of seenLive) if (!names.has(n)) seenLive.delete(n);
      return counts;
    },
  };
}
