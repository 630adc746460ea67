/**
 * `npm run bench`: runs the socket, gateway, storm, scaler, k6 and keys benchmarks (each writes artifacts/bench-*.json),
 * then writes BENCHMARKS.md — machine, date, every figure and its ratio to its anchor.
 * `npm run bench -- --report-only` re-renders BENCHMARKS.md from the existing artifacts.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const artifact = (name: string) => path.join(root, 'artifacts', `bench-${name}.json`);
const BENCHES = ['socket', 'gateway', 'storm', 'scaler', 'k6', 'keys'] as const;

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function run(name: string): void {
  process.stderr.write(`\n=== bench:${name} ===\n`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--expose-gc', path.join(root, 'loadtest', `bench-${name}.ts`)], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`bench:${name} exited with ${r.status ?? r.signal}`);
}

const fmt = (v: unknown, digits = 2): string => (typeof v === 'number' && Number.isFinite(v) ? (Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(digits)) : 'n/a');
const ratio = (a: unknown, b: unknown): string => (typeof a === 'number' && typeof b === 'number' && b > 0 ? `${(a / b).toFixed(2)}×` : 'n/a');
const verdict = (ok: boolean | undefined): string => (ok === undefined ? '' : ok ? 'met' : '**missed**');

/** Socket node section. */
export function socketSection(s: Json): string[] {
  const rss = s.rss ?? {};
  const hb = s.heartbeat ?? {};
  const rtt = s.echoRttMs ?? {};
  return [
    `### Socket node (${s.connections?.established ?? 'n/a'} idle connections to one node, registry: ${s.registry ?? 'n/a'})`,
    '',
    '| figure | rtc-edge | anchor | ratio | target |',
    '|---|---|---|---|---|',
    `| RSS per 1,000 idle connections (MiB, anonymous) | ${fmt(rss.perThousandMiB, 3)} | bare uWebSockets.js ${fmt(rss.bareUwsPerThousandMiB, 3)} | ${ratio(rss.perThousandMiB, rss.bareUwsPerThousandMiB)} | ≤ 1 MiB: ${verdict(typeof rss.perThousandMiB === 'number' ? rss.perThousandMiB <= 1 : undefined)} |`,
    `| heartbeat cost (ms per beat) | ${fmt(hb.loadedMeanMs, 3)} at full load | ${fmt(hb.idleMeanMs, 3)} at 0 connections | ${ratio(hb.loadedMeanMs, hb.idleMeanMs)} | independent of connections |`,
    `| echo round-trip p50 / p99 (ms, loopback) | ${fmt(rtt.loaded?.p50, 3)} / ${fmt(rtt.loaded?.p99, 3)} under load | ${fmt(rtt.idle?.p50, 3)} / ${fmt(rtt.idle?.p99, 3)} idle | ${ratio(rtt.loaded?.p50, rtt.idle?.p50)} | reported |`,
    '',
  ];
}

/** Gateway section: the issue-15 targets, gateway beside nginx (one worker) from the same interleaved run. */
export function gatewaySection(g: Json): string[] {
  const load = g.loadBefore && g.loadAfter ? ` Load average ${g.loadBefore.map((x: number) => x.toFixed(1)).join(' ')} → ${g.loadAfter.map((x: number) => x.toFixed(1)).join(' ')} on ${g.cpus} cores (shared with other work).` : '';
  const out = [
    `### Gateway against nginx (\`npm run bench:gateway\`: medians of ${g.runs ?? 'n/a'} runs at ${g.connections ?? 'n/a'} connections, one at ${g.atScale?.gateway?.connections ?? 'n/a'}, GATEWAY_WORKERS 2 vs 1 over ${g.handshakes ?? 'n/a'} handshakes)`,
    '',
    `Both proxies up at once, every phase alternating between them; nginx with one worker.${load}`,
    '',
    '| measure | gateway | nginx | figure | target | |',
    '|---|---|---|---|---|---|',
  ];
  for (const t of (g.targets ?? []) as Json[]) {
    const workers = String(t.measure).startsWith('handshakes per second');
    const cells = workers ? [`${fmt(t.gateway, 0)}/s (2 workers)`, `${fmt(t.nginx, 0)}/s (1 worker)`] : [fmt(t.gateway, 1), fmt(t.nginx, 1)];
    const figure = String(t.target).startsWith('≤ 10') || String(t.target).includes('nginx’s') ? fmt(t.value, 1) : `${fmt(t.value, 2)}×`;
    out.push(`| ${t.measure} | ${cells[0]} | ${cells[1]} | ${figure} | ${t.target} | ${t.met === undefined ? 'not measured' : verdict(t.met)}${t.note ? ` (${t.note})` : ''} |`);
  }
  const m = g.median ?? {};
  out.push('', `Round trips p50: gateway ${fmt(m.gateway?.rttP50Us)} µs (direct ${fmt(m.gateway?.directRttP50Us)}), nginx ${fmt(m.nginx?.rttP50Us)} µs (direct ${fmt(m.nginx?.directRttP50Us)}). Fresh RSS: gateway ${fmt(m.gateway?.baselineRssMiB)} MiB, nginx ${fmt(m.nginx?.baselineRssMiB)} MiB.`);
  const o = g.atScale?.gateway?.overload;
  if (o) out.push(`Past the descriptor limit: ${o.attempted} more attempted, ${o.proxied} proxied, refusals ${JSON.stringify(o.refused)}, existing connections still working: ${o.existingOk}, /healthz ${o.healthz}.`);
  out.push('');
  return out;
}

/** Reconnect storm section: one row per proxy. */
export function stormSection(st: Json): string[] {
  const load = st.loadBefore && st.loadAfter ? ` Load average ${st.loadBefore.map((x: number) => x.toFixed(1)).join(' ')} → ${st.loadAfter.map((x: number) => x.toFixed(1)).join(' ')} on ${st.cpus} cores (shared with other work).` : '';
  const out = [
    `### Reconnect storm (\`npm run bench:storm\`: ${st.connections ?? 'n/a'} connections, ${st.single ?? 'n/a'} for a single-process proxy; the pod closes all at once)`,
    '',
    `Every client re-assigns at the gateway and reconnects at once, honouring Retry-After; times from the drain request.${load}`,
    '',
    '| proxy | processes | back / established | last close seen (ms) | 99 % back (ms) | 100 % back (ms) | peak handshakes/s | refusals | refusals not 503 + Retry-After | RSS before → peak (MiB) |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of (st.results ?? []) as Json[]) {
    out.push(`| ${r.proxy} | ${r.processes} | ${r.back}/${r.established} | ${fmt(r.lastGoneMs, 0)} | ${fmt(r.to99Ms, 0)} | ${fmt(r.to100Ms, 0)} | ${fmt(r.peakHandshakesPerSecond, 0)} | ${JSON.stringify(r.refusals)} | ${r.badRefusals} | ${fmt(r.rssBeforeMiB, 0)} → ${fmt(r.peakRssMiB, 0)} |`);
  }
  out.push('');
  return out;
}

/** Scaler section: disruption against the optimum. */
export function scalerSection(s: Json): string[] {
  const out = [
    `### Scaler (trace replay, seed ${s.seed ?? 'n/a'}): connections disrupted by scale-in`,
    '',
    '| trace | assignment | scale-ins | rtc-edge / optimum | StatefulSet / optimum | Deployment without costs / optimum | API writes per scale-in (continuous writer) |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const t of s.traces ?? []) {
    const r = t.ratioToOptimum ?? {};
    const w = t.apiWrites;
    out.push(`| ${t.trace} | ${t.assignment} | ${t.scaleIns ?? 'n/a'} | ${fmt(r['rtc-edge'], 3)}× | ${fmt(r.statefulset, 3)}× | ${fmt(r.deployment, 3)}× | ${w ? `${fmt(w.perScaleIn, 1)} (${fmt(w.continuousPerScaleIn, 0)})` : '–'} |`);
  }
  const o = s.overallRatioToOptimum ?? {};
  out.push('', `Overall: rtc-edge ${fmt(o['rtc-edge'], 3)}× the optimum (target ≤ ${s.target?.ratio ?? 1.05}×: ${verdict(s.target?.met)}), StatefulSet ${fmt(o.statefulset, 3)}×, Deployment without costs ${fmt(o.deployment, 3)}×.`, '');
  return out;
}

/** Keyed placement (bench:keys): assign latency with and without a key, Redis commands per keyed assign, drain settle. */
export function keysSection(k: Json): string[] {
  const lat = k.assign?.latencyUs ?? {};
  const cmd = k.assign?.commands ?? {};
  const d = k.drain ?? {};
  const row = (name: string, kind: string) => `| ${name} | ${fmt(lat[kind]?.p50, 0)} | ${fmt(lat[kind]?.p99, 0)} | ${fmt(cmd[kind]?.evalPerAssign)} | ${fmt(cmd[kind]?.allPerAssign)} |`;
  const load = Array.isArray(k.loadAverage) ? ` Load average ${fmt(k.loadAverage[0], 1)} on ${k.cpus} cores (shared with other work).` : '';
  return [
    `### Keyed placement (\`npm run bench:keys\`: one gateway, three socket nodes, a real redis-server; ${k.assign?.perKind ?? 'n/a'} assigns of each kind, interleaved)`,
    '',
    `Round trips = \`EVAL\` calls (the keyed path runs only scripts); "all" adds the commands run inside them, from INFO commandstats with the idle background (${fmt(Object.values((cmd.backgroundPerSecondByCommand ?? {}) as Record<string, number>).reduce((a, b) => a + b, 0), 0)} commands/s: heartbeats, view syncs, renewals) subtracted.${load}`,
    '',
    '| assign | p50 (µs) | p99 (µs) | Redis round trips | Redis commands (all) |',
    '|---|---|---|---|---|',
    row('`/ws/assign` (no key)', 'plain'),
    row('`/ws/assign?key=` of a live room (its owner answers)', 'existing'),
    row('`/ws/assign?key=` of a new key (first claim)', 'fresh'),
    '',
    `**Drain**: ${d.clientsOnDrainedPod ?? 'n/a'} clients over ${d.keysOnDrainedPod ?? 'n/a'} keys on one pod, \`POST /drain\` with DRAIN_WINDOW_MS ${d.drainWindowMs ?? 'n/a'} (clients return after the notice's retryAfterMs with the reference client's jitter).`,
    '',
    '| figure | value |',
    '|---|---|',
    `| all keys settled on new owners, every client open there (ms after the drain began) | ${fmt(d.allSettledMs, 0)} |`,
    `| per key: settled p50 / p99 (ms) | ${fmt(d.perKeySettleMs?.p50, 0)} / ${fmt(d.perKeySettleMs?.p99, 0)} |`,
    `| per key: clients split over two pods, p50 / max (ms; notices are paced per key, the client re-forms within its own jitter) | ${fmt(d.perKeySplitMs?.p50, 0)} / ${fmt(d.perKeySplitMs?.max, 0)} |`,
    `| keys never settled / away from their registry owner | ${d.notSettled ?? 'n/a'} / ${d.keysNotWithTheirOwner ?? 'n/a'} |`,
    `| new owners | ${Array.isArray(d.newOwners) ? d.newOwners.join(', ') : 'n/a'} |`,
    '',
  ];
}

/** The k6 scripts' figures (bench:k6, through the test-only k6 runtime), each with the command a user runs. */
export function k6Section(k: Json): string[] {
  const st = k.storm ?? {};
  const sc = k.scale ?? {};
  const load = k.loadAverage ? ` Load average ${k.loadAverage.before} → ${k.loadAverage.after} on ${k.loadAverage.cpus} cores (shared machine).` : '';
  return [
    '### k6 scripts (`npm run bench:k6`: loadtest/k6 through the test-only k6 runtime against `rtc-edge dev`)',
    '',
    `k6 itself is never run here; ${k.runtime ?? 'the test-only runtime'} stands in, so these figures include its overhead.${load} The last column is the same run with your own k6.`,
    '',
    '| figure | value | equivalent k6 command |',
    '|---|---|---|',
    `| connect-storm through the gateway: connections, burst | ${st.connected ?? 'n/a'}/${st.connections ?? 'n/a'} in ${fmt(st.burstSeconds)} s | \`${k.stormCommand ?? ''}\` |`,
    `| connect-storm: connects per second | ${fmt(st.connectsPerSecond, 0)} | same |`,
    `| connect-storm: handshake p95 / p99 (ms) | ${fmt(st.handshakeP95Ms)} / ${fmt(st.handshakeP99Ms)} | same (exit ${k.stormExit ?? 'n/a'}) |`,
    `| scale-out-in in dev: pods base → peak | ${sc.basePods ?? 'n/a'} → ${sc.peakPods ?? 'n/a'} | \`${k.scaleCommand ?? ''}\` |`,
    `| scale-out-in: first new pod after the start (s) | ${fmt(sc.scaleOutS)} | same |`,
    `| scale-out-in: back to the minimum after the clients left (s) | ${fmt(sc.scaleInS)} (SCALE_IN_STABILIZATION_MS 30 s + DRAIN_WINDOW_MS 5 s in dev) | same (exit ${k.scaleExit ?? 'n/a'}) |`,
    `| scale-out-in: ping p95 (ms), connect success, re-assigns | ${fmt(sc.pingP95Ms)}, ${fmt(sc.connectSuccess, 4)}, ${sc.reconnects ?? 'n/a'} | same |`,
    '',
  ];
}

/** min–max (median) of the finite values. */
const range = (xs: number[], unit = ''): string => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return v.length ? `${fmt(v[0], 0)}–${fmt(v[v.length - 1], 0)}${unit} (median ${fmt(v[Math.floor(v.length / 2)], 0)}${unit})` : 'n/a';
};
const seconds = (ms: unknown): string => (typeof ms === 'number' ? fmt(ms / 1000, 1) : 'n/a');

/** Real Kubernetes section, from the artifact test/kube-scaler.test.ts writes. */
export function kubeSection(k: Json): string[] {
  const rounds: Json[] = k.rounds ?? [];
  const count = (f: (r: Json) => boolean) => `${rounds.filter(f).length}/${rounds.length}`;
  const race = k.race;
  const load = k.loadAverage && k.loadAverageAfter ? ` Load average ${fmt(k.loadAverage[0], 1)} → ${fmt(k.loadAverageAfter[0], 1)} (shared machine).` : '';
  return [
    '### Real Kubernetes (`bash scripts/test.sh test/kube-scaler.test.ts`: the chart on a real kube-apiserver, kube-controller-manager and etcd, pods run by the process kubelet)',
    '',
    `Written from artifacts/kube-scaler.json, which that test writes.${load} The scaler acts with the chart's ServiceAccount; writes are counted in the API server's audit log.`,
    '',
    '| figure | value |',
    '|---|---|',
    `| the real ReplicaSet controller removed the pod the scaler expected (a least-loaded one) | ${count((r) => r.expected)} rounds (3–6 pods, uneven loads; the last round runs the protocol after the naive race) |`,
    `| the scaler's log and its \`honored\` metric said what happened | ${count((r) => r.scalerHonored === r.expected && r.metricHonored === r.expected)} rounds |`,
    `| scaler/ranking.ts (the \`local\` workload) picked the pod the controller removed (ties count) | ${count((r) => r.rankingPick === r.removed || (r.leastLoaded.includes(r.rankingPick) && r.leastLoaded.includes(r.removed)))} rounds |`,
    `| API writes per scale-in (scaler's ServiceAccount, Lease renewals excluded) | ${range(rounds.map((r) => r.apiWrites))}; deletion-cost patches among them ${range(rounds.map((r) => r.costWrites))} |`,
    `| costs seen on the scaler's pod watch → scale call (ms; SCALE_IN_SETTLE_MS is 500) | ${range(rounds.map((r) => r.confirmMs ?? NaN))} |`,
    `| scale decision ("Scaling Deployment …") → the victim's "drain started" (ms) | ${range(rounds.map((r) => r.decisionToDrainMs))} |`,
    `| the race users report: costs patched in the same instant as the scale call, no wait | ${race ? `removed ${race.expected ? 'a least-loaded pod' : 'NOT the least-loaded pod'} (cost answers ${fmt(race.costAnsweredAfterScaleMs)} ms after the scale call); the protocol on the same shape: see the last round` : 'n/a'} |`,
    `| Lease hand-over after the leader pod is force-deleted (s; lease 15 s) | ${seconds(k.leaseHandOverMs)} |`,
    `| plane + kubelet start / \`helm install --wait\` / the whole test file (s) | ${seconds(k.planeStartMs)} / ${seconds(k.installMs)} / ${seconds(k.fileMs)} |`,
    '',
  ];
}

/** Render BENCHMARKS.md from the artifacts (and the Real Kubernetes artifact, when a kube-scaler test run left one). */
export function render(data: Partial<Record<(typeof BENCHES)[number], Json>>, now = new Date(), kube?: Json): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  const lines = [
    '# Benchmarks',
    '',
    `Written by \`npm run bench\` on ${now.toISOString().slice(0, 10)}: ${os.cpus().length} × ${cpu}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${os.type()} ${os.release()}. Loopback only; raw numbers in \`artifacts/bench-*.json\`.`,
    'Each figure stands beside its anchor (bare uWebSockets.js, a direct connection, nginx, the optimum) from the same run.',
    '',
  ];
  if (data.socket) lines.push(...socketSection(data.socket));
  if (data.gateway) lines.push(...gatewaySection(data.gateway));
  if (data.storm) lines.push(...stormSection(data.storm));
  if (data.scaler) lines.push(...scalerSection(data.scaler));
  if (data.k6) lines.push(...k6Section(data.k6));
  if (data.keys) lines.push(...keysSection(data.keys));
  for (const b of BENCHES) if (!data[b]) lines.push(`_bench:${b}: no result (artifacts/bench-${b}.json missing)._`, '');
  if (kube) lines.push(...kubeSection(kube));
  return lines.join('\n');
}

async function main(): Promise<void> {
  const reportOnly = process.argv.includes('--report-only');
  if (!reportOnly) for (const b of BENCHES) run(b);
  const data: Partial<Record<(typeof BENCHES)[number], Json>> = {};
  for (const b of BENCHES) if (existsSync(artifact(b))) data[b] = JSON.parse(readFileSync(artifact(b), 'utf8')) as Json;
  const kube = path.join(root, 'artifacts', 'kube-scaler.json');
  const md = render(data, new Date(), existsSync(kube) ? (JSON.parse(readFileSync(kube, 'utf8')) as Json) : undefined);
  writeFileSync(path.join(root, 'BENCHMARKS.md'), `${md}\n`);
  process.stdout.write(md);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
