/** Kubernetes client plumbing shared by the workload backend and the leader election: config, retries, errors. */
import { ApiException, KubeConfig, Observable, PatchStrategy, type ConfigurationOptions, type ObservableMiddleware, type RequestContext, type ResponseContext } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { setTimeout as sleep } from 'node:timers/promises';
import { jitteredBackoffMs } from '../src/backoff.js';
import { EdgeError, edgeError } from '../src/errors.js';
import { KUBE_RETRY_AFTER_MAX_MS, KUBE_RETRY_ATTEMPTS, KUBE_RETRY_BASE_MS, KUBE_RETRY_MAX_MS } from './constants.js';
import type { ScalerMetrics } from './metrics.js';

/** Per-request timeout of API calls (watches are long-lived and not affected). */
export const KUBE_REQUEST_TIMEOUT_MS = 15_000;

/** In-cluster service account when running in a pod, else KUBECONFIG / ~/.kube/config. */
export function loadKubeConfig(env: Record<string, string | undefined> = process.env): KubeConfig {
  const kc = new KubeConfig();
  if (!env.KUBECONFIG && env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
  else kc.loadFromDefault();
  const cluster = kc.getCurrentCluster();
  // loadFromDefault's last resort is an unauthenticated http://localhost:8080: treat it as "no cluster".
  if (!cluster || (cluster.name === 'cluster' && cluster.server === 'http://localhost:8080' && kc.getCurrentUser()?.name === 'user')) {
    throw new Error('SCALER_WORKLOAD=kubernetes needs a cluster: run in a pod (in-cluster service account) or set KUBECONFIG; for a local run use SCALER_WORKLOAD=local or `rtc-edge dev`');
  }
  return kc;
}

const middleware = (pre: (req: RequestContext) => void): ObservableMiddleware => ({
  pre: (req: RequestContext) => {
    pre(req);
    return new Observable(Promise.resolve(req));
  },
  post: (res: ResponseContext) => new Observable(Promise.resolve(res)),
});

/**
 * Call options: a request timeout, aborted early by `signal` (leadership), and for patches the merge-patch
 * content type (the client defaults to JSON-patch).
 */
export function callOptions(opts: { mergePatch?: boolean; timeoutMs?: number; signal?: AbortSignal } = {}): ConfigurationOptions<ObservableMiddleware> {
  const timeout = AbortSignal.timeout(opts.timeoutMs ?? KUBE_REQUEST_TIMEOUT_MS);
  const signal = opts.signal ? AbortSignal.any([timeout, opts.signal]) : timeout;
  const list: ObservableMiddleware[] = [middleware((req) => req.setSignal(signal))];
  if (opts.mergePatch) list.push(middleware((req) => req.setHeaderParam('Content-Type', PatchStrategy.MergePatch)));
  return { middleware: list, middlewareMergeStrategy: 'append' };
}

/** HTTP status of a failed call (ApiException, a watch error), 0 when no answer came (network, timeout). */
export function statusOf(err: unknown): number {
  if (err instanceof ApiException) return err.code;
  if (err instanceof EdgeError && err.cause !== undefined) return statusOf(err.cause);
  const e = err as { code?: unknown; statusCode?: unknown } | null;
  if (e && typeof e.statusCode === 'number') return e.statusCode;
  if (e && typeof e.code === 'number' && e.code >= 100 && e.code < 600) return e.code;
  return 0;
}

/** The Retry-After of a 429/503 answer in ms, undefined when absent. */
export function retryAfterMs(err: unknown): number | undefined {
  if (!(err instanceof ApiException)) return undefined;
  const raw = err.headers?.['retry-after'] ?? err.headers?.['Retry-After'];
  if (raw === undefined) return undefined;
  const secs = Number(raw);
  if (Number.isFinite(secs) && secs >= 0) return secs * 1000;
  const at = timeMs(raw);
  return at > 0 ? Math.max(0, at - Date.now()) : undefined;
}

/** A Kubernetes timestamp (Date from the typed client, RFC 3339 string from raw JSON) in ms, 0 when absent or unparsable. */
export function timeMs(t: unknown): number {
  if (t instanceof Date) return t.getTime();
  if (typeof t === 'string') {
    const ms = Date.parse(t);
    return Number.isFinite(ms) ? ms : 0;
  }
  return 0;
}

/** The Kubernetes Status message of a failed call, for logs. */
export function apiMessage(err: unknown): string {
  if (err instanceof ApiException) {
    const body = err.body as unknown;
    if (typeof body === 'string') {
      try {
        const parsed = JSON.parse(body) as { message?: string };
        if (parsed.message) return parsed.message;
      } catch {
        return body.slice(0, 300);
      }
    } else if (body && typeof body === 'object' && 'message' in body) return String((body as { message: unknown }).message);
    return `HTTP ${err.code}`;
  }
  return (err as Error)?.message ?? String(err);
}

/** Retry tuning (tests shorten it). */
export interface RetryOptions {
  baseMs: number;
  maxMs: number;
  attempts: number;
  retryAfterMaxMs: number;
  random: () => number;
  /** Wait `ms`; rejects with the signal's reason when it aborts first. */
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** The defaults of scaler/constants.ts. */
export const DEFAULT_RETRY: RetryOptions = {
  baseMs: KUBE_RETRY_BASE_MS,
  maxMs: KUBE_RETRY_MAX_MS,
  attempts: KUBE_RETRY_ATTEMPTS,
  retryAfterMaxMs: KUBE_RETRY_AFTER_MAX_MS,
  random: Math.random,
  sleep: (ms, signal) => sleep(ms, undefined, signal ? { signal } : {}),
};

/** Which RBAC permission a call needs: named in logs when the API answers 403. */
export interface CallSpec {
  verb: 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete';
  /** Resource with subresource, e.g. `deployments/scale`. */
  resource: string;
  /** API group ('' = core). */
  group: string;
  namespace: string;
  /** Retry 409 Conflict (false: the caller re-reads and decides). Default true. */
  retryConflict?: boolean;
}

/** The 403 log line: names the missing RBAC rule. */
export function forbiddenMessage(spec: CallSpec, err: unknown): string {
  return `Kubernetes API forbade ${spec.verb} on ${spec.resource}: the scaler's Role in namespace ${spec.namespace} needs apiGroups: ["${spec.group}"], resources: ["${spec.resource}"], verbs: ["${spec.verb}"] (${apiMessage(err)})`;
}

/** Runs API calls with capped, jittered exponential backoff on 409/429/5xx/no answer; 403 names the missing verb. */
export class KubeCaller {
  private readonly retry: RetryOptions;
  private readonly forbiddenLogged = new Set<string>();

  constructor(
    private readonly logger: Logger,
    private readonly metrics: ScalerMetrics | undefined,
    retry: Partial<RetryOptions> = {},
  ) {
    this.retry = { ...DEFAULT_RETRY, ...retry };
  }

  /** Backoff before attempt `attempt + 1`: full jitter over the upper half of min(max, base·2^attempt). */
  backoffMs(attempt: number): number {
    return jitteredBackoffMs(attempt, this.retry.baseMs, this.retry.maxMs, this.retry.random);
  }

  /** Record a failed call in the metrics and, for 403, log the missing permission once. */
  noteFailure(spec: CallSpec, err: unknown): number {
    const status = statusOf(err);
    this.metrics?.apiErrors.inc({ status: String(status), verb: spec.verb, resource: spec.resource });
    if (status === 403) {
      const key = `${spec.verb} ${spec.group}/${spec.resource}`;
      if (!this.forbiddenLogged.has(key)) {
        this.forbiddenLogged.add(key);
        this.logger.error({ err, verb: spec.verb, resource: spec.resource, apiGroup: spec.group, namespace: spec.namespace }, forbiddenMessage(spec, err));
      }
    }
    return status;
  }

  /**
   * Call `fn`, retrying what is worth retrying. Throws the last error (403 as EDGE_ERR_KUBERNETES_FORBIDDEN).
   * When `signal` aborts (leadership lost), no further attempt starts and the backoff wait ends: throws its reason.
   */
  async call<T>(spec: CallSpec, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      signal?.throwIfAborted();
      try {
        return await fn();
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        const status = this.noteFailure(spec, err);
        if (status === 403) throw edgeError('EDGE_ERR_KUBERNETES_FORBIDDEN', forbiddenMessage(spec, err), { cause: err });
        const retryable = status === 0 || status === 429 || status >= 500 || (status === 409 && spec.retryConflict !== false);
        if (!retryable || attempt + 1 >= this.retry.attempts) throw err;
        let delay = this.backoffMs(attempt);
        const after = status === 429 || status === 503 ? retryAfterMs(err) : undefined;
        if (after !== undefined) delay = Math.max(delay, Math.min(after, this.retry.retryAfterMaxMs));
        this.logger.warn({ status, verb: spec.verb, resource: spec.resource, attempt: attempt + 1, delayMs: delay, reason: apiMessage(err) }, `Kubernetes API ${spec.verb} ${spec.resource} failed (${status || 'no answer'}); retrying in ${delay} ms`);
        await this.retry.sleep(delay, signal);
      }
    }
  }
}
