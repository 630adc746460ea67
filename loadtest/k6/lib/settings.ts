/** Run settings from `-e` variables (k6's __ENV), with laptop defaults; a bad value stops the run naming every bad variable. */

/** Milliseconds of a k6 duration (`90s`, `1m30s`, `500ms`, `0`), or NaN. */
export function durationMs(raw: string): number {
  if (raw.trim() === '0') return 0;
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60000, h: 3600000 };
  let total = 0;
  let consumed = '';
  for (let m = part.exec(raw); m; m = part.exec(raw)) {
    total += Number(m[1]) * unit[m[2]];
    consumed += m[0];
  }
  return consumed.length > 0 && consumed === raw.trim() ? total : NaN;
}

/** `http(s)://host[:port][/]` → `ws(s)://host[:port]` (k6 has no URL class). */
export function wsBase(httpBase: string): string {
  return httpBase.replace(/^http/, 'ws');
}

/** Reads typed values from __ENV, collecting problems instead of failing on the first. */
export class Env {
  private readonly problems: string[] = [];

  /** A gateway-style base URL: http:// or https://, no trailing slash. */
  url(name: string, fallback: string): string {
    const v = (__ENV[name] ?? fallback).replace(/\/+$/, '');
    if (!/^https?:\/\/[^/\s]+$/.test(v)) this.problems.push(`${name}=${v}: expected http(s)://host[:port] (the scheme decides ws:// or wss://)`);
    return v;
  }

  /** An integer in [min, max]. */
  int(name: string, fallback: number, min: number, max: number): number {
    const raw = __ENV[name];
    const v = raw === undefined || raw === '' ? fallback : Number(raw);
    if (!Number.isInteger(v) || v < min || v > max) this.problems.push(`${name}=${raw}: expected an integer from ${min} to ${max}`);
    return v;
  }

  /** A non-negative number. */
  num(name: string, fallback: number): number {
    const raw = __ENV[name];
    const v = raw === undefined || raw === '' ? fallback : Number(raw);
    if (!Number.isFinite(v) || v < 0) this.problems.push(`${name}=${raw}: expected a non-negative number`);
    return v;
  }

  /** A k6 duration string (kept as given, for stages) and its milliseconds. */
  duration(name: string, fallback: string): { text: string; ms: number } {
    const text = __ENV[name] ?? fallback;
    const ms = durationMs(text);
    if (!(ms >= 0)) this.problems.push(`${name}=${text}: expected a k6 duration like 30s, 2m or 1m30s`);
    return { text, ms };
  }

  /** `true`/`1` or `false`/`0`. */
  flag(name: string, fallback: boolean): boolean {
    const raw = __ENV[name];
    if (raw === undefined || raw === '') return fallback;
    if (raw === 'true' || raw === '1') return true;
    if (raw === 'false' || raw === '0') return false;
    this.problems.push(`${name}=${raw}: expected true or false`);
    return fallback;
  }

  /** An optional string. */
  str(name: string, fallback: string): string {
    return __ENV[name] ?? fallback;
  }

  /** Throw once with every problem found. */
  done(): void {
    if (this.problems.length > 0) throw new Error(`invalid -e variables:\n  ${this.problems.join('\n  ')}`);
  }
}
