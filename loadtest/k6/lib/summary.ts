/** handleSummary helpers: a console text of the figures that matter and the full JSON beside it. */

interface MetricData {
  type: string;
  contains?: string;
  values: Record<string, number>;
  thresholds?: Record<string, { ok: boolean }>;
}

/** The part of k6's summary data these scripts read. */
export interface SummaryData {
  metrics: Record<string, MetricData>;
  state?: { testRunDurationMs?: number };
}

function fmt(v: number, time: boolean): string {
  if (!time) return Number.isInteger(v) ? String(v) : v.toFixed(3);
  return v >= 1000 ? `${(v / 1000).toFixed(2)}s` : `${v.toFixed(1)}ms`;
}

/** One line per metric that exists in the run, thresholds marked ✓ or ✗. */
export function consoleText(title: string, data: SummaryData, names: string[], extra: string[] = []): string {
  const lines = [`\n${title}`];
  for (const name of names) {
    const m = data.metrics[name];
    if (!m) continue;
    const time = m.contains === 'time';
    const values = Object.entries(m.values).map(([k, v]) => `${k}=${fmt(v, time && k !== 'count' && k !== 'rate' && k !== 'passes' && k !== 'fails')}`);
    lines.push(`  ${name.padEnd(34)} ${values.join(' ')}`);
  }
  for (const [name, m] of Object.entries(data.metrics)) {
    for (const [expr, t] of Object.entries(m.thresholds ?? {})) lines.push(`  ${t.ok ? '✓' : '✗'} ${name}: ${expr}`);
  }
  lines.push(...extra.map((l) => `  ${l}`), '');
  return lines.join('\n');
}

/** handleSummary's result: the text on stdout and the JSON summary in `jsonPath`. */
export function summaryOutputs(text: string, data: SummaryData, jsonPath: string): Record<string, string> {
  return { stdout: text, [jsonPath]: JSON.stringify(data, null, 2) };
}
