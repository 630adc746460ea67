/**
 * The process kubelet: one Node, every pod bound to it, every container a real process (the rtc-edge CLI,
 * `redis-server`, or a `node` script), status written through the status subresource with Ready driven by
 * the pod's own readinessProbe, graceful deletion (preStop, SIGTERM, grace period, finalize with grace 0)
 * and restarts per restartPolicy. Each pod gets a pod IP (10.244.0.0/16) and a loopback port per
 * containerPort; netshim.mjs routes pod IPs, Services and cluster DNS names to them. README: what it does not emulate.
 */
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { CoreV1Api, PatchStrategy, makeInformer, setHeaderOptions, type Informer, type ObjectCache, type V1Container, type V1Pod, type V1Service } from '@kubernetes/client-node';
import type { KubePlane } from './plane.js';
import { allocatePorts, containerCommand, containerEnv, REPO_ROOT, substitutePort, type PodPorts } from './pod-spec.js';
import { Prober, runAction } from './probe.js';
import { startProc, type Proc } from './proc.js';
import { buildNetTable, writeNetTable, type NetPod } from './network.js';
import { guardDir, releaseDir } from './reaper.js';

/** The node's address (status.hostIP of every pod). */
export const NODE_IP = '127.0.0.1';
const MERGE_PATCH = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
/** Restart back-off: 1 s doubling to 10 s (the real kubelet: 10 s doubling to 5 min; tests cannot wait that long). */
const RESTART_BASE_MS = 1000;
const RESTART_MAX_MS = 10_000;
/** The kubelet also gives SIGTERM at least this long when preStop used up the grace period. */
const MIN_TERM_GRACE_MS = 2000;
const RETRY_MS = 1000;
const LOG_LINES_KEPT = 20_000;

/** A running process kubelet. */
export interface ProcessKubelet {
  readonly nodeName: string;
  /** The loopback port where `pod`'s containerPort (number or name) listens. */
  port(pod: string, containerPort: number | string): number;
  /** Pod IP the kubelet gave `pod`. */
  podIP(pod: string): string;
  /** Output lines of a pod's containers (kept after the pod is gone). */
  logs(pod: string): string[];
  /** Pods this kubelet runs now (name → phase), optionally of one namespace. */
  pods(namespace?: string): Map<string, string>;
  /** SIGKILL the containers of `pod` (a crash: restartPolicy decides what follows). */
  crash(pod: string): void;
  /** Last lines of the kubelet log (every container's output, prefixed). */
  logTail(lines?: number): string;
  close(): Promise<void>;
}

const iso = (d: Date) => d.toISOString().replace(/\.\d+Z$/, 'Z');
const statusOf = (err: unknown) => (err as { code?: number }).code ?? 0;

interface ContainerRun {
  spec: V1Container;
  env: NodeJS.ProcessEnv;
  proc: Proc | undefined;
  restarts: number;
  ready: boolean;
  startedAt: Date | undefined;
  probers: Prober[];
  waiting: { reason: string; message?: string } | undefined;
  terminated: { exitCode: number; reason: string; finishedAt: string } | undefined;
  timer: NodeJS.Timeout | undefined;
}

interface Ctx {
  api: CoreV1Api;
  plane: KubePlane;
  nodeName: string;
  dir: string;
  netFile: string;
  log: Writable;
  logs: Map<string, string[]>;
  netChanged(): void;
  forget(uid: string): void;
}

/** One pod on this node. */
class PodRun {
  readonly name: string;
  readonly namespace: string;
  readonly uid: string;
  ip = '';
  ports: PodPorts = { byNumber: new Map(), byName: new Map() };
  phase: 'Pending' | 'Running' | 'Succeeded' | 'Failed' = 'Pending';
  containers: ContainerRun[] = [];
  terminating = false;
  private readonly startTime = new Date();
  private readyAt = new Date();
  private lastReady = false;
  private writing = false;
  private dirty = false;
  private gone = false;
  private started: Promise<void> | undefined;

  constructor(
    private readonly ctx: Ctx,
    public pod: V1Pod,
    private readonly allocateIp: () => string,
  ) {
    this.name = pod.metadata!.name!;
    this.namespace = pod.metadata!.namespace!;
    this.uid = pod.metadata!.uid!;
  }

  get ready(): boolean {
    return this.phase === 'Running' && this.containers.length > 0 && this.containers.every((c) => c.ready);
  }

  netPod(): NetPod {
    return { name: this.name, namespace: this.namespace, ip: this.ip, labels: this.pod.metadata?.labels ?? {}, ready: this.ready && !this.gone, ports: this.ports };
  }

  start(): Promise<void> {
    this.started ??= this.boot().catch((err: unknown) => {
      this.ctx.log.write(`[kubelet] ${this.namespace}/${this.name}: start failed: ${(err as Error).message}\n`);
    });
    return this.started;
  }

  private async boot(): Promise<void> {
    this.ports = await allocatePorts(this.pod);
    this.ip = this.allocateIp();
    const kubeconfig = await this.serviceAccountKubeconfig();
    const podDir = path.join(this.ctx.dir, this.uid);
    mkdirSync(podDir, { recursive: true });
    const base: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: podDir, RTC_KUBELET_NET: this.ctx.netFile, RTC_KUBELET_NAMESPACE: this.namespace };
    if (kubeconfig) {
      writeFileSync(path.join(podDir, 'kubeconfig'), kubeconfig, { mode: 0o600 });
      base.KUBECONFIG = path.join(podDir, 'kubeconfig');
    }
    this.containers = (this.pod.spec?.containers ?? []).map((spec) => ({ spec, env: base, proc: undefined, restarts: 0, ready: false, startedAt: undefined, probers: [], waiting: { reason: 'ContainerCreating' }, terminated: undefined, timer: undefined }));
    for (const c of this.containers) await this.startContainer(c, base);
    this.changed();
  }

  /** A kubeconfig with a TokenRequest token bound to this pod, unless the pod opts out of a token. */
  private async serviceAccountKubeconfig(): Promise<string | undefined> {
    const sa = this.pod.spec?.serviceAccountName ?? 'default';
    let automount = this.pod.spec?.automountServiceAccountToken;
    if (automount === undefined) automount = (await this.ctx.api.readNamespacedServiceAccount({ name: sa, namespace: this.namespace })).automountServiceAccountToken ?? true;
    if (!automount) return undefined;
    const tr = await this.ctx.api.createNamespacedServiceAccountToken({
      name: sa,
      namespace: this.namespace,
      body: { spec: { audiences: [], expirationSeconds: 3600, boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: this.name, uid: this.uid } } },
    });
    return this.ctx.plane.kubeconfigFor(tr.status!.token, `system:serviceaccount:${this.namespace}:${sa}`);
  }

  private async startContainer(c: ContainerRun, base: NodeJS.ProcessEnv): Promise<void> {
    if (this.terminating || this.gone) return;
    let env: Record<string, string>;
    let command: { cmd: string; args: string[] };
    try {
      env = await containerEnv(this.ctx.api, this.pod, c.spec, { podIP: this.ip, hostIP: NODE_IP });
      command = containerCommand(c.spec, this.ports, env);
    } catch (err) {
      // CreateContainerConfigError: a ConfigMap or Secret may appear later; try again.
      c.waiting = { reason: 'CreateContainerConfigError', message: (err as Error).message };
      this.changed();
      c.timer = setTimeout(() => void this.startContainer(c, base), RETRY_MS);
      return;
    }
    for (const k of Object.keys(env)) env[k] = substitutePort(this.ports, env[k]!);
    c.env = { ...base, ...env };
    const key = `${this.namespace}/${this.name}`;
    const lines = this.ctx.logs.get(this.name) ?? [];
    this.ctx.logs.set(this.name, lines);
    const proc = startProc(`${key}/${c.spec.name}`, command.cmd, command.args, {
      env: c.env,
      cwd: REPO_ROOT,
      log: this.ctx.log,
      onLine: (line) => {
        lines.push(line);
        if (lines.length > LOG_LINES_KEPT) lines.splice(0, lines.length - LOG_LINES_KEPT);
      },
    });
    c.proc = proc;
    if (this.phase === 'Pending') this.phase = 'Running';
    c.startedAt = new Date();
    c.waiting = undefined;
    c.ready = !c.spec.readinessProbe;
    c.probers = [];
    if (c.spec.readinessProbe) c.probers.push(new Prober(c.spec.readinessProbe, this.ports, c.env, false, (ok) => ((c.ready = ok), this.changed())));
    if (c.spec.livenessProbe) c.probers.push(new Prober(c.spec.livenessProbe, this.ports, c.env, true, (ok) => ok || proc.signal('SIGKILL')));
    this.changed();
    void proc.exited.then(({ code, signal }) => {
      for (const p of c.probers) p.stop();
      c.ready = false;
      const exitCode = code ?? 137;
      c.terminated = { exitCode, reason: exitCode === 0 ? 'Completed' : signal ? `Killed (${signal})` : 'Error', finishedAt: iso(new Date()) };
      if (this.terminating || this.gone) return this.changed();
      const policy = this.pod.spec?.restartPolicy ?? 'Always';
      if (policy === 'Always' || (policy === 'OnFailure' && exitCode !== 0)) {
        c.restarts++;
        c.waiting = { reason: 'CrashLoopBackOff' };
        c.timer = setTimeout(() => void this.startContainer(c, base), Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** (c.restarts - 1)));
      } else if (this.containers.every((x) => x.terminated && !x.proc?.running())) {
        this.phase = this.containers.every((x) => x.terminated?.exitCode === 0) ? 'Succeeded' : 'Failed';
      }
      this.changed();
    });
  }

  /** Pod deleted gracefully: preStop hooks, SIGTERM, wait up to the grace period, SIGKILL, then finalize with grace 0. */
  async terminate(): Promise<void> {
    if (this.terminating) return;
    this.terminating = true;
    await this.started;
    const graceS = this.pod.metadata?.deletionGracePeriodSeconds ?? this.pod.spec?.terminationGracePeriodSeconds ?? 30;
    const deadline = Date.now() + graceS * 1000;
    for (const c of this.containers) clearTimeout(c.timer);
    const running = this.containers.filter((c) => c.proc?.running());
    await Promise.all(running.map(async (c) => {
      const hook = c.spec.lifecycle?.preStop;
      if (hook) await runAction(hook, this.ports, c.env, Math.max(0, deadline - Date.now())).catch(() => false);
    }));
    await Promise.all(running.map((c) => c.proc!.stop(Math.max(MIN_TERM_GRACE_MS, deadline - Date.now()))));
    this.changed();
    try {
      await this.ctx.api.deleteNamespacedPod({ name: this.name, namespace: this.namespace, gracePeriodSeconds: 0, body: { gracePeriodSeconds: 0, preconditions: { uid: this.uid } } });
    } catch (err) {
      if (statusOf(err) !== 404 && statusOf(err) !== 409) this.ctx.log.write(`[kubelet] ${this.namespace}/${this.name}: finalize failed: ${(err as Error).message}\n`);
    }
  }

  /** The pod object is gone (deleted with grace 0, or finalized): stop whatever still runs. */
  async kill(): Promise<void> {
    this.gone = true;
    this.ctx.netChanged();
    await this.started;
    for (const c of this.containers) {
      clearTimeout(c.timer);
      for (const p of c.probers) p.stop();
    }
    await Promise.all(this.containers.map((c) => c.proc?.stop(0)));
    this.ctx.forget(this.uid);
  }

  crash(): void {
    for (const c of this.containers) c.proc?.signal('SIGKILL');
  }

  /** Something the status shows changed: rewrite the network table and the pod status (coalesced). */
  changed(): void {
    this.ctx.netChanged();
    this.dirty = true;
    if (!this.writing && !this.gone) void this.flush();
  }

  private async flush(): Promise<void> {
    this.writing = true;
    while (this.dirty && !this.gone) {
      this.dirty = false;
      try {
        await this.ctx.api.patchNamespacedPodStatus({ name: this.name, namespace: this.namespace, body: { status: this.status() } }, MERGE_PATCH);
      } catch (err) {
        if (statusOf(err) === 404) break;
        this.ctx.log.write(`[kubelet] ${this.namespace}/${this.name}: status write failed (${statusOf(err)}); retrying\n`);
        this.dirty = true;
        await new Promise((r) => setTimeout(r, RETRY_MS));
      }
    }
    this.writing = false;
  }

  private status() {
    const ready = this.ready;
    if (ready !== this.lastReady) {
      this.lastReady = ready;
      this.readyAt = new Date();
    }
    const cond = (type: string, ok: boolean, at: Date) => ({ type, status: ok ? 'True' : 'False', lastTransitionTime: iso(at) });
    return {
      phase: this.phase,
      podIP: this.ip,
      podIPs: [{ ip: this.ip }],
      hostIP: NODE_IP,
      hostIPs: [{ ip: NODE_IP }],
      startTime: iso(this.startTime),
      conditions: [cond('PodScheduled', true, this.startTime), cond('Initialized', true, this.startTime), cond('ContainersReady', ready, this.readyAt), cond('Ready', ready, this.readyAt)],
      containerStatuses: this.containers.map((c) => {
        const running = c.proc?.running() ?? false;
        const state = running ? { running: { startedAt: iso(c.startedAt!) } } : c.waiting ? { waiting: c.waiting } : { terminated: c.terminated };
        return { name: c.spec.name, image: c.spec.image ?? '', imageID: '', containerID: c.proc ? `process://${c.proc.pid}` : undefined, ready: c.ready, started: running, restartCount: c.restarts, state, ...(c.terminated && running ? { lastState: { terminated: c.terminated } } : {}) };
      }),
    };
  }
}

/** Register a Node and run every pod in the cluster on it. */
export async function startKubelet(plane: KubePlane, opts: { nodeName?: string } = {}): Promise<ProcessKubelet> {
  const nodeName = opts.nodeName ?? 'node-0';
  const api = plane.kubeConfig.makeApiClient(CoreV1Api);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rtc-kubelet-'));
  guardDir(dir);
  const log = createWriteStream(path.join(dir, 'kubelet.log'), { flags: 'a' });
  const logTailLines: string[] = [];
  const tee = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l) logTailLines.push(l);
      if (logTailLines.length > 2000) logTailLines.splice(0, logTailLines.length - 2000);
      if (log.writableEnded) cb();
      else log.write(chunk, cb);
    },
  });
  const runs = new Map<string, PodRun>();
  const bound = new Set<string>();
  const logs = new Map<string, string[]>();
  let services: ObjectCache<V1Service> | undefined;
  let nextIp = 0;
  const allocateIp = () => {
    nextIp++;
    return `10.244.${Math.floor(nextIp / 250)}.${(nextIp % 250) + 2}`;
  };
  const netFile = path.join(dir, 'net.json');
  let netTimer: NodeJS.Timeout | undefined;
  const writeNet = () => {
    netTimer = undefined;
    const pods = [...runs.values()].filter((r) => r.ip).map((r) => r.netPod());
    writeNetTable(netFile, buildNetTable(pods, services?.list() ?? []));
  };
  const ctx: Ctx = {
    api,
    plane,
    nodeName,
    dir,
    netFile,
    log: tee,
    logs,
    netChanged: () => void (closed || (netTimer ??= setTimeout(writeNet, 0))),
    forget: (uid) => runs.delete(uid),
  };
  writeNet();

  await api.createNode({ body: { metadata: { name: nodeName, labels: { 'kubernetes.io/hostname': nodeName } }, spec: { podCIDR: '10.244.0.0/16', podCIDRs: ['10.244.0.0/16'] } } });
  const now = iso(new Date());
  await api.patchNodeStatus(
    {
      name: nodeName,
      body: { status: { conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'process kubelet', lastHeartbeatTime: now, lastTransitionTime: now }], addresses: [{ type: 'InternalIP', address: NODE_IP }, { type: 'Hostname', address: nodeName }] } },
    },
    MERGE_PATCH,
  );

  let closed: Promise<void> | undefined;
  const onPod = (pod: V1Pod) => {
    const uid = pod.metadata?.uid;
    if (!uid) return;
    if (!pod.spec?.nodeName) {
      if (pod.metadata?.deletionTimestamp || bound.has(uid)) return;
      bound.add(uid);
      const { name, namespace } = pod.metadata as { name: string; namespace: string };
      api.createNamespacedPodBinding({ name, namespace, body: { apiVersion: 'v1', kind: 'Binding', metadata: { name, namespace }, target: { apiVersion: 'v1', kind: 'Node', name: nodeName } } }).catch((err: unknown) => {
        if (statusOf(err) !== 404 && statusOf(err) !== 409) tee.write(`[kubelet] bind ${namespace}/${name} failed: ${(err as Error).message}\n`);
        bound.delete(uid);
      });
      return;
    }
    if (pod.spec.nodeName !== nodeName) return;
    let run = runs.get(uid);
    if (!run) {
      if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') return;
      run = new PodRun(ctx, pod, allocateIp);
      runs.set(uid, run);
      void run.start();
    }
    run.pod = pod;
    if (pod.metadata?.deletionTimestamp) void run.terminate();
  };
  const onGone = (pod: V1Pod) => {
    const run = runs.get(pod.metadata?.uid ?? '');
    if (run) void run.kill();
  };

  const informer = <T extends V1Pod | V1Service>(inf: Informer<T> & ObjectCache<T>, onChange: (o: T) => void, onDelete: (o: T) => void) => {
    inf.on('add', onChange);
    inf.on('update', onChange);
    inf.on('delete', onDelete);
    inf.on('error', () => setTimeout(() => closed || void inf.start().catch(() => undefined), RETRY_MS));
    return inf;
  };
  const svcInformer = informer(makeInformer(plane.kubeConfig, '/api/v1/services', () => api.listServiceForAllNamespaces()), (svc) => {
    ctx.netChanged();
    // A LoadBalancer gets the node address, as a bare-metal load balancer (servicelb, MetalLB) would give.
    if (svc.spec?.type === 'LoadBalancer' && !svc.status?.loadBalancer?.ingress?.length) {
      api.patchNamespacedServiceStatus({ name: svc.metadata!.name!, namespace: svc.metadata!.namespace!, body: { status: { loadBalancer: { ingress: [{ ip: NODE_IP }] } } } }, MERGE_PATCH).catch((err: unknown) => tee.write(`[kubelet] load balancer status failed: ${(err as Error).message}\n`));
    }
  }, () => ctx.netChanged());
  services = svcInformer;
  await svcInformer.start();
  const podInformer = informer(makeInformer(plane.kubeConfig, '/api/v1/pods', () => api.listPodForAllNamespaces()), onPod, onGone);
  await podInformer.start();

  const find = (name: string): PodRun => {
    const found = [...runs.values()].filter((r) => r.name === name);
    if (found.length !== 1) throw new Error(`the kubelet runs ${found.length} pods named ${name}`);
    return found[0]!;
  };
  return {
    nodeName,
    port: (pod, containerPort) => {
      const r = find(pod);
      const number = typeof containerPort === 'number' ? containerPort : r.ports.byName.get(containerPort);
      const port = number === undefined ? undefined : r.ports.byNumber.get(number);
      if (port === undefined) throw new Error(`pod ${pod} has no container port ${containerPort}`);
      return port;
    },
    podIP: (pod) => find(pod).ip,
    logs: (pod) => logs.get(pod) ?? [],
    pods: (namespace) => new Map([...runs.values()].filter((r) => !namespace || r.namespace === namespace).map((r) => [r.name, r.phase])),
    crash: (pod) => find(pod).crash(),
    logTail: (lines = 80) => logTailLines.slice(-lines).join('\n'),
    close() {
      closed ??= (async () => {
        await podInformer.stop();
        await svcInformer.stop();
        await Promise.all([...runs.values()].map((r) => r.kill()));
        clearTimeout(netTimer);
        await new Promise((r) => log.end(r));
        rmSync(dir, { recursive: true, force: true });
        releaseDir(dir);
      })();
      return closed;
    },
  };
}
