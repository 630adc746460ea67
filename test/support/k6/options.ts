/** The k6 options this runtime implements: `scenarios` (`ramping-vus`, `per-vu-iterations`), `thresholds`, `summaryTrendStats`. */
import { parseDuration } from './duration.js';

/** One stage of a ramping-vus scenario. */
export interface Stage {
  durationMs: number;
  target: number;
}

/** A validated scenario: `ramping-vus` uses startVUs/stages/gracefulRampDown, `per-vu-iterations` vus/iterations/maxDuration. */
export interface Scenario {
  name: string;
  executor: 'ramping-vus' | 'per-vu-iterations';
  exec: string;
  startVUs: number;
  stages: Stage[];
  startTimeMs: number;
  gracefulRampDownMs: number;
  gracefulStopMs: number;
  vus: number;
  iterations: number;
  maxDurationMs: number;
}

/** Validated options. */
export interface RunOptions {
  scenarios: Scenario[];
  thresholds: unknown;
  summaryTrendStats: string[];
}

const TOP_LEVEL = new Set(['scenarios', 'thresholds', 'summaryTrendStats']);
const SCENARIO_KEYS: Record<string, Set<string>> = {
  'ramping-vus': new Set(['executor', 'exec', 'startVUs', 'stages', 'startTime', 'gracefulRampDown', 'gracefulStop']),
  'per-vu-iterations': new Set(['executor', 'exec', 'vus', 'iterations', 'maxDuration', 'startTime', 'gracefulStop']),
};
const DEFAULT_GRACEFUL_MS = 30_000;
const DEFAULT_MAX_DURATION_MS = 600_000;
const DEFAULT_TREND_STATS = ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)'];

const count = (v: unknown, what: string, problems: string[]): number => {
  if (v === undefined) return 1;
  if (!Number.isInteger(v) || (v as number) < 0) problems.push(`${what}: ${JSON.stringify(v)} is not a non-negative integer`);
  return Number(v);
};

/** Validate `options` against what is implemented; throws listing every problem (k6 exit 104). */
export function parseOptions(raw: unknown, exportedFunctions: string[]): RunOptions {
  const problems: string[] = [];
  const o = (raw ?? {}) as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!TOP_LEVEL.has(k)) problems.push(`option "${k}" is not implemented by the test-only k6 runtime`);
  const scenarios: Scenario[] = [];
  const rawScenarios = o.scenarios as Record<string, Record<string, unknown>> | undefined;
  if (!rawScenarios || Object.keys(rawScenarios).length === 0) problems.push('options.scenarios must name at least one scenario');
  for (const [name, s] of Object.entries(rawScenarios ?? {})) {
    const at = `scenarios.${name}`;
    const executor = String(s.executor);
    const keys = SCENARIO_KEYS[executor];
    if (!keys) problems.push(`${at}.executor "${executor}" is not implemented (only ${Object.keys(SCENARIO_KEYS).join(' and ')} are)`);
    for (const k of Object.keys(s)) if (keys && !keys.has(k)) problems.push(`${at}.${k} is not implemented by the test-only k6 runtime`);
    const ramping = executor === 'ramping-vus';
    const exec = s.exec === undefined ? 'default' : String(s.exec);
    if (!exportedFunctions.includes(exec)) problems.push(`${at}.exec: the script exports no function "${exec}"`);
    const stages: Stage[] = [];
    if (ramping && (!Array.isArray(s.stages) || s.stages.length === 0)) problems.push(`${at}.stages must be a non-empty array`);
    for (const [i, st] of (Array.isArray(s.stages) ? (s.stages as Array<Record<string, unknown>>) : []).entries()) {
      try {
        stages.push({ durationMs: parseDuration(st.duration, `${at}.stages[${i}].duration`), target: count(st.target, `${at}.stages[${i}].target`, problems) });
      } catch (err) {
        problems.push((err as Error).message);
      }
    }
    const ms = (v: unknown, what: string, dflt: number) => {
      try {
        return v === undefined ? dflt : parseDuration(v, what);
      } catch (err) {
        problems.push((err as Error).message);
        return dflt;
      }
    };
    scenarios.push({
      name,
      executor: ramping ? 'ramping-vus' : 'per-vu-iterations',
      exec,
      startVUs: ramping ? count(s.startVUs, `${at}.startVUs`, problems) : 0,
      stages,
      vus: ramping ? 0 : count(s.vus, `${at}.vus`, problems),
      iterations: ramping ? 0 : count(s.iterations, `${at}.iterations`, problems),
      maxDurationMs: ms(s.maxDuration, `${at}.maxDuration`, DEFAULT_MAX_DURATION_MS),
      startTimeMs: ms(s.startTime, `${at}.startTime`, 0),
      gracefulRampDownMs: ms(s.gracefulRampDown, `${at}.gracefulRampDown`, DEFAULT_GRACEFUL_MS),
      gracefulStopMs: ms(s.gracefulStop, `${at}.gracefulStop`, DEFAULT_GRACEFUL_MS),
    });
  }
  const trendStats = o.summaryTrendStats === undefined ? DEFAULT_TREND_STATS : (o.summaryTrendStats as string[]);
  if (!Array.isArray(trendStats)) problems.push('summaryTrendStats must be an array');
  if (problems.length > 0) throw new Error(problems.join('\n'));
  return { scenarios, thresholds: o.thresholds, summaryTrendStats: trendStats };
}

/** A scenario's VUs: `vus`, or the largest of startVUs and every stage target. */
export function maxVUs(s: Scenario): number {
  return s.executor === 'per-vu-iterations' ? s.vus : Math.max(s.startVUs, ...s.stages.map((st) => st.target));
}

/** How long the scenario schedules iterations: its stages, or maxDuration. */
export function scheduleMs(s: Scenario): number {
  return s.executor === 'per-vu-iterations' ? s.maxDurationMs : s.stages.reduce((n, st) => n + st.durationMs, 0);
}

/** Active VUs `t` ms after the scenario's start (linear ramps; a VU starts or stops at each whole step). */
export function vusAt(s: Scenario, t: number): number {
  if (s.executor === 'per-vu-iterations') return s.vus;
  let from = s.startVUs;
  let at = 0;
  for (const st of s.stages) {
    if (t < at + st.durationMs) {
      const exact = from + ((st.target - from) * (t - at)) / st.durationMs;
      return st.target >= from ? Math.floor(exact) : Math.ceil(exact);
    }
    at += st.durationMs;
    from = st.target;
  }
  return from;
}
