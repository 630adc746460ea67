/**
 * `npm run bench:scaler`: replay connection traces (ramp, churn, a daily curve, flash crowds) through the
 * real policy (scaler/policy.ts), the gateway's real assignment (gateway/assign.ts) and the ReplicaSet
 * ranking (scaler/ranking.ts), and count the connections each scale-in strategy disrupts:
 *   rtc-edge     deletion cost = the registry's connection count, written just before the scale-down
 *   statefulset  the highest ordinal goes (StatefulSets ignore deletion costs)
 *   deployment   a Deployment without deletion costs (the default ranking: most recently ready first)
 *   optimum      the truly least-loaded pods at the moment of deletion
 * Every strategy sees the same arrivals, lifetimes and policy decisions (the total is the same, because a
 * disrupted client reconnects), so only the choice of victim differs. Also counts Kubernetes API writes
 * per scale-in against writing the annotation continuously. Deterministic (seeded), prints a table and
 * writes artifacts/bench-scaler.json.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createAssigner } from '../gateway/assign.js';
import type { PodRecord } from '../src/registry/registry.js';
import { decide, initialPolicyState, type PolicyConfig } from '../scaler/policy.js';
import { podsToDelete, type RankablePod } from '../scaler/ranking.js';
import { mulberry32 } from '../test/support/random.js';

const SEED = 20_260_101;
const TICK_S = 1;
const SCALER_INTERVAL_S = 5;
const HEARTBEAT_S = 2;
/** Seconds from scale-out to a Ready pod that takes connections. */
const BOOT_S = 15;
/** Seconds between writing the costs and the ReplicaSet deleting the victim (API round trips, watch). */
const SCALE_LATENCY_S = 1;
const TARGET_RATIO = 1.05;
const POLICY: PolicyConfig = { minReplicas: 2, maxReplicas: 50, targetConnections: 1000, scaleInStabilizationMs: 300_000, scaleInMaxStep: 1 };

const expSample = (r: () => number, mean: number) => -Math.log(1 - r()) * mean;

interface Trace {
  name: string;
  description: string;
  seconds: number;
  /** Target concurrency at second t. */
  curve: (t: number, r: () => number) => number;
  /** A connection's lifetime in seconds. */
  lifetime: (r: () => number) => number;
}

const MIN = 60;
const HOUR = 3600;
const mix = (shortS: number, longS: number, longShare: number) => (r: () => number) => Math.max(1, expSample(r, r() < longShare ? longS : shortS));

const TRACES: Trace[] = [
  {
    name: 'ramp',
    description: '1k → 30k over 30 min, hold, → 2k over 30 min, hold (2 h); lifetimes 70% ~2 min, 30% ~30 min',
    seconds: 2 * HOUR,
    curve: (t) => (t < 30 * MIN ? 1000 + (29_000 * t) / (30 * MIN) : t < 60 * MIN ? 30_000 : t < 90 * MIN ? 30_000 - (28_000 * (t - 60 * MIN)) / (30 * MIN) : 2000),
    lifetime: mix(2 * MIN, 30 * MIN, 0.3),
  },
  {
    name: 'churn',
    description: '~12k ± 20% random walk, every connection lives ~60 s (2 h)',
    seconds: 2 * HOUR,
    curve: (() => {
      let level = 12_000;
      let at = -1;
      return (t: number, r: () => number) => {
        if (t !== at) {
          at = t;
          level = Math.min(14_400, Math.max(9_600, level + (r() - 0.5) * 120));
        }
        return level;
      };
    })(),
    lifetime: (r) => Math.max(1, expSample(r, 60)),
  },
  {
    name: 'daily',
    description: '24 h curve: 3k at 04:00, 40k at 20:00, ±3% noise; lifetimes 60% ~5 min, 40% ~60 min',
    seconds: 24 * HOUR,
    curve: (t, r) => {
      const phase = (2 * Math.PI * (t - 4 * HOUR)) / (24 * HOUR) - Math.PI / 2;
      const shape = Math.pow((1 + Math.sin(phase)) / 2, 1.3);
      return (3000 + 37_000 * shape) * (1 + (r() - 0.5) * 0.06);
    },
    lifetime: mix(5 * MIN, 60 * MIN, 0.4),
  },
  {
    name: 'flash',
    description: '5k base, two flash crowds of +20k in 2 min decaying over ~15 min (3 h); lifetimes 80% ~3 min, 20% ~40 min',
    seconds: 3 * HOUR,
    curve: (t) => {
      let c = 5000;
      for (const start of [30 * MIN, 110 * MIN]) {
        if (t >= start) c += 20_000 * Math.min(1, (t - start) / (2 * MIN)) * Math.exp(-Math.max(0, t - start - 2 * MIN) / (15 * MIN));
      }
      return c;
    },
    lifetime: mix(3 * MIN, 40 * MIN, 0.2),
  },
];

/** Arrivals and departures, identical for every strategy. */
interface Schedule {
  seconds: number;
  count: number;
  /** Connection ids arriving at second t: arrivals[arrStart[t] .. arrStart[t+1]). */
  arrStart: Int32Array;
  arrivals: Int32Array;
  depStart: Int32Array;
  departures: Int32Array;
}

function buildSchedule(trace: Trace, seed: number): Schedule {
  const r = mulberry32(seed);
  const ends: number[] = [];
  const arrivalsAt: number[] = [];
  const endsAt = new Map<number, number>();
  let active = 0;
  for (let t = 0; t < trace.seconds; t += TICK_S) {
    active -= endsAt.get(t) ?? 0;
    endsAt.delete(t);
    // Steer toward the curve: new clients fill the gap (connections are never cut to follow it down).
    const want = trace.curve(t, r);
    const n = Math.max(0, Math.round(want - active));
    for (let i = 0; i < n; i++) {
      const end = t + Math.max(TICK_S, Math.round(trace.lifetime(r)));
      arrivalsAt.push(t);
      ends.push(end);
      if (end < trace.seconds) endsAt.set(end, (endsAt.get(end) ?? 0) + 1);
    }
    active += n;
  }
  const count = ends.length;
  const bucket = (times: number[], filter: (i: number) => boolean) => {
    const start = new Int32Array(trace.seconds + 1);
    for (let i = 0; i < count; i++) if (filter(i) && times[i]! < trace.seconds) start[times[i]! + 1]!++;
    for (let t = 0; t < trace.seconds; t++) start[t + 1]! += start[t]!;
    const ids = new Int32Array(start[trace.seconds]!);
    const fill = start.slice();
    for (let i = 0; i < count; i++) if (filter(i) && times[i]! < trace.seconds) ids[fill[times[i]!]!++] = i;
    return { start, ids };
  };
  const a = bucket(arrivalsAt, () => true);
  const d = bucket(ends, () => true);
  return { seconds: trace.seconds, count, arrStart: a.start, arrivals: a.ids, depStart: d.start, departures: d.ids };
}

type Strategy = 'rtc-edge' | 'statefulset' | 'deployment' | 'optimum';
const STRATEGIES: Strategy[] = ['rtc-edge', 'statefulset', 'deployment', 'optimum'];

interface SimPod {
  ordinal: number;
  uid: string;
  createdAt: number;
  readyAt: number;
  count: number;
  record: PodRecord;
  /** Deletion-cost annotation as last written (rtc-edge), undefined = never. */
  annotation: number | undefined;
  /** Last count written by the continuous-annotation baseline. */
  continuous: number | undefined;
}

interface SimResult {
  disrupted: number;
  scaleIns: number;
  scaleOuts: number;
  victims: number;
  costWrites: number;
  scaleWrites: number;
  continuousWrites: number;
  podSeconds: number;
  peakPods: number;
  /** Fingerprint of the policy decisions (identical across strategies). */
  decisions: string;
}

/** How new and reconnecting clients pick a pod: the gateway's /ws/assign, or uniformly at random (no balancing). */
type Assignment = 'least-loaded' | 'random';

function simulate(s: Schedule, strategy: Strategy, seed: number, assignment: Assignment): SimResult {
  const r = mulberry32(seed);
  const assigner = createAssigner({ random: r });
  const pods: SimPod[] = [];
  let nextOrdinal = 0;
  const connPod = new Int32Array(s.count).fill(-1);
  const byOrdinal = new Map<number, SimPod>();
  const res: SimResult = { disrupted: 0, scaleIns: 0, scaleOuts: 0, victims: 0, costWrites: 0, scaleWrites: 0, continuousWrites: 0, podSeconds: 0, peakPods: 0, decisions: '' };
  let spec = POLICY.minReplicas;
  let state = initialPolicyState();
  let pendingVictims: { at: number; k: number; costs: Map<number, number> | undefined } | undefined;
  let decisionHash = 0;

  // Ready pods as registry records, recomputed when pods change or become ready.
  let readyRecords: PodRecord[] = [];
  const byRecord = new Map<PodRecord, SimPod>();
  let readyAt = -1;
  const refresh = (t: number) => {
    readyRecords = pods.filter((p) => p.readyAt <= t).map((p) => p.record);
    readyAt = t;
  };
  const assign = (c: number, t: number) => {
    if (readyAt !== t) refresh(t);
    const chosen = assignment === 'random' ? readyRecords[Math.floor(r() * readyRecords.length)] : assigner.pick(readyRecords);
    const pod = chosen ? byRecord.get(chosen)! : pods[0]!;
    connPod[c] = pod.ordinal;
    pod.count++;
  };
  const addPod = (t: number) => {
    const ordinal = nextOrdinal++;
    const pod: SimPod = {
      ordinal,
      uid: Math.floor(r() * 1e12).toString(36).padStart(8, '0'),
      createdAt: t,
      readyAt: t + BOOT_S,
      count: 0,
      record: { podId: `socket-${ordinal}`, ip: '10.0.0.1', port: 8080, connections: 0, draining: false, startedAt: t * 1000, updatedAt: 0, heartbeatMs: HEARTBEAT_S * 1000 },
      annotation: undefined,
      continuous: undefined,
    };
    pods.push(pod);
    byOrdinal.set(ordinal, pod);
    byRecord.set(pod.record, pod);
    readyAt = -1;
  };
  for (let i = 0; i < spec; i++) addPod(-BOOT_S);

  const rankable = (p: SimPod, cost: number, t: number): RankablePod & { pod: SimPod } => ({
    pod: p,
    name: p.record.podId,
    uid: p.uid,
    assigned: true,
    phase: p.readyAt <= t ? 'Running' : 'Pending',
    ready: p.readyAt <= t,
    readySince: p.readyAt * 1000,
    deletionCost: cost,
    restarts: 0,
    createdAt: p.createdAt * 1000,
  });

  const remove = (victims: SimPod[], t: number) => {
    const gone = new Set(victims.map((v) => v.ordinal));
    for (const v of victims) res.disrupted += v.count;
    res.victims += victims.length;
    for (let i = pods.length - 1; i >= 0; i--) if (gone.has(pods[i]!.ordinal)) pods.splice(i, 1);
    for (const v of victims) {
      byOrdinal.delete(v.ordinal);
      byRecord.delete(v.record);
    }
    readyAt = -1;
    // The drained clients reconnect through /ws/assign to the remaining pods.
    for (let c = 0; c < s.count; c++) {
      if (gone.has(connPod[c]!)) assign(c, t);
    }
  };

  for (let t = 0; t < s.seconds; t += TICK_S) {
    readyAt = -1;
    for (let i = s.depStart[t]!; i < s.depStart[t + 1]!; i++) {
      const c = s.departures[i]!;
      const pod = byOrdinal.get(connPod[c]!);
      if (pod) pod.count--;
      connPod[c] = -1;
    }
    for (let i = s.arrStart[t]!; i < s.arrStart[t + 1]!; i++) assign(s.arrivals[i]!, t);

    if (pendingVictims && t >= pendingVictims.at) {
      const k = pendingVictims.k;
      let victims: SimPod[];
      if (strategy === 'statefulset') victims = [...pods].sort((a, b) => b.ordinal - a.ordinal).slice(0, k);
      else if (strategy === 'optimum') victims = [...pods].sort((a, b) => a.count - b.count || a.ordinal - b.ordinal).slice(0, k);
      else {
        const costs = pendingVictims.costs;
        victims = podsToDelete(pods.map((p) => rankable(p, costs?.get(p.ordinal) ?? 0, t)), k, { now: t * 1000 }).map((x) => x.pod);
      }
      remove(victims, t);
      pendingVictims = undefined;
    }

    if (t % HEARTBEAT_S === 0) {
      for (const p of pods) {
        if (p.readyAt > t) continue;
        p.record.connections = p.count;
        p.record.updatedAt = t * 1000;
        if (p.continuous !== p.count) {
          res.continuousWrites++;
          p.continuous = p.count;
        }
      }
    }

    if (t % SCALER_INTERVAL_S === 0) {
      const live = pods.filter((p) => p.readyAt <= t && p.record.updatedAt > 0);
      const booting = pods.length - live.length;
      const total = live.reduce((sum, p) => sum + p.record.connections, 0);
      const d = decide(
        { now: t * 1000, currentReplicas: spec, registry: 'ok', totalConnections: total, pods: { live: live.length, booting, unreported: 0, dead: 0, drained: 0, draining: pendingVictims ? 1 : 0 }, rolloutInProgress: false },
        POLICY,
        state,
      );
      state = d.state;
      if (d.action === 'scale-out') {
        for (let i = spec; i < d.replicas; i++) addPod(t);
        spec = d.replicas;
        res.scaleOuts++;
        res.scaleWrites++;
        decisionHash = (decisionHash * 31 + t * 7 + d.replicas) % 1_000_000_007;
      } else if (d.action === 'scale-in') {
        const k = spec - d.replicas;
        let costs: Map<number, number> | undefined;
        if (strategy === 'rtc-edge') {
          costs = new Map();
          for (const p of pods) {
            const cost = p.record.connections;
            costs.set(p.ordinal, cost);
            if (p.annotation !== cost) {
              res.costWrites++;
              p.annotation = cost;
            }
          }
        }
        pendingVictims = { at: t + SCALE_LATENCY_S, k, costs };
        spec = d.replicas;
        res.scaleIns++;
        res.scaleWrites++;
        decisionHash = (decisionHash * 31 + t * 13 + d.replicas) % 1_000_000_007;
      }
    }
    res.podSeconds += pods.length * TICK_S;
    res.peakPods = Math.max(res.peakPods, pods.length);
  }
  res.decisions = String(decisionHash);
  return res;
}

interface TraceReport {
  trace: string;
  assignment: Assignment;
  description: string;
  connections: number;
  scaleIns: number;
  scaleOuts: number;
  peakPods: number;
  podHours: number;
  disrupted: Record<Strategy, number>;
  ratioToOptimum: Record<Strategy, number>;
  disruptedPerScaleIn: Record<Strategy, number>;
  apiWrites: { rtcEdgeCostWrites: number; scaleWrites: number; perScaleIn: number; continuousCostWrites: number; continuousPerScaleIn: number };
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const reports: TraceReport[] = [];
  const runs: Array<{ trace: Trace; i: number; assignment: Assignment }> = [
    ...TRACES.map((trace, i) => ({ trace, i, assignment: 'least-loaded' as const })),
    // Sensitivity: pods that are not kept balanced (clients that bypass /ws/assign).
    ...TRACES.map((trace, i) => ({ trace, i, assignment: 'random' as const })).filter((r) => r.trace.name === 'ramp' || r.trace.name === 'daily'),
  ];
  const schedules = new Map<string, Schedule>();
  runs.forEach(({ trace, i, assignment }) => {
    const schedule = schedules.get(trace.name) ?? buildSchedule(trace, SEED + i);
    schedules.set(trace.name, schedule);
    const results = Object.fromEntries(STRATEGIES.map((st) => [st, simulate(schedule, st, SEED * 7 + i, assignment)])) as Record<Strategy, SimResult>;
    const fingerprints = new Set(STRATEGIES.map((st) => results[st].decisions));
    if (fingerprints.size !== 1) throw new Error(`policy decisions differ between strategies on ${trace.name}: the comparison would be unfair`);
    const base = results.optimum;
    const ratio = (st: Strategy) => (base.disrupted === 0 ? (results[st].disrupted === 0 ? 1 : Infinity) : results[st].disrupted / base.disrupted);
    const rtc = results['rtc-edge'];
    reports.push({
      trace: trace.name,
      assignment,
      description: trace.description,
      connections: schedule.count,
      scaleIns: rtc.scaleIns,
      scaleOuts: rtc.scaleOuts,
      peakPods: rtc.peakPods,
      podHours: Math.round((rtc.podSeconds / 3600) * 10) / 10,
      disrupted: Object.fromEntries(STRATEGIES.map((st) => [st, results[st].disrupted])) as Record<Strategy, number>,
      ratioToOptimum: Object.fromEntries(STRATEGIES.map((st) => [st, Math.round(ratio(st) * 1000) / 1000])) as Record<Strategy, number>,
      disruptedPerScaleIn: Object.fromEntries(STRATEGIES.map((st) => [st, rtc.scaleIns ? Math.round(results[st].disrupted / rtc.scaleIns) : 0])) as Record<Strategy, number>,
      apiWrites: {
        rtcEdgeCostWrites: rtc.costWrites,
        scaleWrites: rtc.scaleWrites,
        perScaleIn: rtc.scaleIns ? Math.round(((rtc.costWrites + rtc.scaleIns) / rtc.scaleIns) * 10) / 10 : 0,
        continuousCostWrites: rtc.continuousWrites,
        continuousPerScaleIn: rtc.scaleIns ? Math.round(rtc.continuousWrites / rtc.scaleIns) : 0,
      },
    });
  });

  const main = reports.filter((r) => r.assignment === 'least-loaded');
  const total = (st: Strategy) => main.reduce((s, r) => s + r.disrupted[st], 0);
  const overall = Object.fromEntries(STRATEGIES.map((st) => [st, Math.round((total(st) / total('optimum')) * 1000) / 1000])) as Record<Strategy, number>;
  const worstRtc = Math.max(...reports.map((r) => r.ratioToOptimum['rtc-edge']));
  const met = worstRtc <= TARGET_RATIO;

  const pad = (v: string | number, n: number) => String(v).padStart(n);
  const lines = [
    `bench:scaler — connections disrupted by scale-in (same trace, same policy decisions; only the victim choice differs)`,
    `policy: target ${POLICY.targetConnections}/pod, min ${POLICY.minReplicas}, max ${POLICY.maxReplicas}, stabilization ${POLICY.scaleInStabilizationMs / 1000}s, step ${POLICY.scaleInMaxStep}; scaler every ${SCALER_INTERVAL_S}s, heartbeat ${HEARTBEAT_S}s, pod boot ${BOOT_S}s, write→delete latency ${SCALE_LATENCY_S}s; seed ${SEED}`,
    '',
    `${'trace'.padEnd(8)} ${pad('conns', 9)} ${pad('outs', 5)} ${pad('ins', 4)} ${pad('peak', 5)} | ${pad('rtc-edge', 9)} ${pad('statefulset', 11)} ${pad('deployment', 10)} ${pad('optimum', 9)} | ${pad('rtc/opt', 7)} ${pad('sts/opt', 7)} ${pad('dep/opt', 7)} | ${pad('writes/in', 9)} ${pad('continuous/in', 13)}`,
  ];
  for (const r of [...main, ...reports.filter((x) => x.assignment === 'random')]) {
    lines.push(
      `${(r.assignment === 'random' ? `${r.trace}*` : r.trace).padEnd(8)} ${pad(r.connections, 9)} ${pad(r.scaleOuts, 5)} ${pad(r.scaleIns, 4)} ${pad(r.peakPods, 5)} | ${pad(r.disrupted['rtc-edge'], 9)} ${pad(r.disrupted.statefulset, 11)} ${pad(r.disrupted.deployment, 10)} ${pad(r.disrupted.optimum, 9)} | ${pad(r.ratioToOptimum['rtc-edge'].toFixed(3), 7)} ${pad(r.ratioToOptimum.statefulset.toFixed(3), 7)} ${pad(r.ratioToOptimum.deployment.toFixed(3), 7)} | ${pad(r.apiWrites.perScaleIn, 9)} ${pad(r.apiWrites.continuousPerScaleIn, 13)}`,
    );
  }
  lines.push(
    `${'all'.padEnd(8)} ${pad('', 9)} ${pad('', 5)} ${pad(main.reduce((s, r) => s + r.scaleIns, 0), 4)} ${pad('', 5)} | ${pad(total('rtc-edge'), 9)} ${pad(total('statefulset'), 11)} ${pad(total('deployment'), 10)} ${pad(total('optimum'), 9)} | ${pad(overall['rtc-edge'].toFixed(3), 7)} ${pad(overall.statefulset.toFixed(3), 7)} ${pad(overall.deployment.toFixed(3), 7)} |`,
    '',
    `all = the four traces with the gateway's least-loaded assignment; * = clients spread at random (pods not kept balanced).`,
    `writes/in = Kubernetes API writes per scale-in by rtc-edge (changed deletion-cost annotations + 1 scale patch);`,
    `continuous/in = annotation writes a scaler that updates the cost on every heartbeat would make per scale-in.`,
    `target: rtc-edge within ${TARGET_RATIO}× of the optimum on every trace — worst ${worstRtc.toFixed(3)}× → ${met ? 'MET' : 'NOT MET'}`,
    `(${Math.round(performance.now() - t0)} ms)`,
  );
  process.stdout.write(`${lines.join('\n')}\n`);

  const out = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../artifacts/bench-scaler.json');
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(
    out,
    `${JSON.stringify(
      {
        bench: 'scaler',
        seed: SEED,
        params: { policy: POLICY, tickS: TICK_S, scalerIntervalS: SCALER_INTERVAL_S, heartbeatS: HEARTBEAT_S, bootS: BOOT_S, scaleLatencyS: SCALE_LATENCY_S },
        target: { ratio: TARGET_RATIO, worstRtcEdgeRatio: worstRtc, met },
        overallRatioToOptimum: overall,
        overallNote: 'overall = the least-loaded-assignment traces; random-assignment rows are a sensitivity check',
        traces: reports,
      },
      null,
      2,
    )}\n`,
  );
  process.stdout.write(`wrote ${path.relative(process.cwd(), out)}\n`);
  if (!met) process.exitCode = 1;
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:scaler failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
