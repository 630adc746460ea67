/**
 * A fake Kubernetes API server for fault injection and request recording: plain HTTP on 127.0.0.1, port 0,
 * spoken to by the real @kubernetes/client-node. Faults: 403/409/429 with Retry-After/500/503 answers
 * (`injectFault`), requests held unanswered (`hold`), watches closed (`closeWatches`) or stalled
 * (`stallWatches`). Recording: every request with its body, caller, status and times (`requests`,
 * `rbacVerbsUsed`). Objects are stored, not simulated: pods (list, watch, get, merge/JSON patch with
 * resourceVersion preconditions), a Deployment with its scale subresource (preconditions → 409), ReplicaSets
 * (two with pods = a rollout) and Leases. A larger spec.replicas adds pods, so scale-out has pods to watch.
 * The fake never chooses which pod a scale-in removes: the test names it (`deletePod`, or `onScaleIn`). Which
 * pod the real ReplicaSet controller removes is judged on the real control plane (test/kube-scaler.test.ts,
 * test/scaler-cordon-plane.test.ts), never here.
 */
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { randomInt, randomUUID } from 'node:crypto';
import { KubeConfig } from '@kubernetes/client-node';
import { DELETION_COST_ANNOTATION } from '../../src/constants.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Json = any;

/** One request the fake answered, in RBAC terms. */
export interface RecordedRequest {
  at: number;
  method: string;
  path: string;
  query: Record<string, string>;
  /** Kubernetes verb: get, list, watch, create, update, patch, delete, deletecollection. */
  verb: string;
  /** API group ('' = core). */
  apiGroup: string;
  resource: string;
  subresource: string | undefined;
  namespace: string | undefined;
  name: string | undefined;
  status: number;
  /** When the answer was sent (unset while unanswered, and for a watch). */
  answeredAt?: number;
  contentType: string | undefined;
  /** Bearer token of the caller (tests give each scaler replica its own). */
  user: string | undefined;
  body: Json;
}

/** An RBAC permission a caller exercised: resource includes the subresource (`deployments/scale`). */
export interface ApiPermission {
  apiGroup: string;
  resource: string;
  verb: string;
}

/**
 * The set of {apiGroup, resource(/subresource), verb} the recorded requests used, sorted and without
 * duplicates. Failed requests count too: they show what the caller needs. Stable shape for the Helm chart test.
 */
export function rbacVerbsUsed(requests: readonly RecordedRequest[]): ApiPermission[] {
  const seen = new Map<string, ApiPermission>();
  for (const r of requests) {
    if (!r.resource) continue;
    const resource = r.subresource ? `${r.resource}/${r.subresource}` : r.resource;
    const p = { apiGroup: r.apiGroup, resource, verb: r.verb };
    seen.set(`${p.apiGroup}|${p.resource}|${p.verb}`, p);
  }
  return [...seen.values()].sort((a, b) => a.apiGroup.localeCompare(b.apiGroup) || a.resource.localeCompare(b.resource) || a.verb.localeCompare(b.verb));
}

/** Answer the next `times` matching requests with an error instead of serving them. */
export interface Fault {
  status: 403 | 409 | 429 | 500 | 503;
  times: number;
  verb?: string;
  /** Resource with optional subresource, e.g. `pods` or `deployments/scale`. */
  resource?: string;
  name?: string;
  retryAfterSeconds?: number;
}

/** Which requests a hold keeps waiting (all given fields must match). */
export interface HoldMatch {
  verb?: string;
  /** Resource with optional subresource, e.g. `pods` or `deployments/scale`. */
  resource?: string;
  /** The caller's bearer token (each test replica has its own). */
  user?: string;
}

/** Requests held unanswered by `FakeKubernetes.hold`, as by a slow API server. */
export interface HeldRequests {
  /** How many matching requests arrived so far. */
  count(): number;
  /** Serve the held requests now (and stop holding): writes are applied even if the client gave up meanwhile, as a real server does. */
  release(): void;
}

/** Watch events held back by `FakeKubernetes.stallWatches`, as by a slow watch cache. */
export interface StalledWatches {
  /** How many events are held back. */
  count(): number;
  /** Deliver the held events (in order) and stop holding. */
  release(): void;
}

/**
 * The test's answer to a scale-in, standing in for the ReplicaSet controller: which of the active pods
 * (copies) to delete, `surplus` of them. The fake deletes exactly those; it has no ranking of its own.
 */
export type ScaleInAnswer = (pods: Json[], surplus: number) => string[] | Promise<string[]>;

/** Pod start-up timing: 0/0 = created Running and Ready at once. */
export interface Startup {
  /** Unassigned (Pending, no node) this long. */
  scheduleMs: number;
  /** Then assigned but not Ready this long. */
  readyMs: number;
}

/** Options of the fake. */
export interface FakeK8sOptions {
  namespace?: string;
  deployment?: string;
  replicas?: number;
  startup?: Startup;
  /** Terminating pods (deletionTimestamp set) disappear after this long. */
  terminationMs?: number;
  /** How many pod events a watch can resume from; older resourceVersions get 410 Gone. */
  eventHistory?: number;
}


interface ReplicaSet {
  name: string;
  hash: string;
  uid: string;
  replicas: number;
}

const ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';
const rand = (n: number) => Array.from({ length: n }, () => ALPHABET[randomInt(ALPHABET.length)]).join('');
/** Kubernetes serializes metav1.Time with second precision. */
const isoSeconds = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
const clone = <T>(v: T): T => structuredClone(v);

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: Json, patch: Json): Json {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return clone(patch);
  const out = target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** RFC 6902 JSON patch (add, replace, remove, test). Throws on a bad operation. */
export function jsonPatch(target: Json, ops: Json): Json {
  if (!Array.isArray(ops)) throw new Error('json: cannot unmarshal object into Go value of type jsonpatch.Patch');
  const doc = clone(target);
  for (const op of ops) {
    const parts = String(op.path ?? '').split('/').slice(1).map((p: string) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
    if (parts.length === 0) throw new Error(`bad path ${op.path}`);
    let parent = doc;
    for (const p of parts.slice(0, -1)) {
      if (parent[p] === undefined) throw new Error(`path ${op.path} does not exist`);
      parent = parent[p];
    }
    const last = parts[parts.length - 1]!;
    if (op.op === 'add' || op.op === 'replace') parent[last] = clone(op.value);
    else if (op.op === 'remove') delete parent[last];
    else if (op.op === 'test') {
      if (JSON.stringify(parent[last]) !== JSON.stringify(op.value)) throw new Error(`test failed at ${op.path}`);
    } else throw new Error(`unsupported op ${op.op}`);
  }
  return doc;
}

type Requirement = (labels: Record<string, string>) => boolean;

/** Parse a label selector (`a=b,c!=d,e in (f,g),h notin (i),j,!k`) into a matcher. */
export function parseSelector(sel: string | undefined): Requirement {
  if (!sel) return () => true;
  const reqs: Requirement[] = [];
  const parts = sel.match(/[^,(]+(\([^)]*\))?/g) ?? [];
  for (const raw of parts) {
    const s = raw.trim();
    if (!s) continue;
    let m: RegExpMatchArray | null;
    if ((m = s.match(/^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/))) {
      const [, key, op, list] = m;
      const values = list!.split(',').map((v) => v.trim());
      reqs.push(op === 'in' ? (l) => l[key!] !== undefined && values.includes(l[key!]!) : (l) => l[key!] === undefined || !values.includes(l[key!]!));
    } else if ((m = s.match(/^([\w./-]+)\s*!=\s*([\w./-]*)$/))) {
      const [, key, v] = m;
      reqs.push((l) => l[key!] !== v);
    } else if ((m = s.match(/^([\w./-]+)\s*==?\s*([\w./-]*)$/))) {
      const [, key, v] = m;
      reqs.push((l) => l[key!] === v);
    } else if ((m = s.match(/^!([\w./-]+)$/))) {
      const key = m[1]!;
      reqs.push((l) => l[key] === undefined);
    } else if ((m = s.match(/^([\w./-]+)$/))) {
      const key = m[1]!;
      reqs.push((l) => l[key] !== undefined);
    } else throw new Error(`unable to parse requirement: ${s}`);
  }
  return (labels) => reqs.every((r) => r(labels ?? {}));
}

function status(code: number, reason: string, message: string, details?: Json): Json {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code, ...(details ? { details } : {}) };
}

interface Route {
  apiGroup: string;
  version: string;
  namespace: string | undefined;
  resource: string;
  name: string | undefined;
  subresource: string | undefined;
}

/** Split an API path into group/version/namespace/resource/name/subresource. */
export function parseApiPath(path: string): Route | undefined {
  const seg = path.split('/').filter(Boolean).map(decodeURIComponent);
  let group: string;
  let version: string;
  let rest: string[];
  if (seg[0] === 'api' && seg.length >= 2) {
    group = '';
    version = seg[1]!;
    rest = seg.slice(2);
  } else if (seg[0] === 'apis' && seg.length >= 3) {
    group = seg[1]!;
    version = seg[2]!;
    rest = seg.slice(3);
  } else return undefined;
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  if (rest.length === 0) return undefined;
  return { apiGroup: group, version, namespace, resource: rest[0]!, name: rest[1], subresource: rest[2] };
}

function verbOf(method: string, route: Route, query: Record<string, string>): string {
  switch (method) {
    case 'GET':
      return route.name ? 'get' : query.watch === 'true' || query.watch === '1' ? 'watch' : 'list';
    case 'POST':
      return 'create';
    case 'PUT':
      return 'update';
    case 'PATCH':
      return 'patch';
    case 'DELETE':
      return route.name ? 'delete' : 'deletecollection';
    default:
      return method.toLowerCase();
  }
}

interface Watcher {
  res: http.ServerResponse;
  matches: Requirement;
}

/** A running fake API server. */
export class FakeKubernetes {
  readonly namespace: string;
  readonly deploymentName: string;
  readonly requests: RecordedRequest[] = [];
  private readonly server: http.Server;
  private readonly opts: Required<FakeK8sOptions>;
  private rv = 1000;
  private readonly pods = new Map<string, Json>();
  private readonly events: Array<{ rv: number; type: string; object: Json }> = [];
  private readonly leases = new Map<string, Json>();
  private readonly watchers = new Set<Watcher>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private faults: Fault[] = [];
  private readonly holds = new Set<{ match: HoldMatch; arrived: number; queue: Array<() => void> }>();
  private deployment: Json;
  private readonly replicaSets: ReplicaSet[] = [];
  readonly labels: Record<string, string>;
  private closed = false;
  private stall: { queue: Array<() => void> } | undefined;
  private hookError: Error | undefined;
  /** The test's answer to a scale-in (see `ScaleInAnswer`); unset, surplus pods stay until `deletePod`. */
  onScaleIn: ScaleInAnswer | undefined;

  private constructor(opts: FakeK8sOptions) {
    this.opts = { namespace: 'rtc', deployment: 'socket', replicas: 2, startup: { scheduleMs: 0, readyMs: 0 }, terminationMs: 20, eventHistory: 10_000, ...opts };
    this.namespace = this.opts.namespace;
    this.deploymentName = this.opts.deployment;
    this.labels = { 'app.kubernetes.io/name': 'rtc-edge', 'app.kubernetes.io/component': 'socket' };
    this.deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: this.deploymentName, namespace: this.namespace, uid: randomUUID(), resourceVersion: this.nextRV(), generation: 1, creationTimestamp: isoSeconds(Date.now()) },
      spec: { replicas: this.opts.replicas, selector: { matchLabels: { ...this.labels } }, template: { metadata: { labels: { ...this.labels } }, spec: { containers: [{ name: 'socket', image: 'rtc-edge:test' }] } } },
      status: { replicas: 0, readyReplicas: 0, updatedReplicas: 0 },
    };
    this.server = http.createServer((req, res) => this.handle(req, res));
  }

  /** Start on 127.0.0.1 port 0 with the Deployment at `replicas` pods (created at once). */
  static async start(opts: FakeK8sOptions = {}): Promise<FakeKubernetes> {
    const fake = new FakeKubernetes(opts);
    fake.addReplicaSet(fake.opts.replicas);
    fake.reconcile();
    fake.server.listen(0, '127.0.0.1');
    await once(fake.server, 'listening');
    return fake;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** A KubeConfig for this server; `user` becomes the bearer token recorded with each request. */
  kubeConfig(user = 'scaler'): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'fake', server: this.url, skipTLSVerify: true }],
      users: [{ name: user, token: user }],
      contexts: [{ name: 'fake', cluster: 'fake', user, namespace: this.namespace }],
      currentContext: 'fake',
    });
    return kc;
  }

  private nextRV(): string {
    return String(++this.rv);
  }

  private later(ms: number, fn: () => void): void {
    if (this.closed) return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.closed) fn();
    }, ms);
    this.timers.add(t);
  }

  // ---- ReplicaSets and pods -------------------------------------------------------------------------

  private addReplicaSet(replicas: number): ReplicaSet {
    const hash = rand(10);
    const rs: ReplicaSet = { name: `${this.deploymentName}-${hash}`, hash, uid: randomUUID(), replicas };
    this.replicaSets.push(rs);
    return rs;
  }

  private emit(type: 'ADDED' | 'MODIFIED' | 'DELETED', pod: Json): void {
    const object = clone(pod);
    const rv = Number(object.metadata.resourceVersion);
    const deliver = () => {
      this.events.push({ rv, type, object });
      if (this.events.length > this.opts.eventHistory) this.events.splice(0, this.events.length - this.opts.eventHistory);
      for (const w of this.watchers) if (w.matches(object.metadata.labels)) w.res.write(`${JSON.stringify({ type, object })}\n`);
    };
    if (this.stall) this.stall.queue.push(deliver);
    else deliver();
  }

  private touch(pod: Json, type: 'ADDED' | 'MODIFIED' = 'MODIFIED'): void {
    pod.metadata.resourceVersion = this.nextRV();
    this.emit(type, pod);
  }

  private createPod(rs: ReplicaSet): void {
    const now = Date.now();
    const name = `${this.deploymentName}-${rs.hash}-${rand(5)}`;
    const pod: Json = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name,
        namespace: this.namespace,
        uid: randomUUID(),
        creationTimestamp: isoSeconds(now),
        labels: { ...this.labels, 'pod-template-hash': rs.hash },
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: rs.name, uid: rs.uid, controller: true, blockOwnerDeletion: true }],
      },
      spec: { containers: [{ name: 'socket', image: 'rtc-edge:test' }] },
      status: { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', lastTransitionTime: isoSeconds(now) }] },
    };
    this.pods.set(name, pod);
    const { scheduleMs, readyMs } = this.opts.startup;
    const schedule = () => {
      pod.spec.nodeName = 'fake-node';
      pod.status.conditions = [{ type: 'PodScheduled', status: 'True', lastTransitionTime: isoSeconds(Date.now()) }, { type: 'Ready', status: 'False', lastTransitionTime: isoSeconds(Date.now()) }];
    };
    const ready = () => {
      pod.status.phase = 'Running';
      pod.status.podIP = `10.0.0.${randomInt(2, 254)}`;
      pod.status.conditions = [{ type: 'PodScheduled', status: 'True', lastTransitionTime: isoSeconds(Date.now()) }, { type: 'Ready', status: 'True', lastTransitionTime: isoSeconds(Date.now()) }];
      pod.status.containerStatuses = [{ name: 'socket', ready: true, restartCount: 0, image: 'rtc-edge:test', imageID: '', started: true }];
    };
    if (scheduleMs === 0 && readyMs === 0) {
      schedule();
      ready();
      this.touch(pod, 'ADDED');
      return;
    }
    this.touch(pod, 'ADDED');
    this.later(scheduleMs, () => {
      if (!this.pods.has(name) || pod.metadata.deletionTimestamp) return;
      schedule();
      this.touch(pod);
      this.later(readyMs, () => {
        if (!this.pods.has(name) || pod.metadata.deletionTimestamp) return;
        ready();
        this.touch(pod);
      });
    });
  }

  private removePod(name: string): void {
    const pod = this.pods.get(name);
    if (!pod) return;
    this.pods.delete(name);
    pod.metadata.resourceVersion = this.nextRV();
    this.emit('DELETED', pod);
  }

  private podsOf(rs: ReplicaSet): Json[] {
    return [...this.pods.values()].filter((p) => !p.metadata.deletionTimestamp && p.metadata.ownerReferences?.[0]?.uid === rs.uid);
  }

  /**
   * Bring the stored objects in line with spec.replicas without choosing anything: missing pods are added,
   * a ReplicaSet scaled to 0 loses all its pods; surplus pods of the newest one stay until the test deletes them.
   */
  private reconcile(): void {
    const newest = this.replicaSets[this.replicaSets.length - 1]!;
    const others = this.replicaSets.slice(0, -1).reduce((s, rs) => s + rs.replicas, 0);
    newest.replicas = Math.max(0, this.deployment.spec.replicas - others);
    for (const rs of this.replicaSets) {
      const active = this.podsOf(rs);
      if (rs.replicas === 0) for (const p of active) this.deletePod(p.metadata.name);
      else for (let i = active.length; i < rs.replicas; i++) this.createPod(rs);
    }
    const active = [...this.pods.values()].filter((p) => !p.metadata.deletionTimestamp);
    this.deployment.status = {
      replicas: active.length,
      readyReplicas: active.filter((p) => (p.status?.conditions ?? []).some((c: Json) => c.type === 'Ready' && c.status === 'True')).length,
      updatedReplicas: this.podsOf(newest).length,
    };
  }

  /** Ask `onScaleIn` which pods go, and delete those. */
  private answerScaleIn(): void {
    const answer = this.onScaleIn;
    const newest = this.replicaSets[this.replicaSets.length - 1]!;
    const active = this.podsOf(newest);
    const surplus = active.length - newest.replicas;
    if (!answer || surplus <= 0) return;
    Promise.resolve()
      .then(() => answer(active.map(clone), surplus))
      .then((names) => {
        for (const name of names) this.deletePod(name);
      })
      .catch((err: unknown) => {
        this.hookError ??= err as Error;
      });
  }

  // ---- test helpers ---------------------------------------------------------------------------------

  /** Pods without a deletionTimestamp (copies). */
  activePods(): Json[] {
    return [...this.pods.values()].filter((p) => !p.metadata.deletionTimestamp).map(clone);
  }

  /** Every pod, terminating ones included (copies). */
  allPods(): Json[] {
    return [...this.pods.values()].map(clone);
  }

  /** Names of the active pods. */
  podNames(): string[] {
    return this.activePods().map((p) => p.metadata.name as string);
  }

  /** The deletion-cost annotation of a pod, undefined when unset or the pod is gone. */
  deletionCost(name: string): string | undefined {
    return this.pods.get(name)?.metadata.annotations?.[DELETION_COST_ANNOTATION];
  }

  /** spec.replicas of the Deployment. */
  replicas(): number {
    return this.deployment.spec.replicas;
  }

  /** Someone else scales the Deployment (kubectl scale, another controller). */
  setReplicas(n: number): void {
    this.deployment.spec.replicas = n;
    this.deployment.metadata.resourceVersion = this.nextRV();
    this.deployment.metadata.generation++;
    this.reconcile();
    this.answerScaleIn();
  }

  /** Delete a pod gracefully, as the test's stand-in for the ReplicaSet controller: deletionTimestamp now, gone after terminationMs. */
  deletePod(name: string): void {
    const pod = this.pods.get(name);
    if (!pod) throw new Error(`no pod ${name}`);
    if (pod.metadata.deletionTimestamp) return;
    pod.metadata.deletionTimestamp = isoSeconds(Date.now());
    pod.metadata.deletionGracePeriodSeconds = 330;
    this.touch(pod);
    this.later(this.opts.terminationMs, () => this.removePod(name));
  }

  /** Mark a pod (not) Ready, as a failing readiness probe would. */
  setPodReady(name: string, ready: boolean): void {
    const pod = this.pods.get(name);
    if (!pod) throw new Error(`no pod ${name}`);
    pod.status.conditions = (pod.status.conditions ?? []).filter((c: Json) => c.type !== 'Ready');
    pod.status.conditions.push({ type: 'Ready', status: ready ? 'True' : 'False', lastTransitionTime: isoSeconds(Date.now()) });
    this.touch(pod);
  }

  /** Begin a rollout: a new ReplicaSet with `newPods` pods next to the old one (surge). */
  startRollout(newPods = 1): string {
    const rs = this.addReplicaSet(newPods);
    for (let i = 0; i < newPods; i++) this.createPod(rs);
    // Freeze the new RS at newPods until finishRollout(): the old ones keep the rest.
    const old = this.replicaSets.slice(0, -1);
    const oldTotal = Math.max(0, this.deployment.spec.replicas);
    for (const o of old) o.replicas = this.podsOf(o).length;
    const sum = old.reduce((s, o) => s + o.replicas, 0);
    if (sum > oldTotal) old[old.length - 1]!.replicas -= sum - oldTotal;
    this.deployment.metadata.generation++;
    this.deployment.metadata.resourceVersion = this.nextRV();
    return rs.name;
  }

  /** Finish the rollout: old ReplicaSets scaled to 0, the newest one takes every replica. */
  finishRollout(): void {
    for (const rs of this.replicaSets.slice(0, -1)) rs.replicas = 0;
    this.reconcile();
  }

  /** ReplicaSets that have active pods. */
  replicaSetsWithPods(): string[] {
    return this.replicaSets.filter((rs) => this.podsOf(rs).length > 0).map((rs) => rs.name);
  }

  /** Inject a fault for the next `times` matching requests. */
  injectFault(fault: Fault): void {
    this.faults.push({ ...fault });
  }

  clearFaults(): void {
    this.faults = [];
  }

  /** Hold matching requests unanswered until `release()` (a slow API server). */
  hold(match: HoldMatch): HeldRequests {
    const h = { match, arrived: 0, queue: [] as Array<() => void> };
    this.holds.add(h);
    return {
      count: () => h.arrived,
      release: () => {
        this.holds.delete(h);
        for (const serve of h.queue.splice(0)) serve();
      },
    };
  }

  /** Hold back every watch event from now on until `release()` (the pod watch lags behind the writes). */
  stallWatches(): StalledWatches {
    const stall = { queue: [] as Array<() => void> };
    this.stall = stall;
    return {
      count: () => stall.queue.length,
      release: () => {
        if (this.stall === stall) this.stall = undefined;
        for (const deliver of stall.queue.splice(0)) deliver();
      },
    };
  }

  /** End every open watch, as an API server does on its watch timeout. */
  closeWatches(): void {
    for (const w of this.watchers) w.res.end();
    this.watchers.clear();
  }

  /** The Lease object, undefined when absent. */
  lease(name: string): Json | undefined {
    const l = this.leases.get(name);
    return l ? clone(l) : undefined;
  }

  /** The RBAC permissions the recorded requests used (see `rbacVerbsUsed`). */
  rbacVerbsUsed(): ApiPermission[] {
    return rbacVerbsUsed(this.requests);
  }

  /** Requests that changed something (create, update, patch, delete). */
  writes(): RecordedRequest[] {
    return this.requests.filter((r) => ['create', 'update', 'patch', 'delete', 'deletecollection'].includes(r.verb));
  }

  /** Poll until `check()` is true. */
  async waitFor(check: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Stop serving; rethrows an error of the test's `onScaleIn` answer so that it cannot pass unseen. */
  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.closeWatches();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
    if (this.hookError) throw this.hookError;
  }

  // ---- HTTP -----------------------------------------------------------------------------------------

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const query = Object.fromEntries(url.searchParams);
      const route = parseApiPath(url.pathname);
      const method = req.method ?? 'GET';
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: Json;
      try {
        body = raw ? JSON.parse(raw) : undefined;
      } catch {
        body = raw;
      }
      const auth = req.headers.authorization;
      const rec: RecordedRequest = {
        at: Date.now(),
        method,
        path: url.pathname,
        query,
        verb: route ? verbOf(method, route, query) : method.toLowerCase(),
        apiGroup: route?.apiGroup ?? '',
        resource: route?.resource ?? '',
        subresource: route?.subresource,
        namespace: route?.namespace,
        name: route?.name,
        status: 0,
        contentType: req.headers['content-type'],
        user: auth?.startsWith('Bearer ') ? auth.slice(7) : undefined,
        body,
      };
      this.requests.push(rec);
      const send = (code: number, obj: Json, headers: Record<string, string> = {}) => {
        rec.status = code;
        rec.answeredAt = Date.now();
        res.writeHead(code, { 'content-type': 'application/json', ...headers });
        res.end(JSON.stringify(obj));
      };
      if (!route) return send(404, status(404, 'NotFound', `the server could not find the requested resource (${url.pathname})`));
      const resourcePath = route.subresource ? `${route.resource}/${route.subresource}` : route.resource;
      const held = [...this.holds].find(({ match: m }) => (!m.verb || m.verb === rec.verb) && (!m.resource || m.resource === resourcePath) && (!m.user || m.user === rec.user));
      if (held) {
        held.arrived++;
        held.queue.push(() => this.answer(req, res, rec, route, resourcePath, body, send));
        return;
      }
      this.answer(req, res, rec, route, resourcePath, body, send);
    });
  }

  private answer(req: http.IncomingMessage, res: http.ServerResponse, rec: RecordedRequest, route: Route, resourcePath: string, body: Json, send: (code: number, obj: Json, headers?: Record<string, string>) => void): void {
    {
      const fault = this.faults.find((f) => f.times > 0 && (!f.verb || f.verb === rec.verb) && (!f.resource || f.resource === resourcePath) && (!f.name || f.name === route.name));
      if (fault) {
        fault.times--;
        const group = route.apiGroup;
        const messages: Record<number, [string, string]> = {
          403: ['Forbidden', `${resourcePath} "${route.name ?? ''}" is forbidden: User "system:serviceaccount:${this.namespace}:${rec.user ?? 'anonymous'}" cannot ${rec.verb} resource "${route.resource}"${route.subresource ? ` subresource "${route.subresource}"` : ''} in API group "${group}" in the namespace "${route.namespace ?? ''}"`],
          409: ['Conflict', `Operation cannot be fulfilled on ${route.resource}${group ? `.${group}` : ''} "${route.name ?? ''}": the object has been modified; please apply your changes to the latest version and try again`],
          429: ['TooManyRequests', 'Too many requests, please try again later.'],
          500: ['InternalError', 'Internal error occurred: injected fault'],
          503: ['ServiceUnavailable', 'The server is currently unable to handle the request'],
        };
        const [reason, message] = messages[fault.status]!;
        return send(fault.status, status(fault.status, reason, message), fault.retryAfterSeconds !== undefined ? { 'retry-after': String(fault.retryAfterSeconds) } : {});
      }
      if (route.namespace !== undefined && route.namespace !== this.namespace) {
        return send(404, status(404, 'NotFound', `${route.resource} "${route.name ?? ''}" not found`));
      }
      try {
        this.serve(req, res, rec, route, body, send);
      } catch (err) {
        send(500, status(500, 'InternalError', (err as Error).message));
      }
    }
  }

  private serve(req: http.IncomingMessage, res: http.ServerResponse, rec: RecordedRequest, route: Route, body: Json, send: (code: number, obj: Json, headers?: Record<string, string>) => void): void {
    const key = `${route.apiGroup}/${route.resource}${route.subresource ? `/${route.subresource}` : ''}`;
    const notFound = (what: string) => send(404, status(404, 'NotFound', `${what} "${route.name}" not found`, { name: route.name, kind: route.resource }));
    const notAllowed = () => send(405, status(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`));
    const applyPatch = (target: Json): Json => {
      const ct = (rec.contentType ?? '').split(';')[0]!.trim();
      if (ct === 'application/merge-patch+json' || ct === 'application/strategic-merge-patch+json') return mergePatch(target, body);
      if (ct === 'application/json-patch+json') return jsonPatch(target, body);
      throw Object.assign(new Error(`the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`), { code: 415 });
    };
    const patchOr = (target: Json): Json | undefined => {
      try {
        return applyPatch(target);
      } catch (err) {
        const code = (err as { code?: number }).code ?? 400;
        send(code, status(code, code === 415 ? 'UnsupportedMediaType' : 'BadRequest', (err as Error).message));
        return undefined;
      }
    };

    switch (key) {
      case '/pods': {
        if (route.name === undefined) {
          if (rec.verb === 'watch') return this.watchPods(req, res, rec);
          if (rec.verb !== 'list') return notAllowed();
          const matches = parseSelector(rec.query.labelSelector);
          const items = [...this.pods.values()].filter((p) => matches(p.metadata.labels)).map(clone);
          return send(200, { kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: String(this.rv) }, items });
        }
        const pod = this.pods.get(route.name);
        if (!pod) return notFound('pods');
        if (rec.verb === 'get') return send(200, pod);
        if (rec.verb !== 'patch') return notAllowed();
        const next = patchOr(pod);
        if (!next) return;
        if (next.metadata?.resourceVersion && next.metadata.resourceVersion !== pod.metadata.resourceVersion) {
          return send(409, status(409, 'Conflict', `Operation cannot be fulfilled on pods "${route.name}": the object has been modified; please apply your changes to the latest version and try again`));
        }
        // Only metadata labels/annotations are mutable here, as for a running pod.
        pod.metadata.annotations = next.metadata?.annotations ?? {};
        pod.metadata.labels = next.metadata?.labels ?? pod.metadata.labels;
        this.touch(pod);
        return send(200, pod);
      }
      case 'apps/deployments': {
        if (route.name !== this.deploymentName) return notFound('deployments.apps');
        if (rec.verb !== 'get') return notAllowed();
        return send(200, this.deployment);
      }
      case 'apps/deployments/scale': {
        if (route.name !== this.deploymentName) return notFound('deployments.apps');
        const scale = () => ({
          apiVersion: 'autoscaling/v1',
          kind: 'Scale',
          metadata: { name: this.deploymentName, namespace: this.namespace, uid: this.deployment.metadata.uid, resourceVersion: this.deployment.metadata.resourceVersion },
          spec: { replicas: this.deployment.spec.replicas },
          status: { replicas: this.deployment.status.replicas, selector: Object.entries(this.labels).map(([k, v]) => `${k}=${v}`).join(',') },
        });
        if (rec.verb === 'get') return send(200, scale());
        let next: Json;
        if (rec.verb === 'patch') {
          next = patchOr(scale());
          if (!next) return;
        } else if (rec.verb === 'update') next = body;
        else return notAllowed();
        const wantRV = rec.verb === 'patch' ? body?.metadata?.resourceVersion : next?.metadata?.resourceVersion;
        if (wantRV !== undefined && wantRV !== null && wantRV !== this.deployment.metadata.resourceVersion) {
          return send(409, status(409, 'Conflict', `Operation cannot be fulfilled on deployments.apps "${this.deploymentName}": the object has been modified; please apply your changes to the latest version and try again`));
        }
        const n = next?.spec?.replicas;
        if (!Number.isInteger(n) || n < 0) return send(422, status(422, 'Invalid', `Scale.autoscaling "${this.deploymentName}" is invalid: spec.replicas: Invalid value: ${JSON.stringify(n)}`));
        this.setReplicas(n);
        return send(200, scale());
      }
      case 'apps/replicasets': {
        if (rec.verb !== 'list') return notAllowed();
        const items = this.replicaSets.map((rs) => ({
          apiVersion: 'apps/v1',
          kind: 'ReplicaSet',
          metadata: { name: rs.name, namespace: this.namespace, uid: rs.uid, labels: { ...this.labels, 'pod-template-hash': rs.hash }, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: this.deploymentName, uid: this.deployment.metadata.uid, controller: true }] },
          spec: { replicas: rs.replicas, selector: { matchLabels: { ...this.labels, 'pod-template-hash': rs.hash } } },
          status: { replicas: this.podsOf(rs).length },
        }));
        return send(200, { kind: 'ReplicaSetList', apiVersion: 'apps/v1', metadata: { resourceVersion: String(this.rv) }, items });
      }
      case 'coordination.k8s.io/leases': {
        if (rec.verb === 'create') {
          const name = body?.metadata?.name;
          if (!name) return send(422, status(422, 'Invalid', 'Lease.coordination.k8s.io is invalid: metadata.name: Required value'));
          if (this.leases.has(name)) return send(409, status(409, 'AlreadyExists', `leases.coordination.k8s.io "${name}" already exists`));
          const lease = { ...body, apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { ...body.metadata, namespace: this.namespace, uid: randomUUID(), resourceVersion: this.nextRV(), creationTimestamp: isoSeconds(Date.now()) } };
          this.leases.set(name, lease);
          return send(201, lease);
        }
        const lease = route.name ? this.leases.get(route.name) : undefined;
        if (rec.verb === 'get') return lease ? send(200, lease) : notFound('leases.coordination.k8s.io');
        if (rec.verb === 'update') {
          if (!lease) return notFound('leases.coordination.k8s.io');
          if (body?.metadata?.resourceVersion !== lease.metadata.resourceVersion) {
            return send(409, status(409, 'Conflict', `Operation cannot be fulfilled on leases.coordination.k8s.io "${route.name}": the object has been modified; please apply your changes to the latest version and try again`));
          }
          const next = { ...body, apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { ...lease.metadata, ...body.metadata, resourceVersion: this.nextRV() } };
          this.leases.set(route.name!, next);
          return send(200, next);
        }
        return notAllowed();
      }
      default:
        return send(404, status(404, 'NotFound', `the server could not find the requested resource`));
    }
  }

  private watchPods(req: http.IncomingMessage, res: http.ServerResponse, rec: RecordedRequest): void {
    rec.status = 200;
    const matches = parseSelector(rec.query.labelSelector);
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    const from = rec.query.resourceVersion;
    if (!from || from === '0') {
      for (const p of this.pods.values()) if (matches(p.metadata.labels)) res.write(`${JSON.stringify({ type: 'ADDED', object: p })}\n`);
    } else {
      const fromRV = Number(from);
      const oldest = this.events[0]?.rv;
      if (oldest !== undefined && fromRV < oldest - 1 && this.events.length >= this.opts.eventHistory) {
        res.end(`${JSON.stringify({ type: 'ERROR', object: status(410, 'Expired', `too old resource version: ${from} (${oldest - 1})`) })}\n`);
        return;
      }
      for (const e of this.events) if (e.rv > fromRV && matches(e.object.metadata.labels)) res.write(`${JSON.stringify({ type: e.type, object: e.object })}\n`);
    }
    const w: Watcher = { res, matches };
    this.watchers.add(w);
    res.on('close', () => this.watchers.delete(w));
  }
}

/** Start a fake API server. */
export function startFakeKubernetes(opts: FakeK8sOptions = {}): Promise<FakeKubernetes> {
  return FakeKubernetes.start(opts);
}
