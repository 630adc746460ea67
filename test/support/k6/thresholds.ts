/** k6 thresholds: `{ metric: ['p(95)<200', { threshold: 'rate>=0.99', abortOnFail: true, delayAbortEval: '10s' }] }`. */
import { parseDuration } from './duration.js';
import type { MetricStore } from './metrics-store.js';

type Op = '<' | '<=' | '>' | '>=' | '==' | '===' | '!=';

/** One parsed threshold expression on one (sub)metric. */
export interface Threshold {
  key: string;
  source: string;
  aggregation: string;
  op: Op;
  value: number;
  abortOnFail: boolean;
  delayAbortEvalMs: number;
  /** Result of the last evaluation. */
  ok: boolean;
}

const EXPR = /^\s*(count|rate|value|avg|min|max|med|p\(\d+(?:\.\d+)?\))\s*(<=|>=|===|==|!=|<|>)\s*(-?\d+(?:\.\d+)?(?:e-?\d+)?)\s*$/;
const ALLOWED: Record<string, (a: string) => boolean> = {
  counter: (a) => a === 'count' || a === 'rate',
  gauge: (a) => a === 'value' || a === 'min' || a === 'max',
  rate: (a) => a === 'rate',
  trend: (a) => ['avg', 'min', 'max', 'med'].includes(a) || a.startsWith('p('),
};

/** Parse and validate every threshold against the declared metrics; throws listing every problem (k6 exit 104). */
export function parseThresholds(raw: unknown, store: MetricStore): Threshold[] {
  if (raw === undefined) return [];
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error('options.thresholds must be an object');
  const out: Threshold[] = [];
  const problems: string[] = [];
  for (const [key, list] of Object.entries(raw as Record<string, unknown>)) {
    if (!Array.isArray(list)) {
      problems.push(`thresholds["${key}"] must be an array`);
      continue;
    }
    let sink;
    try {
      sink = store.sink(key);
    } catch (err) {
      problems.push((err as Error).message);
      continue;
    }
    if (!sink) {
      problems.push(`invalid threshold defined on ${key}; reason: no metric name "${key.split('{')[0]}" found`);
      continue;
    }
    for (const item of list) {
      const obj = typeof item === 'string' ? { threshold: item } : (item as { threshold?: unknown; abortOnFail?: unknown; delayAbortEval?: unknown });
      const known = new Set(['threshold', 'abortOnFail', 'delayAbortEval']);
      const extra = typeof obj === 'object' && obj !== null ? Object.keys(obj).filter((k) => !known.has(k)) : [];
      const m = typeof obj?.threshold === 'string' ? EXPR.exec(obj.threshold) : null;
      if (!m || extra.length > 0) {
        problems.push(`invalid threshold ${JSON.stringify(item)} on ${key}${extra.length ? `: unknown field(s) ${extra.join(', ')}` : ''}`);
        continue;
      }
      if (!ALLOWED[sink.type]!(m[1]!)) {
        problems.push(`invalid threshold "${obj.threshold as string}" on ${key}: a ${sink.type} metric has no "${m[1]}"`);
        continue;
      }
      let delay = 0;
      try {
        delay = obj.delayAbortEval === undefined ? 0 : parseDuration(obj.delayAbortEval, `delayAbortEval of ${key}`);
      } catch (err) {
        problems.push((err as Error).message);
        continue;
      }
      out.push({ key, source: obj.threshold as string, aggregation: m[1]!, op: m[2] as Op, value: Number(m[3]), abortOnFail: obj.abortOnFail === true, delayAbortEvalMs: delay, ok: true });
    }
  }
  if (problems.length > 0) throw new Error(problems.join('\n'));
  return out;
}

function compare(a: number, op: Op, b: number): boolean {
  switch (op) {
    case '<':
      return a < b;
    case '<=':
      return a <= b;
    case '>':
      return a > b;
    case '>=':
      return a >= b;
    case '==':
    case '===':
      return a === b;
    case '!=':
      return a !== b;
  }
}

/** Evaluate every threshold now; returns those that fail. */
export function evaluate(thresholds: Threshold[], store: MetricStore, durationMs: number): Threshold[] {
  const failed: Threshold[] = [];
  for (const t of thresholds) {
    const v = store.sink(t.key)!.aggregate(t.aggregation, durationMs)!;
    t.ok = compare(v, t.op, t.value);
    if (!t.ok) failed.push(t);
  }
  return failed;
}
