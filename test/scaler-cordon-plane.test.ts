/**
 * "Exactly that pod goes", judged by the real ReplicaSet controller (test/support/kube/plane.ts): over 12
 * scale-in rounds with uneven loads on 3–6 pods, the real scaler cordons, the cordoned pod's real socket
 * node fails /readyz, a small kubelet in this file reports that through the pod status as a readiness
 * probe would, the scaler writes the lowest cost and scales, and the real controller must delete exactly
 * the cordoned pod. Rounds include another pod NotReady at the same time, a pod that has just been
 * created (Pending) when the scale-in is due, the too-short-delay race (no pause at all between the
 * last write and the scale call), and a Ready pod whose node stopped heartbeating (no retire request can
 * reach it: the lowest deletion cost alone must make the controller take it). The kubelet here binds pods, runs each as an in-process socket node,
 * probes its /readyz and finalizes deleted pods; it stands in for the process kubelet of test/support/kube.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { AppsV1Api, CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { createMemoryRegistry } from '../src/registry/memory.js';
import type { Registry } from '../src/registry/registry.js';
import { callOptions } from '../scaler/kube.js';
import { start as startScaler, type ScalerHandle } from '../scaler/index.js';
import { start as startSocketNode, type SocketNodeHandle } from '../socket/index.js';
import { startKubePlane, type KubePlane } from './support/kube/plane.js';
import { captureLogs } from './support/logs.js';
import { FAST, scalerTestConfig } from './support/scaler-session.js';

const NS = 'rtc';
const NODE = 'node-1';
const LABELS = { app: 'socket' };
const PROBE_MS = 150;
const silent = createLogger('silent');

async function waitUntil<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await Promise.resolve(fn()).catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what} not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Binds the Deployment's pods to one Node, runs each as a socket node, reports its /readyz as the Ready condition, finalizes deletions. */
class TestKubelet {
  readonly nodes = new Map<string, SocketNodeHandle>();
  /** Leave new pods unbound (Pending), as a busy scheduler would. */
  holdBinding = false;
  /** Pods whose probe fails whatever the node says (a flapping readiness). */
  readonly forcedNotReady = new Set<string>();
  /** Pods whose socket node is stopped while the pod stays Ready (a node that lost its registry link). */
  readonly silenced = new Set<string>();
  private readonly reported = new Map<string, boolean>();
  private readonly busy = new Set<string>();
  private stopped = false;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly core: CoreV1Api,
    private readonly registry: Registry,
  ) {}

  start(): void {
    this.loop = (async () => {
      while (!this.stopped) {
        await this.sync().catch(() => undefined);
        await new Promise((r) => setTimeout(r, PROBE_MS));
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    await Promise.all([...this.nodes.values()].map((n) => n.close()));
  }

  private async sync(): Promise<void> {
    const pods = (await this.core.listNamespacedPod({ namespace: NS, labelSelector: 'app=socket' })).items;
    await Promise.all(pods.map((p) => this.syncPod(p)));
  }

  private async syncPod(p: V1Pod): Promise<void> {
    const name = p.metadata!.name!;
    if (this.busy.has(name)) return;
    this.busy.add(name);
    try {
      const node = this.nodes.get(name);
      if (p.metadata?.deletionTimestamp) {
        // preStop /drain and SIGTERM, then finalize with grace 0: the kubelet's part of a deletion.
        if (node) await node.close();
        this.nodes.delete(name);
        await this.core.deleteNamespacedPod({ name, namespace: NS, gracePeriodSeconds: 0 }).catch(() => undefined);
        return;
      }
      if (!p.spec?.nodeName) {
        if (!this.holdBinding) await this.core.createNamespacedPodBinding({ name, namespace: NS, body: { apiVersion: 'v1', kind: 'Binding', metadata: { name }, target: { apiVersion: 'v1', kind: 'Node', name: NODE } } });
        return;
      }
      const muted = this.silenced.has(name);
      if (node && muted) {
        await node.close();
        this.nodes.delete(name);
      } else if (!node && !muted) {
        const cfg = loadConfig({ POD_NAME: name, POD_IP: '127.0.0.1', SOCKET_PORT: '0', ADMIN_PORT: '0', HEARTBEAT_MS: '200', DRAIN_WINDOW_MS: '50', SOCKET_NOT_READY_MAX_MS: '20000' }, 'socket');
        this.nodes.set(name, await startSocketNode(cfg, { logger: silent, registry: this.registry, host: '127.0.0.1' }));
        return;
      }
      const ready = muted || (!this.forcedNotReady.has(name) && (await fetch(`http://127.0.0.1:${node!.adminPort}/readyz`)).status === 200);
      if (this.reported.get(name) === ready && p.status?.phase === 'Running') return;
      const now = new Date().toISOString();
      const body = {
        status: {
          phase: 'Running',
          podIP: '127.0.0.1',
          conditions: [{ type: 'PodScheduled', status: 'True', lastTransitionTime: now }, { type: 'Ready', status: ready ? 'True' : 'False', lastTransitionTime: now }],
          containerStatuses: [{ name: 'socket', ready, restartCount: 0, image: 'rtc-edge', imageID: '', started: true, state: { running: { startedAt: now } } }],
        },
      };
      await this.core.patchNamespacedPodStatus({ name, namespace: NS, body }, callOptions({ mergePatch: true }));
      this.reported.set(name, ready);
    } finally {
      this.busy.delete(name);
    }
  }
}

interface Round {
  loads: number[];
  special?: 'other-not-ready' | 'just-started' | 'race' | 'silent';
}

// At 10 connections per pod every total needs at least one pod fewer than the round has; loads are uneven on purpose.
const ROUNDS: Round[] = [
  { loads: [9, 2, 6] },
  { loads: [12, 6, 1, 9] },
  { loads: [9, 13, 4, 11, 2] },
  { loads: [7, 12, 3, 15, 9, 1] },
  { loads: [1, 11, 6], special: 'other-not-ready' },
  { loads: [8, 3, 16, 10], special: 'just-started' },
  { loads: [2, 19, 7, 6, 5], special: 'race' },
  { loads: [10, 4, 5] },
  { loads: [3, 14, 8, 1], special: 'race' },
  { loads: [11, 6, 12, 1, 9] },
  { loads: [5, 12, 2], special: 'other-not-ready' },
  { loads: [8, 2, 9, 7], special: 'silent' },
];

let plane: KubePlane;
let core: CoreV1Api;
let apps: AppsV1Api;

before(async () => {
  plane = await startKubePlane();
  core = plane.kubeConfig.makeApiClient(CoreV1Api);
  apps = plane.kubeConfig.makeApiClient(AppsV1Api);
  await core.createNamespace({ body: { metadata: { name: NS } } });
  await waitUntil('default ServiceAccount', () => core.readNamespacedServiceAccount({ name: 'default', namespace: NS }));
  await core.createNode({ body: { metadata: { name: NODE } } });
  await apps.createNamespacedDeployment({
    namespace: NS,
    body: { metadata: { name: 'socket' }, spec: { replicas: 3, selector: { matchLabels: LABELS }, template: { metadata: { labels: LABELS }, spec: { terminationGracePeriodSeconds: 30, containers: [{ name: 'socket', image: 'rtc-edge' }] } } } },
  });
});
after(() => plane?.close());

test('on the real control plane, over 12 rounds, the pod removed is the cordoned one in every round', { timeout: 600_000 }, (t) =>
  plane.explain(async () => {
    const registry = createMemoryRegistry();
    const kubelet = new TestKubelet(core, registry);
    kubelet.start();
    const table: string[] = [];
    try {
      for (const [i, round] of ROUNDS.entries()) {
        const n = round.loads.length;
        await apps.patchNamespacedDeploymentScale({ name: 'socket', namespace: NS, body: { spec: { replicas: n } } }, callOptions({ mergePatch: true }));
        const names = await waitUntil(`round ${i + 1}: ${n} pods serving`, async () => {
          const pods = (await core.listNamespacedPod({ namespace: NS, labelSelector: 'app=socket' })).items;
          const live = new Set((await registry.list()).map((r) => r.podId));
          const ok = pods.length === n && pods.every((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') && live.has(p.metadata!.name!));
          return ok ? pods.map((p) => p.metadata!.name!).sort() : undefined;
        });
        for (const name of names) await registry.uncordon(name); // each round starts unmarked
        const clients: WebSocket[] = [];
        names.forEach((name, k) => {
          for (let c = 0; c < round.loads[k]!; c++) clients.push(new WebSocket(`ws://127.0.0.1:${kubelet.nodes.get(name)!.port}/ws/connect`));
        });
        await waitUntil(`round ${i + 1}: loads in the registry`, async () => {
          const recs = new Map((await registry.list()).map((r) => [r.podId, r.connections]));
          return names.every((name, k) => recs.get(name) === round.loads[k]) ? true : undefined;
        });
        const leastLoaded = names[round.loads.indexOf(Math.min(...round.loads))]!;
        if (round.special === 'other-not-ready') kubelet.forcedNotReady.add(names[round.loads.indexOf(Math.max(...round.loads))]!);
        if (round.special === 'silent') {
          kubelet.silenced.add(leastLoaded);
          await waitUntil(`round ${i + 1}: ${leastLoaded} gone from the registry, still Ready`, async () => ((await registry.list()).some((r) => r.podId === leastLoaded) ? undefined : true));
        }

        const logs = captureLogs();
        const scaler: ScalerHandle = await startScaler(scalerTestConfig({ socketTargetConnections: 10, socketMinReplicas: 2, socketMaxReplicas: 10, scaleInStabilizationMs: 1000 }), {
          logger: logs.logger,
          registry,
          kubeConfig: plane.kubeConfig,
          admin: false,
          ...FAST,
          // A loaded real API server answers in seconds at times: the test Lease timings of the fake would flap.
          lease: { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 500 },
          retry: { baseMs: 100, maxMs: 1000, attempts: 6 },
          confirmTimeoutMs: 15_000,
          victimTimeoutMs: 20_000,
          retireTimeoutMs: 10_000,
          ...(round.special === 'race' ? { settleMs: 0 } : {}),
          // The silenced pod never heartbeated to this fresh scaler: no boot grace, or it would count as on the way.
          ...(round.special === 'silent' ? { bootGraceMs: 0 } : {}),
        });
        try {
          await waitUntil('the Lease', () => (scaler.isLeader() ? true : undefined), 10_000);
          let from = n;
          if (round.special === 'just-started') {
            // A pod is created and stays Pending: it would rank before any Running pod, so the scale-in must wait for it.
            kubelet.holdBinding = true;
            from = n + 1;
            await apps.patchNamespacedDeploymentScale({ name: 'socket', namespace: NS, body: { spec: { replicas: from } } }, callOptions({ mergePatch: true }));
            await waitUntil('the Pending pod', async () => ((await core.listNamespacedPod({ namespace: NS, labelSelector: 'app=socket' })).items.length === from ? true : undefined));
            for (let k = 0; k < 8; k++) {
              await scaler.tick();
              await new Promise((r) => setTimeout(r, 250));
            }
            assert.ok(logs.messages().some((m) => / would be removed before the cordoned pod/.test(m)), 'the scale-in waited for the Pending pod');
            assert.equal((await apps.readNamespacedDeploymentScale({ name: 'socket', namespace: NS })).spec?.replicas, from, 'no scale-in while a pod is Pending');
            kubelet.holdBinding = false;
          }
          const seen = new Set(names);
          const scaled = await waitUntil(`round ${i + 1}: scale-in ${from} → ${from - 1}`, async () => {
            for (const p of (await core.listNamespacedPod({ namespace: NS, labelSelector: 'app=socket' })).items) seen.add(p.metadata!.name!);
            await scaler.tick();
            const replicas = (await apps.readNamespacedDeploymentScale({ name: 'socket', namespace: NS })).spec?.replicas;
            return replicas === from - 1 ? true : undefined;
          }, 90_000).catch((err: Error) => {
            throw new Error(`${err.message}; last decision: ${scaler.lastDecision()?.message ?? 'none'}; log tail: ${logs.messages().slice(-8).join(' | ')}`);
          });
          assert.ok(scaled);
          const retired = logs.messages().filter((m) => m.startsWith('asked ')).pop() ?? '';
          const cordoned = logs.messages().filter((m) => m.startsWith('cordoned pod ')).pop() ?? '';
          // A pod without a live registry entry cannot hear a retire request: it goes by its lowest cost alone.
          const victim = round.special === 'silent' ? /^cordoned pod (\S+) /.exec(cordoned)?.[1] : /^asked (\S+) to report NotReady/.exec(retired)?.[1];
          assert.ok(victim, `the scaler picked a cordoned pod: ${round.special === 'silent' ? cordoned : retired}`);
          if (round.special === 'silent') assert.equal(retired, '', 'no retire request to a pod without a live entry');
          assert.ok(logs.messages().some((m) => m.startsWith(`cordoned pod ${victim} `)), 'the victim was cordoned first');
          const removed = await waitUntil(`round ${i + 1}: the controller's victim`, async () => {
            const pods = (await core.listNamespacedPod({ namespace: NS, labelSelector: 'app=socket' })).items;
            return pods.find((p) => p.metadata?.deletionTimestamp)?.metadata?.name ?? [...seen].find((nm) => !pods.some((p) => p.metadata?.name === nm));
          });
          await waitUntil('the victim check', async () => {
            await scaler.tick();
            return logs.messages().some((m) => m.startsWith(`scale-in removed pod ${removed} `)) ? true : undefined;
          });
          const verdict = logs.messages().find((m) => m.startsWith(`scale-in removed pod ${removed} `))!;
          table.push(`round ${String(i + 1).padStart(2)} ${`${from} pods`.padEnd(7)} ${(round.special ?? '').padEnd(15)} loads ${round.loads.join('/').padEnd(16)} least-loaded ${leastLoaded}  cordoned ${victim}  removed ${removed}  ${/as intended/.test(verdict) ? 'honoured' : 'NOT honoured'}`);
          assert.equal(removed, victim, `round ${i + 1}: the real controller removed ${removed}, the cordoned pod was ${victim}`);
          assert.match(verdict, /the cordoned pod, as intended$/);
          if (round.special !== 'just-started') assert.equal(victim, leastLoaded, `round ${i + 1}: the cordoned pod is the least-loaded`);
        } finally {
          await scaler.close();
          kubelet.forcedNotReady.clear();
          kubelet.silenced.clear();
          for (const c of clients) c.terminate();
        }
      }
      t.diagnostic(`\n${table.join('\n')}`);
    } finally {
      await kubelet.stop();
      await registry.close();
    }
  }),
);
