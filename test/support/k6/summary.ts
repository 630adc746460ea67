/** The data k6 gives `handleSummary`, and a plain end-of-test text when the script has no handleSummary. */
import type { MetricStore } from './metrics-store.js';
import { parseSelector } from './metrics-store.js';
import type { CheckResult } from './protocol.js';
import type { Threshold } from './thresholds.js';

interface GroupNode {
  name: string;
  path: string;
  groups: GroupNode[];
  checks: Array<{ name: string; path: string; passes: number; fails: number }>;
}

function groupTree(checks: CheckResult[]): GroupNode {
  const root: GroupNode = { name: '', path: '', groups: [], checks: [] };
  for (const c of checks) {
    let node = root;
    for (const name of c.group.split('::').slice(1)) {
      let child = node.groups.find((g) => g.name === name);
      if (!child) node.groups.push((child = { name, path: `${node.path}::${name}`, groups: [], checks: [] }));
      node = child;
    }
    let entry = node.checks.find((e) => e.name === c.name);
    if (!entry) node.checks.push((entry = { name: c.name, path: `${node.path}::${c.name}`, passes: 0, fails: 0 }));
    if (c.ok) entry.passes++;
    else entry.fails++;
  }
  return root;
}

/** k6's summary data: `metrics`, `root_group`, `options`, `state`. */
export function summaryData(store: MetricStore, thresholds: Threshold[], checks: CheckResult[], durationMs: number, trendStats: string[]) {
  const metrics: Record<string, { type: string; contains: string; values: Record<string, number>; thresholds?: Record<string, { ok: boolean }> }> = {};
  for (const [key, sink] of store.sinks) {
    const decl = store.decls.get(parseSelector(key).name)!;
    if (sink.count === 0 && !thresholds.some((t) => t.key === key)) continue;
    metrics[key] = { type: decl.type, contains: decl.isTime ? 'time' : 'default', values: sink.summaryValues(durationMs, trendStats) };
    const own = thresholds.filter((t) => t.key === key);
    if (own.length > 0) metrics[key].thresholds = Object.fromEntries(own.map((t) => [t.source, { ok: t.ok }]));
  }
  return {
    root_group: groupTree(checks),
    options: { summaryTrendStats: trendStats, summaryTimeUnit: '', noColor: true },
    state: { isStdOutTTY: false, isStdErrTTY: false, testRunDurationMs: durationMs },
    metrics,
  };
}

/** A short text of every metric and threshold (printed when the script defines no handleSummary). */
export function plainSummary(data: ReturnType<typeof summaryData>): string {
  const lines = Object.entries(data.metrics)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, m]) => {
      const mark = m.thresholds ? (Object.values(m.thresholds).every((t) => t.ok) ? '✓ ' : '✗ ') : '  ';
      const values = Object.entries(m.values).map(([k, v]) => `${k}=${Number.isInteger(v) ? v : v.toFixed(2)}`).join(' ');
      return `  ${mark}${name}: ${values}`;
    });
  return `${lines.join('\n')}\n`;
}
