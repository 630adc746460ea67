/**
 * GATEWAY_POD_CIDRS: wraps any resolver so that an address outside the list is never dialed, whichever backend
 * produced it (a registry record, an EndpointSlice or a DNS answer).
 */
import type { Logger } from 'pino';
import { createCidrMatcher, type CidrMatcher } from '../../src/cidr.js';
import { edgeError } from '../../src/errors.js';
import type { PodRecord } from '../../src/registry/registry.js';
import { isUpstream, type Resolution, type Resolver } from './resolver.js';

/** Refusals remembered for log-once; past this the memory starts over, so a flood of addresses stays bounded. */
const MAX_LOGGED_REFUSALS = 10_000;

/** The shared answer for an address outside the list. */
export const ADDRESS_FORBIDDEN = edgeError('EDGE_ERR_POD_ADDRESS_FORBIDDEN');

/** `inner`, refusing every resolved address outside `cidrs` (empty list = `inner` unchanged). */
export function withPodCidrs(inner: Resolver, cidrs: readonly string[], logger: Logger): Resolver {
  if (cidrs.length === 0) return inner;
  const allowed = createCidrMatcher(cidrs);
  const logged = new Set<string>();
  const check = (podId: string, r: Resolution): Resolution => {
    if (!isUpstream(r) || allowed.contains(r.host)) return r;
    // Logged once per pod and address: a client retrying in a loop must not flood the log.
    const key = `${podId} ${r.host}`;
    if (!logged.has(key)) {
      if (logged.size >= MAX_LOGGED_REFUSALS) logged.clear();
      logged.add(key);
      logger.warn({ podId, address: r.host, port: r.port, podCidrs: cidrs }, `pod ${podId} resolved to ${r.host}, outside GATEWAY_POD_CIDRS: not dialed, answering 502 pod_address_forbidden`);
    }
    return ADDRESS_FORBIDDEN;
  };
  return {
    kind: inner.kind,
    resolve(podId) {
      const r = inner.resolve(podId);
      return r instanceof Promise ? r.then((v) => check(podId, v)) : check(podId, r);
    },
    ready: () => inner.ready(),
    close: () => inner.close(),
  };
}

/** Whether `pod`'s registered address is inside `cidrs` (always when undefined). */
export function isInsidePodCidrs(pod: PodRecord, cidrs: CidrMatcher | undefined): boolean {
  return cidrs === undefined || cidrs.contains(pod.ip);
}

/** The pods whose registered address is inside `cidrs` (all when undefined): `/ws/assign` hands out no other. */
export function insidePodCidrs(pods: PodRecord[], cidrs: CidrMatcher | undefined): PodRecord[] {
  return cidrs === undefined ? pods : pods.filter((p) => isInsidePodCidrs(p, cidrs));
}
