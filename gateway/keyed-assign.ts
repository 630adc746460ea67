/**
 * `/ws/assign?key=` (DESIGN.md "Keyed placement"): the pod that owns the key, claiming one through the registry
 * when nobody does. The claim is the registry's atomic compare-and-set, so under concurrent first assigns on many
 * gateways exactly one pod wins and every gateway answers it. An owner that died (its claim expired), drains, or
 * has an address outside GATEWAY_POD_CIDRS is taken over by a pod the assign strategy picks; a cordoned owner
 * keeps its key, but a cordoned pod never claims a new one (the strategies skip it).
 */
import { DEAD_AFTER_HEARTBEATS } from '../src/constants.js';
import type { PodRecord } from '../src/registry/registry.js';
import type { GatewayContext } from './context.js';
import { insidePodCidrs, isInsidePodCidrs } from './resolvers/pod-cidrs.js';

/** Claim attempts per assign: each failed one found an unusable owner and tries to take it over. */
const MAX_CLAIM_ATTEMPTS = 3;

/**
 * The owner of `key`, claimed for a pod the strategy picks when nobody usable holds it; undefined when no pod can
 * take it (503 no_pods_available). With `claim` false (HEAD) nothing is written or counted: the current owner, or
 * the pod a claim would pick now. Rejects when the registry fails.
 */
export async function assignKey(ctx: Pick<GatewayContext, 'registry' | 'view' | 'assigner' | 'podCidrs'>, key: string, claim = true): Promise<PodRecord | undefined> {
  const { registry, view, assigner, podCidrs } = ctx;
  const live = insidePodCidrs(view.live(), podCidrs);
  // The view can lag behind a pod that registered a moment ago (another gateway may have claimed for it): ask the registry.
  const usable = async (podId: string): Promise<PodRecord | undefined> => {
    const p = view.get(podId) ?? (await registry.get(podId));
    return p && !p.draining && isInsidePodCidrs(p, podCidrs) ? p : undefined;
  };
  if (!claim) {
    const owner = await registry.ownerOf(key);
    return (owner !== undefined ? await usable(owner) : undefined) ?? assigner.pick(live, false);
  }
  let replace: string | undefined;
  for (let attempt = 0; attempt < MAX_CLAIM_ATTEMPTS; attempt++) {
    const candidate = assigner.pick(replace === undefined ? live : live.filter((p) => p.podId !== replace), false);
    const owner = candidate ? await registry.claim(key, candidate.podId, DEAD_AFTER_HEARTBEATS * candidate.heartbeatMs, replace) : await registry.ownerOf(key);
    if (owner === undefined) return undefined;
    const pod = owner === candidate?.podId ? candidate : await usable(owner);
    if (pod) {
      assigner.count(pod, live);
      return pod;
    }
    replace = owner;
  }
  return undefined;
}
