/**
 * The Kubernetes workload: reads the Deployment's selector, lists and watches its pods, writes
 * pod-deletion-cost with merge patches, and reads/patches the Deployment's scale subresource.
 * RBAC it needs: deployments get; deployments/scale get, patch; pods list, watch, patch (+ Lease rules in leader.ts).
 */
import { AppsV1Api, CoreV1Api, KubeConfig, Watch, type V1LabelSelector, type V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Config } from '../../src/config.js';
import { DELETION_COST_ANNOTATION } from '../../src/constants.js';
import { DELETION_COST_CONFIRM_TIMEOUT_MS, KUBE_PATCH_CONCURRENCY, KUBE_SCALE_CONFLICT_RETRIES, KUBE_WATCH_RESTART_MS } from '../constants.js';
import { KubeCaller, apiMessage, callOptions, loadKubeConfig, statusOf, timeMs, type CallSpec, type RetryOptions } from '../kube.js';
import { parseDeletionCost, type PodPhase } from '../ranking.js';
import type { Workload, WorkloadDeps, WorkloadPod, WorkloadSnapshot } from './workload.js';

/** Options beyond config (tests inject the KubeConfig of the fake API server and short retries). */
export interface KubernetesWorkloadOptions {
  kubeConfig?: KubeConfig;
  retry?: Partial<RetryOptions>;
  confirmTimeoutMs?: number;
}

/** `matchLabels` + `matchExpressions` as a label selector query string. */
export function labelSelectorString(sel: V1LabelSelector | undefined): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(sel?.matchLabels ?? {})) parts.push(`${k}=${v}`);
  for (const e of sel?.matchExpressions ?? []) {
    const values = (e.values ?? []).join(',');
    if (e.operator === 'In') parts.push(`${e.key} in (${values})`);
    else if (e.operator === 'NotIn') parts.push(`${e.key} notin (${values})`);
    else if (e.operator === 'Exists') parts.push(e.key);
    else if (e.operator === 'DoesNotExist') parts.push(`!${e.key}`);
  }
  return parts.join(',');
}

interface CachedPod {
  pod: WorkloadPod;
  rv: string;
  annotation: string | undefined;
}

/** A pod object (typed list item or raw watch JSON) in the scaler's terms. */
export function toWorkloadPod(obj: V1Pod): WorkloadPod {
  const meta = obj.metadata ?? {};
  const status = obj.status ?? {};
  const phase = (status.phase ?? 'Pending') as PodPhase;
  const readyCond = (status.conditions ?? []).find((c) => c.type === 'Ready');
  const ready = readyCond?.status === 'True';
  const raw = meta.annotations?.[DELETION_COST_ANNOTATION];
  const annotatedValid = raw !== undefined && /^[+-]?\d+$/.test(raw.trim());
  const owner = (meta.ownerReferences ?? []).find((o) => o.controller && o.kind === 'ReplicaSet');
  return {
    name: meta.name ?? '',
    uid: meta.uid ?? meta.name ?? '',
    assigned: Boolean(obj.spec?.nodeName),
    phase,
    ready,
    readySince: ready ? timeMs(readyCond?.lastTransitionTime) : undefined,
    deletionCost: parseDeletionCost(raw),
    restarts: Math.max(0, ...(status.containerStatuses ?? []).map((c) => c.restartCount ?? 0)),
    createdAt: timeMs(meta.creationTimestamp),
    terminating: Boolean(meta.deletionTimestamp) || phase === 'Succeeded' || phase === 'Failed',
    annotatedCost: annotatedValid ? parseDeletionCost(raw) : undefined,
    owner: owner?.name,
  };
}

/** Run `fn` over `items` with at most `limit` in flight. */
async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** The Kubernetes backend. */
export class KubernetesWorkload implements Workload {
  readonly kind = 'kubernetes' as const;
  readonly name: string;
  readonly namespace: string;
  private readonly kc: KubeConfig;
  private readonly apps: AppsV1Api;
  private readonly core: CoreV1Api;
  private readonly caller: KubeCaller;
  private readonly logger: Logger;
  private readonly confirmTimeoutMs: number;
  private readonly cache = new Map<string, CachedPod>();
  private readonly waiters = new Set<() => void>();
  private selector = '';
  private rv: string | undefined;
  private scaleRV: string | undefined;
  private watchAbort: AbortController | undefined;
  private watchFailures = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private started: Promise<void> | undefined;

  constructor(config: Config, deps: WorkloadDeps & KubernetesWorkloadOptions) {
    this.name = config.socketWorkloadName;
    this.namespace = config.podNamespace;
    this.logger = deps.logger.child({ component: 'workload', workload: this.name, namespace: this.namespace });
    this.kc = deps.kubeConfig ?? loadKubeConfig();
    this.apps = this.kc.makeApiClient(AppsV1Api);
    this.core = this.kc.makeApiClient(CoreV1Api);
    this.caller = new KubeCaller(this.logger, deps.metrics, deps.retry);
    this.confirmTimeoutMs = deps.confirmTimeoutMs ?? DELETION_COST_CONFIRM_TIMEOUT_MS;
  }

  private spec(verb: CallSpec['verb'], resource: string, group: string, extra: Partial<CallSpec> = {}): CallSpec {
    return { verb, resource, group, namespace: this.namespace, ...extra };
  }

  start(): Promise<void> {
    this.started ??= this.connect();
    return this.started;
  }

  private async connect(): Promise<void> {
    const dep = await this.caller.call(this.spec('get', 'deployments', 'apps'), () => this.apps.readNamespacedDeployment({ name: this.name, namespace: this.namespace }, callOptions()));
    this.selector = labelSelectorString(dep.spec?.selector);
    if (!this.selector) throw new Error(`Deployment ${this.namespace}/${this.name} has an empty selector`);
    await this.relist();
    this.logger.info({ selector: this.selector, pods: this.cache.size }, `watching pods of Deployment ${this.name} (${this.selector})`);
    void this.watch();
  }

  private async relist(): Promise<void> {
    const list = await this.caller.call(this.spec('list', 'pods', ''), () => this.core.listNamespacedPod({ namespace: this.namespace, labelSelector: this.selector }, callOptions()));
    this.cache.clear();
    for (const item of list.items) this.put(item);
    this.rv = list.metadata?.resourceVersion;
    this.notify();
  }

  private put(obj: V1Pod): void {
    const name = obj.metadata?.name;
    if (!name) return;
    this.cache.set(name, { pod: toWorkloadPod(obj), rv: obj.metadata?.resourceVersion ?? '', annotation: obj.metadata?.annotations?.[DELETION_COST_ANNOTATION] });
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }

  private async watch(): Promise<void> {
    if (this.closed) return;
    let needRelist = false;
    let finished = false;
    const path = `/api/v1/namespaces/${encodeURIComponent(this.namespace)}/pods`;
    const onEvent = (type: string, obj: V1Pod & { code?: number }) => {
      if (type === 'ERROR') {
        // 410 Gone: our resourceVersion is too old; start over from a fresh list.
        needRelist = true;
        this.logger.info({ code: obj.code }, 'pod watch expired; re-listing');
        return;
      }
      this.watchFailures = 0;
      if (obj.metadata?.resourceVersion) this.rv = obj.metadata.resourceVersion;
      if (type === 'ADDED' || type === 'MODIFIED') this.put(obj);
      else if (type === 'DELETED' && obj.metadata?.name) this.cache.delete(obj.metadata.name);
      this.notify();
    };
    const onDone = (err: unknown) => {
      if (finished) return;
      finished = true;
      this.watchAbort = undefined;
      if (this.closed) return;
      if (err) {
        const status = this.caller.noteFailure(this.spec('watch', 'pods', ''), err);
        if (status === 410) needRelist = true;
        this.watchFailures++;
        this.logger.warn({ status, reason: apiMessage(err) }, 'pod watch failed; restarting');
      }
      const delay = err ? Math.max(KUBE_WATCH_RESTART_MS, this.caller.backoffMs(this.watchFailures)) : 0;
      this.restartTimer = setTimeout(() => void this.restartWatch(needRelist), delay);
    };
    const watch = new Watch(this.kc);
    const query = { labelSelector: this.selector, resourceVersion: this.rv, allowWatchBookmarks: true };
    try {
      const ctrl = await watch.watch(path, query, onEvent, onDone);
      if (this.closed || finished) ctrl.abort();
      else this.watchAbort = ctrl;
    } catch (err) {
      onDone(err);
    }
  }

  private async restartWatch(relist: boolean): Promise<void> {
    if (this.closed) return;
    if (relist) {
      try {
        await this.relist();
      } catch (err) {
        this.watchFailures++;
        this.logger.warn({ err }, 're-list of pods failed; retrying');
        this.restartTimer = setTimeout(() => void this.restartWatch(true), Math.max(KUBE_WATCH_RESTART_MS, this.caller.backoffMs(this.watchFailures)));
        return;
      }
    }
    await this.watch();
  }

  /** Resolve once `check()` holds after a watch event (or at once), reject after `timeoutMs` or when `signal` aborts. */
  private waitFor(check: () => boolean, timeoutMs: number, what: string, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = (err?: unknown) => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve();
      };
      const waiter = () => {
        if (this.closed) done(new Error('workload closed'));
        else if (check()) done();
      };
      const onAbort = () => done(signal!.reason);
      const timer = setTimeout(() => done(new Error(`${what} not seen on the pod watch within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  listPods(): WorkloadPod[] {
    return [...this.cache.values()].map((c) => ({ ...c.pod }));
  }

  private async readScale(signal?: AbortSignal) {
    const scale = await this.caller.call(this.spec('get', 'deployments/scale', 'apps'), () => this.apps.readNamespacedDeploymentScale({ name: this.name, namespace: this.namespace }, callOptions({ signal })), signal);
    this.scaleRV = scale.metadata?.resourceVersion;
    return scale.spec?.replicas ?? 0;
  }

  async observe(): Promise<WorkloadSnapshot> {
    const replicas = await this.readScale();
    return { replicas, pods: this.listPods() };
  }

  async setDeletionCosts(costs: ReadonlyMap<string, number>, signal?: AbortSignal): Promise<number> {
    const expected = new Map<string, { rv: string; value: string }>();
    await mapLimit([...costs], KUBE_PATCH_CONCURRENCY, async ([name, cost]) => {
      signal?.throwIfAborted();
      const value = String(cost);
      // Conditional on the version last seen (re-read from the watch cache on each attempt): a write from a
      // replica that lost the Lease and whose request arrives late fails with 409 instead of overwriting the
      // new leader's cost.
      const body = () => ({ metadata: { resourceVersion: this.cache.get(name)?.rv, annotations: { [DELETION_COST_ANNOTATION]: value } } });
      try {
        const pod = await this.caller.call(this.spec('patch', 'pods', ''), () => this.core.patchNamespacedPod({ name, namespace: this.namespace, body: body() }, callOptions({ mergePatch: true, signal })), signal);
        expected.set(name, { rv: pod.metadata?.resourceVersion ?? '', value });
      } catch (err) {
        if (statusOf(err) === 404) return; // deleted meanwhile: nothing to rank
        throw err;
      }
    });
    // The ReplicaSet controller ranks from its informer cache: scale only once a watch shows the new versions too.
    await this.waitFor(
      () => [...expected].every(([name, e]) => {
        const c = this.cache.get(name);
        return !c || c.rv === e.rv || c.annotation === e.value;
      }),
      this.confirmTimeoutMs,
      `deletion costs of ${expected.size} pod(s)`,
      signal,
    );
    return expected.size;
  }

  async awaitNotReady(names: readonly string[], timeoutMs: number): Promise<boolean> {
    const notReady = () =>
      names.every((n) => {
        const c = this.cache.get(n);
        return !c || c.pod.terminating || !c.pod.ready;
      });
    try {
      await this.waitFor(notReady, timeoutMs, `NotReady of ${names.join(', ')}`);
      return true;
    } catch (err) {
      this.logger.warn({ pods: names, reason: (err as Error).message }, 'retiring pod(s) not seen NotReady in time');
      return false;
    }
  }

  async scale(from: number, to: number, signal?: AbortSignal): Promise<boolean> {
    if (this.scaleRV === undefined && (await this.readScale(signal)) !== from) return false;
    for (let conflicts = 0; ; conflicts++) {
      const body = { metadata: { resourceVersion: this.scaleRV }, spec: { replicas: to } };
      try {
        const res = await this.caller.call(
          this.spec('patch', 'deployments/scale', 'apps', { retryConflict: false }),
          () => this.apps.patchNamespacedDeploymentScale({ name: this.name, namespace: this.namespace, body }, callOptions({ mergePatch: true, signal })),
          signal,
        );
        this.scaleRV = res.metadata?.resourceVersion;
        return true;
      } catch (err) {
        // 409: the Deployment changed since we read it. Re-read; go on only if it still has `from` replicas.
        if (statusOf(err) !== 409 || conflicts >= KUBE_SCALE_CONFLICT_RETRIES) throw err;
        this.logger.info({ from, to }, 'scale conflict (409); re-reading the scale subresource');
        if ((await this.readScale(signal)) !== from) return false;
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.restartTimer);
    this.watchAbort?.abort();
    this.watchAbort = undefined;
    this.notify();
  }
}

/** Create the Kubernetes backend (call `start()` before use). */
export function createKubernetesWorkload(config: Config, deps: WorkloadDeps & KubernetesWorkloadOptions): KubernetesWorkload {
  return new KubernetesWorkload(config, deps);
}
