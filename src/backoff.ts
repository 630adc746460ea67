/** The one retry backoff of rtc-edge: capped exponential, jittered over its upper half. */

/** Exponents above this cannot raise a capped delay further (and would overflow toward Infinity). */
const MAX_EXPONENT = 16;

/** Delay before retry `attempt` (0-based): min(max, base·2^attempt), then uniform in [½, 1] of that. */
export function jitteredBackoffMs(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(0, attempt), MAX_EXPONENT));
  return Math.round(ceiling / 2 + (ceiling / 2) * random());
}
