/** The resolver interface and its shared answers (no backend imports, so backends can import this). */
import type { ResolverKind } from '../../src/config.js';
import { Header } from '../../src/constants.js';
import { EdgeError, edgeError } from '../../src/errors.js';
import { RETRY_AFTER_S } from '../constants.js';

/** Where to connect for a pod. */
export interface Upstream {
  host: string;
  port: number;
}

/** An upstream, or the coded error to answer with (404 pod_not_found, 503 pod_draining, ...). */
export type Resolution = Upstream | EdgeError;

/** Resolves a pod id (already validated as a DNS-1123 label) to an address. */
export interface Resolver {
  readonly kind: ResolverKind;
  /** Synchronous for the cached backends; `dns` returns a promise. Never throws or rejects. */
  resolve(podId: string): Resolution | Promise<Resolution>;
  /** Resolves when the backend has its first view (or gave up waiting for it). */
  ready(): Promise<void>;
  close(): Promise<void>;
}

/** Shared answers; immutable, so one instance each avoids building an Error per refused upgrade. */
export const Resolved = {
  NOT_FOUND: edgeError('EDGE_ERR_POD_NOT_FOUND'),
  DRAINING: edgeError('EDGE_ERR_POD_DRAINING', undefined, { headers: { [Header.RETRY_AFTER]: String(RETRY_AFTER_S) } }),
  NOT_READY: edgeError('EDGE_ERR_POD_DRAINING', 'the socket pod is not ready; get a new assignment from /ws/assign', { headers: { [Header.RETRY_AFTER]: String(RETRY_AFTER_S) } }),
  REGISTRY_UNAVAILABLE: edgeError('EDGE_ERR_REGISTRY_UNAVAILABLE'),
  UNREACHABLE: edgeError('EDGE_ERR_UPSTREAM_UNREACHABLE'),
  TIMEOUT: edgeError('EDGE_ERR_UPSTREAM_TIMEOUT'),
} as const;

/** True when a resolution is an upstream address. */
export function isUpstream(r: Resolution): r is Upstream {
  return !(r instanceof EdgeError);
}

