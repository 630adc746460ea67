/**
 * Scale-in rounds on a real control plane, data-driven: each round names the load of every socket pod
 * (oldest first); the runner brings the Deployment to that many pods, pins that many WebSocket clients to
 * each pod through the gateway, lets the scaler scale in by one, and records what the real ReplicaSet
 * controller removed next to what the scaler said about it.
 */
import http from 'node:http';
import { PatchStrategy, setHeaderOptions, type V1Pod } from '@kubernetes/client-node';
import type { Registry } from '../../../src/registry/registry.js';
import { podsToDelete } from '../../../scaler/ranking.js';
import { toWorkloadPod } from '../../../scaler/workload/kubernetes.js';
import { waitFor, type TestCluster } from './cluster.js';
import { Clients, NS, STABILIZATION_MS, TARGET, leaseHolder, liveRecords, podLog, socketPods, socketsLive, SCALERS, type LogLine } from './edge.js';

/** One round: connections per socket pod, oldest pod first. Their sum must make the scaler want one pod fewer. */
export interface Round {
  name: string;
  loads: number[];
}

/**
 * The rounds: 3–6 pods, uneven shapes, the least-loaded pod sometimes the oldest (the ReplicaSet's own
 * ranking would remove the newest), sometimes in the middle, one tie and one where it is the newest.
 * Each round's pod count is at most one below the previous round's (the scaler then only scales out).
 */
export const ROUNDS: Round[] = [
  { name: 'least-loaded is the oldest of 3', loads: [2, 9, 7] },
  { name: 'an idle pod among 4', loads: [8, 0, 9, 6] },
  { name: 'middle pod of 5', loads: [9, 9, 1, 9, 8] },
  { name: 'least-loaded is the newest of 6', loads: [9, 9, 8, 9, 9, 1] },
  { name: 'idle oldest of 5', loads: [0, 9, 9, 9, 9] },
  { name: 'second oldest of 4', loads: [9, 3, 9, 9] },
  { name: 'tie of two among 3', loads: [3, 9, 3] },
  { name: 'oldest of 4 with one connection', loads: [1, 9, 9, 9] },
  { name: 'second of 6', loads: [9, 2, 9, 9, 9, 8] },
  { name: 'fourth of 5', loads: [9, 9, 8, 0, 9] },
  { name: 'two busy, two light among 4', loads: [9, 2, 9, 4] },
];

/** What one round saw. */
export interface RoundRecord {
  round: string;
  pods: number;
  /** Pod name → connections at the decision. */
  loads: Record<string, number>;
  /** The pods with the fewest connections (ties: all of them). */
  leastLoaded: string[];
  /** The pod the real controller removed. */
  removed: string;
  /** The removed pod is one of the least-loaded. */
  expected: boolean;
  /** The scaler's verdict (its log line and its honored metric). */
  scalerHonored: boolean | undefined;
  metricHonored: boolean | undefined;
  /** scaler/ranking.ts (the `local` workload) applied to the same pods picks this one. */
  rankingPick: string;
  /** From the scaler's "Scaling Deployment" line to the victim's "drain started". */
  decisionToDrainMs: number;
  /** Writes of the scaler's ServiceAccount for this scale-in (cost patches + scale), from the audit log. */
  apiWrites: number;
  /** Deletion-cost patches among them. */
  costWrites: number;
  /** From the scaler's cost writes to its scale call: the wait for its pod watch to show them. */
  confirmMs: number | undefined;
}

/** Everything a round runner needs. */
export interface RoundContext {
  c: TestCluster;
  registry: Registry;
  clients: Clients;
  /** The Deployment's name. */
  deployment: string;
}

const name = (p: V1Pod) => p.metadata!.name!;
/** SCALER_INTERVAL_MS of FAST_VALUES. */
const SCALER_TICK_MS = 500;
/** Filler load for `n` pods: mid-band, so SWAP_BATCH unreported swaps either way keep the scaler at `n`. */
const FILLER = (n: number) => TARGET * (n - 1) + 5;
/** Swaps (close one filler, pin one shape connection) between two registry syncs. */
const SWAP_BATCH = 4;

/**
 * Replace filler connections by the shape in batches, each batch seen by the registry before the next, so
 * the total never leaves (TARGET·(n−1), TARGET·n] whatever order the pods heartbeat in: the scaler neither
 * scales nor cordons meanwhile (a cordon would fix its pick early). Filler leaves the lightest pods first;
 * what is left sits on the heaviest, so when it goes at once the first tick that wants one pod fewer sees
 * the least-loaded pod at its final count.
 */
async function applyShape(ctx: RoundContext, names: readonly string[], loads: readonly number[]): Promise<Record<string, number>> {
  const byPod: Record<string, number> = Object.fromEntries(names.map((p, i) => [p, loads[i]!]));
  const order = [...names].sort((a, b) => byPod[a]! - byPod[b]!);
  const filler = order.flatMap((p) => ctx.clients.pinnedByPod('filler', p));
  const pins = names.flatMap((p) => Array<string>(byPod[p]!).fill(p));
  const synced = async () => {
    const want = new Map(names.map((p) => [p, ctx.clients.on(p)]));
    await waitFor('the registry to catch up', async () => {
      const live = await liveRecords(ctx.registry);
      return names.every((p) => live.get(p)?.connections === want.get(p));
    }, STABILIZATION_MS, 50);
  };
  for (let i = 0; i < pins.length; i += SWAP_BATCH) {
    const batch = pins.slice(i, i + SWAP_BATCH);
    await ctx.clients.closeOne(filler, batch.length);
    for (const p of batch) await ctx.clients.pin(p, 1, 'shape');
    await synced();
  }
  await ctx.clients.closeOne(filler, Infinity);
  await waitFor('the registry to show the shape', async () => {
    const live = await liveRecords(ctx.registry);
    return names.every((p) => live.get(p)?.connections === byPod[p]);
  }, STABILIZATION_MS, 50);
  return byPod;
}
const MERGE_PATCH = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/** GET a pod's /metrics through its admin port and read one counter sample. */
async function metric(c: TestCluster, pod: string, sample: string): Promise<number> {
  const text = await new Promise<string>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: c.kubelet.port(pod, 'admin'), path: '/metrics' }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
  const [name, labels] = sample.split('{') as [string, string];
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels.replace(/}$/, '')));
  return line ? Number(line.split(' ').pop()) : 0;
}

const HONORED = 'rtc_scaler_scale_in_victims_total{honored="true"}';
const NOT_HONORED = 'rtc_scaler_scale_in_victims_total{honored="false"}';

/**
 * Bring the Deployment to `count` live pods: filler load that needs `count` pods makes the scaler scale
 * out (or hold), and restarts its stabilization window, so the round's shape has the whole window.
 */
async function reachPods(ctx: RoundContext, count: number): Promise<V1Pod[]> {
  await ctx.clients.assign(FILLER(count));
  const pods = await socketsLive(ctx.c, ctx.registry, count);
  await waitFor('the scaler to see the filler', async () => (await liveRecords(ctx.registry)).size === count && [...(await liveRecords(ctx.registry)).values()].reduce((s, r) => s + r.connections, 0) > TARGET * (count - 1), 10_000, 100);
  await new Promise((r) => setTimeout(r, SCALER_TICK_MS * 2));
  return pods;
}

/** The pod the real controller marked for deletion among `before`, and the pods as they were at that moment. */
async function removedAmong(ctx: RoundContext, before: readonly string[]): Promise<{ victim: V1Pod; pods: V1Pod[] }> {
  // A victim without connections drains in milliseconds, and the process kubelet finalizes it right after: it can
  // be marked and gone between two polls. Each pod's last version seen stands in for it then (the scaler's cost
  // annotations are written before its scale call, so the last version carries them).
  const lastSeen = new Map<string, V1Pod>();
  return waitFor('the ReplicaSet controller to remove a pod', async () => {
    const all = await ctx.c.pods(NS, 'app.kubernetes.io/component=socket', true);
    const gone = before.filter((n) => !all.some((p) => name(p) === n && !p.metadata?.deletionTimestamp));
    if (gone.length > 1) throw new Error(`more than one pod removed: ${gone.join(', ')}`);
    const known = before.map((n) => all.find((p) => name(p) === n) ?? lastSeen.get(n)).filter((p): p is V1Pod => p !== undefined);
    for (const p of known) lastSeen.set(name(p), p);
    const victim = known.find((p) => name(p) === gone[0]);
    return victim ? { victim, pods: known } : undefined;
  }, STABILIZATION_MS * 6, 50);
}

/** The leader's log line about `victim`, after the scale-in. */
async function scalerVerdict(ctx: RoundContext, leader: string, victim: string): Promise<LogLine | undefined> {
  return waitFor(`the scaler's verdict on ${victim}`, () => podLog(ctx.c, leader).find((l) => l.msg.startsWith(`scale-in removed pod ${victim} `)), 20_000).catch(() => undefined);
}

/** Run one round; `shape` may be swapped (the race round writes costs itself). */
export async function runRound(ctx: RoundContext, round: Round): Promise<RoundRecord> {
  const { c, clients } = ctx;
  const n = round.loads.length;
  const pods = await reachPods(ctx, n);
  const leader = await waitFor('a scaler leader', () => leaseHolder(c));
  const honoredBefore = await metric(c, leader, HONORED);
  const notHonoredBefore = await metric(c, leader, NOT_HONORED);
  const since = new Date().toISOString();
  const logFrom = podLog(c, leader).length;

  const names = pods.map(name);
  const loads = await applyShape(ctx, names, round.loads);

  const seen = await removedAmong(ctx, names);
  const removed = name(seen.victim);
  // The pods as the controller ranked them (the annotations the scaler wrote), the victim's deletion undone.
  const rankable = seen.pods.map((p) => toWorkloadPod({ ...p, metadata: { ...p.metadata, deletionTimestamp: undefined } }));
  const rankingPick = podsToDelete(rankable, 1, { now: Date.now() })[0]?.name ?? '';
  const min = Math.min(...Object.values(loads));
  const leastLoaded = names.filter((p) => loads[p] === min);

  const verdict = await scalerVerdict(ctx, leader, removed);
  const honoredAfter = await metric(c, leader, HONORED);
  const notHonoredAfter = await metric(c, leader, NOT_HONORED);
  const metricHonored = honoredAfter > honoredBefore ? true : notHonoredAfter > notHonoredBefore ? false : undefined;
  const fresh = podLog(c, leader).slice(logFrom);
  const scaling = fresh.find((l) => l.msg === `Scaling Deployment ${ctx.deployment} from ${n} to ${n - 1} replicas`);
  const wrote = fresh.find((l) => l.msg.startsWith('wrote pod-deletion-cost'));
  const drain = await waitFor(`${removed} to start draining`, () => podLog(c, removed).find((l) => l.msg === 'drain started'), 20_000);
  const writes = c.plane.audit().filter((e) => e.stage === 'ResponseComplete' && e.requestReceivedTimestamp >= since && e.user.username === `system:serviceaccount:${NS}:rtc-edge-scaler` && ['create', 'update', 'patch', 'delete'].includes(e.verb) && e.objectRef?.resource !== 'leases');
  await waitFor(`${removed} to be gone`, async () => !(await ctx.c.pods(NS, 'app.kubernetes.io/component=socket', true)).some((p) => name(p) === removed), 60_000, 200);

  return {
    round: round.name,
    pods: n,
    loads,
    leastLoaded,
    removed,
    expected: leastLoaded.includes(removed),
    scalerHonored: verdict ? Boolean(verdict.honored) : undefined,
    metricHonored,
    rankingPick,
    decisionToDrainMs: scaling ? drain.time - scaling.time : NaN,
    apiWrites: writes.length,
    costWrites: writes.filter((e) => e.objectRef?.resource === 'pods').length,
    confirmMs: wrote && scaling ? scaling.time - wrote.time : undefined,
  };
}

/** What the naive sequence (cost patches and the scale call at the same moment, no wait) got from the controller. */
export interface RaceRecord {
  pods: number;
  loads: Record<string, number>;
  leastLoaded: string[];
  removed: string;
  expected: boolean;
  /** The cost patches' answers came this long after the scale call went out (negative: before). */
  costAnsweredAfterScaleMs: number;
}

/**
 * The race users report: pod-deletion-cost written just before the scale call, without waiting for it to
 * reach the ReplicaSet controller's cache. The test plays that naive client as admin: with a load the
 * scaler holds steady at `loads.length` pods, it writes the costs and scales down by one in the same
 * instant, then records what the real controller removed. The scaler restores the count afterwards.
 */
export async function runNaiveRace(ctx: RoundContext, loads: number[]): Promise<RaceRecord> {
  const { c, clients } = ctx;
  const n = loads.length;
  const pods = await reachPods(ctx, n);
  const names = pods.map(name);
  const byPod = await applyShape(ctx, names, loads);
  const body = (cost: number) => ({ metadata: { annotations: { 'controller.kubernetes.io/pod-deletion-cost': String(cost) } } });
  const scaleAt = Date.now();
  const scale = c.apps.patchNamespacedDeploymentScale({ name: ctx.deployment, namespace: NS, body: { spec: { replicas: n - 1 } } }, MERGE_PATCH);
  const costs = Promise.all(names.map((p) => c.core.patchNamespacedPod({ name: p, namespace: NS, body: body(byPod[p]!) }, MERGE_PATCH)));
  const [, costAt] = await Promise.all([scale, costs.then(() => Date.now())]);
  const victim = name((await removedAmong(ctx, names)).victim);
  const min = Math.min(...Object.values(byPod));
  const leastLoaded = names.filter((p) => byPod[p] === min);
  await waitFor(`${victim} to be gone`, async () => !(await c.pods(NS, 'app.kubernetes.io/component=socket', true)).some((p) => name(p) === victim), 60_000, 200);
  return { pods: n, loads: byPod, leastLoaded, removed: victim, expected: leastLoaded.includes(victim), costAnsweredAfterScaleMs: costAt - scaleAt };
}

/** The scaler pods, for logs and metrics. */
export async function scalerPods(c: TestCluster): Promise<string[]> {
  return (await c.pods(NS, SCALERS)).map(name);
}
