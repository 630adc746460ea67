/**
 * Scaler test support: config for tests, heartbeats for the fake's pods, and
 * `runRecordedScalerSession()` — a realistic session (two replicas with Lease election, scale-out,
 * scale-in with deletion costs, failover) against the fake API server whose recorded RBAC verbs the
 * Helm chart test compares with the chart's Role.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, type Config } from '../../src/config.js';
import { createMemoryRegistry } from '../../src/registry/memory.js';
import type { Registry } from '../../src/registry/registry.js';
import { start as startScaler, type ScalerDeps, type ScalerHandle } from '../../scaler/index.js';
import { startFakeKubernetes, type ApiPermission, type FakeKubernetes, type RecordedRequest, type ScaleInAnswer } from './fake-k8s.js';
import { captureLogs } from './logs.js';

/** Scaler config for tests: ticks driven by the test (`handle.tick()`), admin on port 0. */
export function scalerTestConfig(overrides: Partial<Config> = {}): Config {
  return loadConfig({}, 'scaler', {
    adminPort: 0,
    podName: 'scaler-a',
    podNamespace: 'rtc',
    socketWorkloadName: 'socket',
    socketMinReplicas: 2,
    socketMaxReplicas: 50,
    socketTargetConnections: 1000,
    scalerIntervalMs: 3_600_000,
    scaleInStabilizationMs: 0,
    scaleInMaxStep: 1,
    heartbeatMs: HEARTBEAT_MS,
    ...overrides,
  });
}

/** Heartbeat period written into test records: an entry is dead 3 × this after its last write. */
export const HEARTBEAT_MS = 400;
const WRITE_EVERY_MS = 40;

/** Short timings for the Kubernetes parts of a test scaler. */
export const FAST: Pick<ScalerDeps, 'retry' | 'lease' | 'confirmTimeoutMs' | 'victimTimeoutMs'> = {
  retry: { baseMs: 20, maxMs: 100, attempts: 5 },
  lease: { leaseDurationMs: 1000, renewDeadlineMs: 700, retryPeriodMs: 100 },
  confirmTimeoutMs: 3000,
  victimTimeoutMs: 3000,
};

/** Heartbeats the fake's Ready pods write into a registry, as socket nodes would. */
export interface Heartbeats {
  /** Live connections per pod name (pods not listed get `fallback`). */
  readonly connections: Map<string, number>;
  /** Pods that never heartbeat (dead or not started). */
  readonly silent: Set<string>;
  fallback: number;
  /** Terminating pods keep heartbeating as draining (a slow drain) instead of leaving the registry. */
  drainTerminating: boolean;
  /** The error of the last timer round that failed (the registry was down), if any. */
  lastError?: unknown;
  /** Write one round now. */
  beat(): Promise<void>;
  stop(): void;
}

/**
 * Heartbeat every Ready, non-terminating pod of the fake every 40 ms; terminating pods leave the registry. Like
 * a socket node and the kubelet's readiness probe of its /readyz, a pod with a fresh retire request in its
 * cordon mark turns NotReady (and keeps heartbeating), and Ready again when the request is withdrawn.
 */
export function startHeartbeats(registry: Registry, fake: FakeKubernetes, fallback = 0): Heartbeats {
  const connections = new Map<string, number>();
  const silent = new Set<string>();
  const started = new Map<string, number>();
  const retired = new Set<string>();
  let stopped = false;
  const hb: Heartbeats = {
    connections,
    silent,
    fallback,
    drainTerminating: false,
    async beat() {
      const now = Date.now();
      const pods = fake.allPods();
      // A pod that is gone removed its own entry on SIGTERM, as a socket node does.
      const present = new Set(pods.map((p) => p.metadata.name as string));
      for (const name of started.keys()) {
        if (!present.has(name)) {
          started.delete(name);
          await registry.remove(name);
        }
      }
      for (const p of pods) {
        const name = p.metadata.name as string;
        let ready = (p.status?.conditions ?? []).some((c: { type: string; status: string }) => c.type === 'Ready' && c.status === 'True');
        if (p.metadata.deletionTimestamp && !hb.drainTerminating) {
          await registry.remove(name);
          continue;
        }
        if (started.has(name) && !p.metadata.deletionTimestamp) {
          ready = await probeReadiness(registry, fake, name);
          if (ready) retired.delete(name);
          else retired.add(name);
        }
        if ((!ready && !retired.has(name)) || silent.has(name)) continue;
        if (!started.has(name)) started.set(name, now);
        await registry.heartbeat({ podId: name, ip: '10.0.0.1', port: 8080, adminPort: 9090, connections: connections.get(name) ?? hb.fallback, draining: Boolean(p.metadata.deletionTimestamp), startedAt: started.get(name)!, updatedAt: now, heartbeatMs: HEARTBEAT_MS });
      }
    },
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
  const timer = setInterval(() => {
    // A socket node keeps beating through a registry outage and the next beat retries; so does this one.
    // The failure is kept, not thrown into the timer (an unhandled rejection would fail whichever test runs).
    if (!stopped) hb.beat().catch((err: unknown) => { hb.lastError = err; });
  }, WRITE_EVERY_MS);
  return hb;
}

/**
 * What the kubelet's readiness probe of a socket node's /readyz reports for a fake pod: NotReady while its
 * cordon mark carries a retire request. Sets the fake pod's Ready condition when it differs; returns it.
 */
export async function probeReadiness(registry: Registry, fake: FakeKubernetes, name: string): Promise<boolean> {
  const ready = (await registry.cordonOf(name))?.retire === undefined;
  const pod = fake.allPods().find((p) => p.metadata.name === name);
  const now = (pod?.status?.conditions ?? []).some((c: { type: string; status: string }) => c.type === 'Ready' && c.status === 'True');
  if (pod && now !== ready) fake.setPodReady(name, ready);
  return ready;
}

/**
 * The test's stand-in for the ReplicaSet controller on the fake: the pods the scaler retired (a retire
 * request in their cordon mark) are the ones deleted. A premise for testing what the scaler does next, not a
 * claim about Kubernetes: that the real controller removes the retired pod is shown by
 * test/scaler-cordon-plane.test.ts and test/kube-scaler.test.ts.
 */
export function removeRetired(registry: Registry): ScaleInAnswer {
  return async (pods, surplus) => {
    const retired: string[] = [];
    for (const p of pods) if ((await registry.cordonOf(p.metadata.name))?.retire !== undefined) retired.push(p.metadata.name);
    return retired.slice(0, surplus);
  };
}

/** Tick until `check()` holds (at most `max` ticks, `pauseMs` apart). */
export async function tickUntil(handle: ScalerHandle, check: () => boolean, max = 50, pauseMs = 30): Promise<void> {
  for (let i = 0; i < max; i++) {
    await handle.tick();
    if (check()) return;
    await new Promise((r) => setTimeout(r, pauseMs));
  }
  throw new Error(`condition not reached after ${max} ticks; last decision: ${handle.lastDecision()?.message ?? 'none'}`);
}

/** Active (not terminating) pods in a scaler's watch cache. */
export function activeInCache(handle: ScalerHandle): number {
  return handle.workload.listPods().filter((p) => !p.terminating).length;
}

/** What a recorded session returns. */
export interface RecordedSession {
  /** Every {apiGroup, resource(/subresource), verb} the scaler replicas used (see rbacVerbsUsed). */
  verbs: ApiPermission[];
  requests: RecordedRequest[];
  /** Deletion costs the scaler wrote, by pod. */
  costsWritten: Record<string, string>;
  /** The pod the scaler retired for the scale-in (and the fake's stand-in controller removed), with its connections. */
  removed: { pod: string; connections: number };
  /** Log messages of both replicas. */
  messages: string[];
}

const here = path.dirname(fileURLToPath(import.meta.url));
/** Where `runRecordedScalerSession({ write: true })` writes its verbs. */
export const SCALER_API_CALLS_ARTIFACT = path.resolve(here, '../../artifacts/scaler-api-calls.json');

/**
 * A realistic scaler session against the fake API server: two replicas elect a leader through the Lease,
 * the leader scales out on load, then scales in with deletion costs (the retired pod is removed, see
 * `removeRetired`), the leader shuts down and the standby takes over and acts. Returns what the replicas
 * asked of the API.
 * With `write`, also writes `artifacts/scaler-api-calls.json` ({ verbs, requests: [{verb, apiGroup, resource, subresource, status}] }).
 */
export async function runRecordedScalerSession(opts: { write?: boolean } = {}): Promise<RecordedSession> {
  const fake = await startFakeKubernetes({ replicas: 2 });
  const registry = createMemoryRegistry();
  fake.onScaleIn = removeRetired(registry);
  const logs = captureLogs();
  const hb = startHeartbeats(registry, fake, 0);
  const handles: ScalerHandle[] = [];
  try {
    const common = { logger: logs.logger, registry, admin: false, ...FAST };
    const a = await startScaler(scalerTestConfig({ podName: 'scaler-a' }), { ...common, kubeConfig: fake.kubeConfig('scaler-a') });
    handles.push(a);
    await fake.waitFor(() => a.isLeader(), 5000, 'scaler-a to lead');
    const b = await startScaler(scalerTestConfig({ podName: 'scaler-b' }), { ...common, kubeConfig: fake.kubeConfig('scaler-b') });
    handles.push(b);

    // Load: 2 pods with 1600 connections each → 4 pods wanted.
    for (const name of fake.podNames()) hb.connections.set(name, 1600);
    await hb.beat();
    await b.tick(); // the standby does nothing
    await tickUntil(a, () => fake.replicas() === 4);
    await fake.waitFor(() => fake.podNames().length === 4, 5000, '4 pods');

    // Load drops unevenly: the scaler retires the least-loaded pod.
    const pods = fake.podNames();
    const load = [700, 40, 350, 500];
    pods.forEach((name, i) => hb.connections.set(name, load[i]!));
    await hb.beat();
    await tickUntil(a, () => fake.replicas() === 3);
    await fake.waitFor(() => activeInCache(a) === 3, 5000, 'the scale-in on the pod watch');
    const removedPod = pods.find((p) => !fake.podNames().includes(p))!;
    // Clients of the removed pod reconnected elsewhere: 3 pods are wanted again.
    for (const name of fake.podNames()) hb.connections.set(name, 900);
    await hb.beat();
    await a.tick(); // observes the victim, holds at 3

    // Leader hands over; the standby takes the Lease and acts on the next change.
    await a.close();
    await fake.waitFor(() => b.isLeader(), 5000, 'scaler-b to take over');
    for (const name of fake.podNames()) hb.connections.set(name, 1500);
    await hb.beat();
    await tickUntil(b, () => fake.replicas() === 5);

    const costsWritten: Record<string, string> = {};
    for (const r of fake.requests) {
      const v = r.resource === 'pods' && r.verb === 'patch' ? r.body?.metadata?.annotations?.['controller.kubernetes.io/pod-deletion-cost'] : undefined;
      if (v !== undefined && r.name) costsWritten[r.name] = v;
    }
    const session: RecordedSession = {
      verbs: fake.rbacVerbsUsed(),
      requests: [...fake.requests],
      costsWritten,
      removed: { pod: removedPod, connections: load[pods.indexOf(removedPod)]! },
      messages: logs.messages(),
    };
    if (opts.write) {
      await mkdir(path.dirname(SCALER_API_CALLS_ARTIFACT), { recursive: true });
      const requests = session.requests.map((r) => ({ verb: r.verb, apiGroup: r.apiGroup, resource: r.resource, subresource: r.subresource ?? null, status: r.status, user: r.user ?? null }));
      await writeFile(SCALER_API_CALLS_ARTIFACT, `${JSON.stringify({ verbs: session.verbs, requests }, null, 2)}\n`);
    }
    return session;
  } finally {
    hb.stop();
    for (const h of handles.reverse()) await h.close();
    await registry.close();
    await fake.close();
  }
}
