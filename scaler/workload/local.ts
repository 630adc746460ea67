/**
 * The local workload of `rtc-edge dev`: socket nodes run inside this process on loopback ports 0, act as
 * the pods of a Deployment, and a scale-down removes the pod the ReplicaSet controller would remove
 * (scaler/ranking.ts) and drains it through GET /drain on its admin port, exactly as the kubelet's preStop.
 */
import { randomInt, randomUUID } from 'node:crypto';
import type { Config } from '../../src/config.js';
import type { Registry } from '../../src/registry/registry.js';
import type { SocketDeps, SocketNodeHandle } from '../../socket/index.js';
import { LOCAL_READY_POLL_MS, LOCAL_DRAIN_HTTP_MARGIN_MS, LOCAL_POD_SUFFIX_LENGTH, LOCAL_START_RETRY_MS, POD_NAME_ALPHABET } from '../constants.js';
import { podsToDelete } from '../ranking.js';
import type { Workload, WorkloadDeps, WorkloadPod, WorkloadSnapshot } from './workload.js';

/** The part of a socket node handle the local backend uses. */
export type LocalNode = Pick<SocketNodeHandle, 'podId' | 'port' | 'adminPort' | 'connections' | 'ready' | 'close'>;

/** Starts one socket node (default: socket/index.ts `start`). */
export type StartNode = (config: Config, deps: SocketDeps) => Promise<LocalNode>;

/** A local pod as the status page shows it. */
export interface LocalPodInfo {
  name: string;
  podId: string;
  ip: string;
  /** WebSocket port (0 while starting). */
  port: number;
  adminPort: number;
  /** The deletion cost the scaler last wrote, undefined when none. */
  deletionCost: number | undefined;
  ready: boolean;
  terminating: boolean;
  connections: number;
  createdAt: number;
}

/** Options beyond config. */
export interface LocalWorkloadOptions {
  startNode?: StartNode;
  /** Loopback address the nodes listen on. */
  host?: string;
  now?: () => number;
}

interface LocalPod {
  name: string;
  uid: string;
  createdAt: number;
  readyAt: number | undefined;
  node: LocalNode | undefined;
  starting: Promise<void> | undefined;
  cost: number | undefined;
  terminating: boolean;
  removal: Promise<void> | undefined;
}

const LOOPBACK = '127.0.0.1';

/** `<workload>-<5 chars>` from the Kubernetes name-suffix alphabet. */
export function localPodName(workload: string, taken: (name: string) => boolean): string {
  for (;;) {
    let suffix = '';
    for (let i = 0; i < LOCAL_POD_SUFFIX_LENGTH; i++) suffix += POD_NAME_ALPHABET[randomInt(POD_NAME_ALPHABET.length)];
    const name = `${workload.slice(0, 63 - LOCAL_POD_SUFFIX_LENGTH - 1)}-${suffix}`;
    if (!taken(name)) return name;
  }
}

/** The local backend. */
export class LocalWorkload implements Workload {
  readonly kind = 'local' as const;
  readonly name: string;
  private readonly byName = new Map<string, LocalPod>();
  private replicas: number;
  private readonly registry: Registry | undefined;
  private readonly log: WorkloadDeps['logger'];
  private readonly startNode: StartNode;
  private readonly host: string;
  private readonly now: () => number;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private started: Promise<void> | undefined;

  constructor(
    private readonly config: Config,
    private readonly deps: WorkloadDeps & LocalWorkloadOptions,
  ) {
    this.name = config.socketWorkloadName;
    this.replicas = config.socketMinReplicas;
    this.registry = deps.registry;
    this.log = deps.logger.child({ component: 'workload', workload: this.name, backend: 'local' });
    this.startNode = deps.startNode ?? (async (cfg, d) => (await import('../../socket/index.js')).start(cfg, d));
    this.host = deps.host ?? LOOPBACK;
    this.now = deps.now ?? Date.now;
  }

  start(): Promise<void> {
    this.started ??= (async () => {
      this.log.info({ replicas: this.replicas }, `starting ${this.replicas} local socket node(s)`);
      await this.reconcile();
    })();
    return this.started;
  }

  /** Pods for the status page and `dev`. */
  pods(): LocalPodInfo[] {
    return [...this.byName.values()].map((p) => ({
      name: p.name,
      podId: p.name,
      ip: this.host,
      port: p.node?.port ?? 0,
      adminPort: p.node?.adminPort ?? 0,
      deletionCost: p.cost,
      ready: this.isReady(p),
      terminating: p.terminating,
      connections: p.node?.connections() ?? 0,
      createdAt: p.createdAt,
    }));
  }

  /** The replica count the backend steers to. */
  get desiredReplicas(): number {
    return this.replicas;
  }

  listPods(): WorkloadPod[] {
    return [...this.byName.values()].map((p) => {
      const ready = this.isReady(p);
      return {
        name: p.name,
        uid: p.uid,
        assigned: true,
        phase: p.readyAt === undefined ? 'Pending' : 'Running',
        ready,
        readySince: ready ? p.readyAt : undefined,
        deletionCost: p.cost ?? 0,
        restarts: 0,
        createdAt: p.createdAt,
        terminating: p.terminating,
        annotatedCost: p.cost,
        owner: undefined,
      };
    });
  }

  async observe(): Promise<WorkloadSnapshot> {
    return { replicas: this.replicas, pods: this.listPods() };
  }

  /** What the kubelet's readiness probe would report: started, not leaving, and the node's /readyz passes. */
  private isReady(p: LocalPod): boolean {
    return p.readyAt !== undefined && !p.terminating && (p.node?.ready() ?? false);
  }

  async awaitNotReady(names: readonly string[], timeoutMs: number): Promise<boolean> {
    const deadline = this.now() + timeoutMs;
    for (;;) {
      const pending = names.filter((n) => {
        const p = this.byName.get(n);
        return p !== undefined && this.isReady(p);
      });
      if (pending.length === 0) return true;
      if (this.closed || this.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, LOCAL_READY_POLL_MS));
    }
  }

  async setDeletionCosts(costs: ReadonlyMap<string, number>, signal?: AbortSignal): Promise<number> {
    signal?.throwIfAborted();
    let written = 0;
    for (const [name, cost] of costs) {
      const pod = this.byName.get(name);
      if (!pod || pod.terminating) continue;
      pod.cost = cost;
      written++;
    }
    return written;
  }

  async scale(from: number, to: number, signal?: AbortSignal): Promise<boolean> {
    signal?.throwIfAborted();
    if (this.closed || this.replicas !== from) return false;
    this.replicas = to;
    await this.reconcile();
    return true;
  }

  /** Start or remove pods until the active ones match the replica count (the ReplicaSet controller's job). */
  private async reconcile(): Promise<void> {
    if (this.closed) return;
    const active = [...this.byName.values()].filter((p) => !p.terminating);
    if (active.length < this.replicas) {
      await Promise.all(Array.from({ length: this.replicas - active.length }, () => this.startPod()));
    } else if (active.length > this.replicas) {
      const byName = new Map(active.map((p) => [p.name, p]));
      const ranked = podsToDelete(this.listPods().filter((p) => !p.terminating), active.length - this.replicas, { now: this.now() });
      for (const victim of ranked) this.removePod(byName.get(victim.name)!);
    }
  }

  private startPod(): Promise<void> {
    const name = localPodName(this.name, (n) => this.byName.has(n));
    const pod: LocalPod = { name, uid: randomUUID(), createdAt: this.now(), readyAt: undefined, node: undefined, starting: undefined, cost: undefined, terminating: false, removal: undefined };
    this.byName.set(name, pod);
    const cfg: Config = { ...this.config, podName: name, podIp: this.host, socketPort: 0, adminPort: 0 };
    pod.starting = (async () => {
      try {
        const node = await this.startNode(cfg, { logger: this.deps.logger, ...(this.registry ? { registry: this.registry } : {}), host: this.host });
        pod.node = node;
        pod.readyAt = this.now();
        this.log.info({ podId: name, port: node.port, adminPort: node.adminPort }, `pod ${name} started on ${this.host}:${node.port}`);
        this.event('pod-added', name, `pod ${name} started on ${this.host}:${node.port} (admin ${node.adminPort})`);
        if (pod.terminating || this.closed) void this.removePod(pod);
      } catch (err) {
        this.byName.delete(name);
        this.log.error({ err, podId: name }, `pod ${name} failed to start; retrying in ${LOCAL_START_RETRY_MS} ms`);
        if (!this.closed) {
          clearTimeout(this.retryTimer);
          this.retryTimer = setTimeout(() => void this.reconcile(), LOCAL_START_RETRY_MS);
        }
      } finally {
        pod.starting = undefined;
      }
    })();
    return pod.starting;
  }

  /** Drain through the admin port like the kubelet's preStop, then stop the node (SIGTERM). */
  private removePod(pod: LocalPod): Promise<void> {
    pod.terminating = true;
    if (pod.removal) return pod.removal;
    if (!pod.node) return pod.starting ?? Promise.resolve(); // startPod() removes it once it is up
    const node = pod.node;
    this.log.info({ podId: pod.name, deletionCost: pod.cost ?? null, connections: node.connections() }, `removing pod ${pod.name}: GET /drain on its admin port`);
    pod.removal = (async () => {
      try {
        const res = await fetch(`http://${this.host}:${node.adminPort}/drain`, { signal: AbortSignal.timeout(this.config.drainTimeoutMs + LOCAL_DRAIN_HTTP_MARGIN_MS) });
        const body = (await res.json().catch(() => ({}))) as { drained?: number; remaining?: number };
        this.log.info({ podId: pod.name, status: res.status, ...body }, `pod ${pod.name} drained`);
      } catch (err) {
        this.log.warn({ err, podId: pod.name }, `drain of pod ${pod.name} over HTTP failed; stopping it anyway`);
      }
      try {
        await node.close();
      } catch (err) {
        this.log.error({ err, podId: pod.name }, `pod ${pod.name} did not close cleanly`);
      }
      this.byName.delete(pod.name);
      this.event('pod-removed', pod.name, `pod ${pod.name} removed`);
    })();
    return pod.removal;
  }

  private event(kind: 'pod-added' | 'pod-removed', podId: string, message: string): void {
    this.registry?.pushEvent({ at: this.now(), kind, podId, message }).catch((err: unknown) => this.log.debug({ err }, 'registry event not recorded'));
  }

  /** Stop every node (each drains first unless it already did, bounded by DRAIN_TIMEOUT_MS). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.retryTimer);
    await Promise.all([...this.byName.values()].map((p) => p.starting));
    await Promise.all(
      [...this.byName.values()].map(async (p) => {
        if (p.removal) return p.removal;
        p.terminating = true;
        try {
          await p.node?.close();
        } catch (err) {
          this.log.error({ err, podId: p.name }, `pod ${p.name} did not close cleanly`);
        }
        this.byName.delete(p.name);
      }),
    );
  }
}

/** Create the local backend (call `start()`: it starts SOCKET_MIN_REPLICAS nodes). */
export function createLocalWorkload(config: Config, deps: WorkloadDeps & LocalWorkloadOptions): LocalWorkload {
  return new LocalWorkload(config, deps);
}
