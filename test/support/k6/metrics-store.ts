/** The main thread's metric sinks (k6's counter, gauge, rate and trend sinks), with tag-filtered submetrics. */
import type { MetricDecl, MetricType, Sample } from './protocol.js';

/** Metrics the runtime itself emits, as k6 declares them. */
export const BUILTIN_METRICS: MetricDecl[] = [
  { name: 'checks', type: 'rate', isTime: false },
  { name: 'iterations', type: 'counter', isTime: false },
  { name: 'iteration_duration', type: 'trend', isTime: true },
  { name: 'group_duration', type: 'trend', isTime: true },
  { name: 'vus', type: 'gauge', isTime: false },
  { name: 'vus_max', type: 'gauge', isTime: false },
  { name: 'http_reqs', type: 'counter', isTime: false },
  { name: 'http_req_duration', type: 'trend', isTime: true },
  { name: 'http_req_failed', type: 'rate', isTime: false },
  { name: 'ws_connecting', type: 'trend', isTime: true },
  { name: 'ws_sessions', type: 'counter', isTime: false },
  { name: 'ws_session_duration', type: 'trend', isTime: true },
  { name: 'ws_msgs_sent', type: 'counter', isTime: false },
  { name: 'ws_msgs_received', type: 'counter', isTime: false },
];

/** The aggregate of one metric or submetric. */
export class Sink {
  count = 0;
  sum = 0;
  min = Infinity;
  max = -Infinity;
  last = 0;
  nonZero = 0;
  private readonly values: number[] = [];
  private sorted = true;

  constructor(readonly type: MetricType) {}

  add(v: number): void {
    this.count++;
    this.sum += v;
    this.min = Math.min(this.min, v);
    this.max = Math.max(this.max, v);
    this.last = v;
    if (v !== 0) this.nonZero++;
    if (this.type === 'trend') {
      if (this.values.length > 0 && v < this.values[this.values.length - 1]!) this.sorted = false;
      this.values.push(v);
    }
  }

  /** k6's percentile: linear interpolation between the closest ranks. */
  percentile(p: number): number {
    if (this.values.length === 0) return 0;
    if (!this.sorted) {
      this.values.sort((a, b) => a - b);
      this.sorted = true;
    }
    const rank = ((this.values.length - 1) * p) / 100;
    const lo = Math.floor(rank);
    const hi = Math.ceil(rank);
    return this.values[lo]! + (this.values[hi]! - this.values[lo]!) * (rank - lo);
  }

  /** One aggregation by k6's name (`count`, `rate`, `value`, `avg`, `min`, `med`, `max`, `p(N)`); undefined when the type lacks it. */
  aggregate(name: string, durationMs: number): number | undefined {
    const empty = this.count === 0;
    switch (this.type) {
      case 'counter':
        if (name === 'count') return this.sum;
        if (name === 'rate') return durationMs > 0 ? this.sum / (durationMs / 1000) : 0;
        return undefined;
      case 'gauge':
        if (name === 'value') return this.last;
        if (name === 'min') return empty ? 0 : this.min;
        if (name === 'max') return empty ? 0 : this.max;
        return undefined;
      case 'rate':
        if (name === 'rate') return empty ? 0 : this.nonZero / this.count;
        return undefined;
      case 'trend': {
        if (name === 'avg') return empty ? 0 : this.sum / this.count;
        if (name === 'min') return empty ? 0 : this.min;
        if (name === 'max') return empty ? 0 : this.max;
        if (name === 'med') return this.percentile(50);
        const p = /^p\((\d+(?:\.\d+)?)\)$/.exec(name);
        if (p && Number(p[1]) <= 100) return this.percentile(Number(p[1]));
        return undefined;
      }
    }
  }

  /** The `values` object of k6's summary data. */
  summaryValues(durationMs: number, trendStats: string[]): Record<string, number> {
    switch (this.type) {
      case 'counter':
        return { count: this.sum, rate: this.aggregate('rate', durationMs)! };
      case 'gauge':
        return { value: this.last, min: this.aggregate('min', durationMs)!, max: this.aggregate('max', durationMs)! };
      case 'rate':
        return { rate: this.aggregate('rate', durationMs)!, passes: this.nonZero, fails: this.count - this.nonZero };
      case 'trend':
        return Object.fromEntries(trendStats.map((s) => [s, s === 'count' ? this.count : (this.aggregate(s, durationMs) ?? 0)]));
    }
  }
}

/** `name` or `name{tag:value,...}` as thresholds name a (sub)metric. */
export function parseSelector(key: string): { name: string; tags: Record<string, string> } {
  const m = /^([^{\s]+)(?:\{(.*)\})?$/.exec(key.trim());
  if (!m) throw new Error(`invalid metric selector "${key}"`);
  const tags: Record<string, string> = {};
  for (const part of (m[2] ?? '').split(',').filter((p) => p.trim() !== '')) {
    const i = part.indexOf(':');
    if (i <= 0) throw new Error(`invalid tag filter "${part}" in "${key}"`);
    tags[part.slice(0, i).trim()] = part.slice(i + 1).trim().replace(/^"(.*)"$/, '$1');
  }
  return { name: m[1]!, tags };
}

/** Every metric's sink, plus the submetrics that thresholds name. */
export class MetricStore {
  readonly decls = new Map<string, MetricDecl>(BUILTIN_METRICS.map((d) => [d.name, d]));
  readonly sinks = new Map<string, Sink>();
  private readonly subs = new Map<string, Array<{ key: string; tags: Record<string, string> }>>();

  declare(decl: MetricDecl): void {
    const had = this.decls.get(decl.name);
    if (had && had.type !== decl.type) throw new Error(`metric "${decl.name}" is declared both as a ${had.type} and a ${decl.type}`);
    if (!had) this.decls.set(decl.name, decl);
  }

  /** The sink for `key` (a selector); undefined when its metric is not declared. */
  sink(key: string): Sink | undefined {
    const existing = this.sinks.get(key);
    if (existing) return existing;
    const { name, tags } = parseSelector(key);
    const decl = this.decls.get(name);
    if (!decl) return undefined;
    const sink = new Sink(decl.type);
    this.sinks.set(key, sink);
    if (Object.keys(tags).length > 0) {
      const list = this.subs.get(name) ?? [];
      list.push({ key, tags });
      this.subs.set(name, list);
    }
    return sink;
  }

  add(s: Sample): void {
    this.sink(s.metric)?.add(s.value);
    for (const sub of this.subs.get(s.metric) ?? []) {
      if (Object.entries(sub.tags).every(([k, v]) => s.tags[k] === v)) this.sinks.get(sub.key)!.add(s.value);
    }
  }
}
