/** k6 durations: `1h2m3s`, `1.5s`, `500ms`, `0`; a bare number is milliseconds where k6 takes one (timeouts). */

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;

/** Parse a k6 duration into ms; throws naming the bad value. */
export function parseDuration(raw: unknown, what: string): number {
  if (typeof raw === 'number' && Number.isFinite(raw) && raw >= 0) return raw;
  if (typeof raw !== 'string') throw new Error(`${what}: ${JSON.stringify(raw)} is not a duration`);
  const s = raw.trim();
  if (s === '0') return 0;
  PART.lastIndex = 0;
  let total = 0;
  let matched = 0;
  for (let m = PART.exec(s); m; m = PART.exec(s)) {
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
    matched = PART.lastIndex;
  }
  if (matched === 0 || matched !== s.length) throw new Error(`${what}: "${raw}" is not a duration like 30s, 1m30s or 500ms`);
  return total;
}
