/**
 * The rtc-edge release on a test cluster: install the chart with test-speed values, find the leading
 * scaler, read pod logs as JSON lines, read the registry through the bundled Redis, and hold WebSocket
 * clients pinned to socket pods through the gateway.
 */
import { CoordinationV1Api, type V1Pod } from '@kubernetes/client-node';
import WebSocket from 'ws';
import { createRedisRegistry } from '../../../src/registry/index.js';
import type { PodRecord, Registry } from '../../../src/registry/registry.js';
import { CHART, isReady, waitFor, type TestCluster } from './cluster.js';

export const NS = 'rtc';
export const RELEASE = 'rtc-edge';
export const SOCKETS = 'app.kubernetes.io/component=socket';
export const SCALERS = 'app.kubernetes.io/component=scaler';
export const GATEWAYS = 'app.kubernetes.io/component=gateway';

/** Connections per pod the scaler aims for in these tests (desired = ceil(total / TARGET)). */
export const TARGET = 10;
/** The scaler's stabilization window in these tests. */
export const STABILIZATION_MS = 4000;

/** Values that make a release react in seconds instead of minutes (same chart, same templates). */
export const FAST_VALUES: string[] = [
  'gateway.replicaCount=1',
  'gateway.preStopSleepSeconds=0',
  'config.SCALER_INTERVAL_MS=500',
  `config.SCALE_IN_STABILIZATION_MS=${STABILIZATION_MS}`,
  `config.SOCKET_TARGET_CONNECTIONS=${TARGET}`,
  'config.SOCKET_MIN_REPLICAS=2',
  'config.SOCKET_MAX_REPLICAS=8',
  'config.HEARTBEAT_MS=500',
  'config.DRAIN_WINDOW_MS=500',
  'config.DRAIN_TIMEOUT_MS=5000',
  'config.SOCKET_IDLE_TIMEOUT_S=0',
  'socket.terminationGracePeriodSeconds=35',
  'socket.readinessProbe.periodSeconds=1',
  'tests.enabled=false',
];

/** `helm install` the chart into `rtc` with values files, FAST_VALUES and `extra` (`key=value`, last wins), and wait. */
export async function installEdge(c: TestCluster, extra: string[] = [], files: string[] = []): Promise<void> {
  const sets = [...FAST_VALUES, ...extra].flatMap((s) => ['--set', s]);
  const r = await c.helm(['install', RELEASE, CHART, '-n', NS, '--create-namespace', '--wait', '--timeout', '3m', ...files.flatMap((f) => ['-f', f]), ...sets]);
  if (r.status !== 0) throw new Error(`helm install failed:\n${r.stderr}`);
}

/** A pino line of a pod's log (`time` in ms since the epoch). */
export type LogLine = Record<string, unknown> & { msg: string; time: number; level: number };

/** The JSON lines a pod printed (other lines skipped). */
export function podLog(c: TestCluster, pod: string): LogLine[] {
  const out: LogLine[] = [];
  for (const l of c.kubelet.logs(pod)) {
    if (!l.startsWith('{')) continue;
    try {
      const line = JSON.parse(l) as LogLine;
      const time = line.time as number | string;
      out.push({ ...line, time: typeof time === 'string' ? Date.parse(time) : time });
    } catch {
      // a partial line
    }
  }
  return out;
}

/** Holder of the scaler Lease, undefined while nobody holds it. */
export async function leaseHolder(c: TestCluster, lease = `${RELEASE}-scaler`): Promise<string | undefined> {
  const api = c.plane.kubeConfig.makeApiClient(CoordinationV1Api);
  const l = await api.readNamespacedLease({ name: lease, namespace: NS }).catch(() => undefined);
  return l?.spec?.holderIdentity || undefined;
}

/** Active socket pods, oldest first (creation time, then name). */
export async function socketPods(c: TestCluster): Promise<V1Pod[]> {
  const pods = await c.pods(NS, SOCKETS);
  return pods.sort((a, b) => +new Date(a.metadata!.creationTimestamp!) - +new Date(b.metadata!.creationTimestamp!) || a.metadata!.name!.localeCompare(b.metadata!.name!));
}

/** The registry the release's pods heartbeat to, read through the bundled Redis pod's loopback port. */
export async function releaseRegistry(c: TestCluster): Promise<Registry> {
  const [redis] = await c.pods(NS, 'app.kubernetes.io/component=redis');
  if (!redis) throw new Error('no bundled Redis pod');
  // The bundled Redis requires the password the chart keeps in a Secret (REDIS_PASSWORD of the Redis pod).
  const ref = redis.spec!.containers[0]!.env?.find((e) => e.name === 'REDIS_PASSWORD')?.valueFrom?.secretKeyRef;
  const secret = ref ? await c.core.readNamespacedSecret({ name: ref.name!, namespace: NS }) : undefined;
  const password = ref && secret?.data?.[ref.key] ? Buffer.from(secret.data[ref.key]!, 'base64').toString('utf8') : '';
  const auth = password ? `:${encodeURIComponent(password)}@` : '';
  const registry = createRedisRegistry({ url: `redis://${auth}127.0.0.1:${c.kubelet.port(redis.metadata!.name!, 'redis')}`, prefix: 'rtc:' });
  await waitFor('registry ready', () => registry.status() === 'ready', 10_000);
  return registry;
}

/** Live registry records by pod id. */
export async function liveRecords(registry: Registry): Promise<Map<string, PodRecord>> {
  return new Map((await registry.list()).map((r) => [r.podId, r]));
}

/** Wait until `count` socket pods are Ready and heartbeating; returns them oldest first. */
export async function socketsLive(c: TestCluster, registry: Registry, count: number, timeoutMs = 90_000): Promise<V1Pod[]> {
  return waitFor(`${count} Ready, heartbeating socket pods`, async () => {
    const pods = await socketPods(c);
    if (pods.length !== count || !pods.every(isReady)) return undefined;
    const live = await liveRecords(registry);
    return pods.every((p) => live.has(p.metadata!.name!) && !live.get(p.metadata!.name!)!.draining) ? pods : undefined;
  }, timeoutMs, 200);
}

/** WebSocket clients through the gateway, pinned to socket pods. */
export class Clients {
  private readonly open = new Set<WebSocket>();
  private readonly byPod = new Map<string, Set<WebSocket>>();
  private readonly closed = new Map<string, number[]>();

  constructor(private readonly gatewayPort: () => number) {}

  private readonly tags = new Map<WebSocket, string>();

  /** Open `n` connections pinned to `podId` (each waits for the pod's welcome); `tag` names their purpose. */
  async pin(podId: string, n: number, tag = 'filler'): Promise<void> {
    const set = this.byPod.get(podId) ?? new Set<WebSocket>();
    this.byPod.set(podId, set);
    await Promise.all(Array.from({ length: n }, () => new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${this.gatewayPort()}/ws/${podId}/connect`);
      const fail = (err: Error) => reject(new Error(`pinned connect to ${podId}: ${err.message}`));
      ws.once('error', fail);
      ws.once('unexpected-response', (_req, res) => fail(new Error(`HTTP ${res.statusCode}`)));
      ws.once('message', () => {
        ws.off('error', fail);
        ws.on('error', () => undefined);
        this.open.add(ws);
        this.tags.set(ws, tag);
        set.add(ws);
        resolve();
      });
      ws.once('close', (code) => {
        this.tags.delete(ws);
        if (this.open.delete(ws)) this.closed.set(podId, [...(this.closed.get(podId) ?? []), code]);
        set.delete(ws);
      });
    })));
  }

  /** `GET /ws/assign` then connect: where the gateway puts a new client. */
  async assign(n: number): Promise<string[]> {
    const pods: string[] = [];
    for (let i = 0; i < n; i++) {
      const res = await fetch(`http://127.0.0.1:${this.gatewayPort()}/ws/assign`);
      if (res.status !== 200) throw new Error(`GET /ws/assign: ${res.status} ${await res.text()}`);
      const { podId } = (await res.json()) as { podId: string };
      await this.pin(podId, 1);
      pods.push(podId);
    }
    return pods;
  }

  /** The open connections tagged `tag` (on `podId` if given): a snapshot to close from. */
  pinnedByPod(tag = 'filler', podId?: string): WebSocket[] {
    const pool = podId ? [...(this.byPod.get(podId) ?? [])] : [...this.open];
    return pool.filter((ws) => this.tags.get(ws) === tag);
  }

  /** Close `n` (default 1) connections of `pool`, removing them from it. */
  async closeOne(pool: WebSocket[], n = 1): Promise<void> {
    await Promise.all(pool.splice(0, n).map((ws) => new Promise<void>((resolve) => {
      ws.once('close', () => resolve());
      ws.close(1000);
      setTimeout(() => (ws.terminate(), resolve()), 2000).unref();
    })));
  }

  /** Open connections on `podId` now. */
  on(podId: string): number {
    return this.byPod.get(podId)?.size ?? 0;
  }

  /** Close codes of the connections to `podId` that ended (the server's or ours). */
  closeCodes(podId: string): number[] {
    return this.closed.get(podId) ?? [];
  }

  get size(): number {
    return this.open.size;
  }

  /** Close `n` connections of `podId` (all when n is omitted). */
  async close(podId?: string, n = Infinity): Promise<void> {
    const pool = podId ? [...(this.byPod.get(podId) ?? [])] : [...this.open];
    await Promise.all(pool.slice(0, n).map((ws) => new Promise<void>((resolve) => {
      ws.once('close', () => resolve());
      ws.close(1000);
      setTimeout(() => (ws.terminate(), resolve()), 2000).unref();
    })));
  }
}
