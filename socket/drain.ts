/**
 * The socket node's drain: the shared paced schedule (src/drain-schedule.ts) sends each connection a
 * reconnect notice and close 1012; this file adds the notice's jittered `retryAfterMs` (drawn once per room
 * in a drain: socket/index.ts groups the schedule by placement key).
 */
import { RECONNECT_RETRY_JITTER_MS, RECONNECT_RETRY_MIN_MS } from './constants.js';

export { planDrain, runDrain, shuffle, type DrainResult, type DrainRun } from '../src/drain-schedule.js';

/** The `retryAfterMs` of one notice (or one room's notices): jittered, so rooms and unkeyed clients do not reconnect together. */
export function retryAfterMs(random: () => number = Math.random): number {
  return RECONNECT_RETRY_MIN_MS + Math.floor(random() * RECONNECT_RETRY_JITTER_MS);
}
