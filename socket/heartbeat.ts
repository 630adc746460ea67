/**
 * Registry heartbeat: every HEARTBEAT_MS, at once on demand (drain), and at once when the registry reports
 * `ready` again. A failing registry never stops the node: it logs the state change once and retries each beat.
 * The record is built from counters, so a beat costs the same at 0 and at 20,000 connections.
 */
import type { Logger } from 'pino';
import type { PodRecord, Registry } from '../src/registry/registry.js';
import type { SocketMetrics } from './metrics.js';

/** A running heartbeat. */
export interface Heartbeat {
  /** Beat now. Resolves true when the registry took a record built after this call. Never rejects. */
  beat(): Promise<boolean>;
  /** True while the last beat succeeded. */
  readonly healthy: boolean;
  /** Stop the timer and wait for a beat in flight (bounded), so no beat lands after a removal. */
  stop(): Promise<void>;
}

/** Options of createHeartbeat. */
export interface HeartbeatOptions {
  registry: Registry;
  intervalMs: number;
  record: () => PodRecord;
  logger: Logger;
  metrics: Pick<SocketMetrics, 'heartbeats' | 'heartbeatDuration'>;
}

/** Resolve `p`, or reject after `ms` (the timer is cleared either way). */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Start the heartbeat timer; call `beat()` for the first beat. */
export function createHeartbeat(opts: HeartbeatOptions): Heartbeat {
  const { registry, intervalMs, record, logger, metrics } = opts;
  let healthy = false;
  let failingSince: number | undefined;
  let stopped = false;
  let running: Promise<boolean> | undefined;
  let rerun: Promise<boolean> | undefined;

  async function once(): Promise<boolean> {
    const started = performance.now();
    try {
      // Bounded by one interval: a hung registry call must not hold back the next beats.
      await withTimeout(registry.heartbeat(record()), intervalMs, 'registry heartbeat');
      metrics.heartbeats.inc({ result: 'ok' });
      if (failingSince !== undefined) {
        logger.info({ downMs: Date.now() - failingSince }, 'registry heartbeat restored');
        failingSince = undefined;
      }
      healthy = true;
      return true;
    } catch (err) {
      metrics.heartbeats.inc({ result: 'error' });
      if (failingSince === undefined) {
        failingSince = Date.now();
        logger.warn({ err }, 'registry heartbeat failing; still serving WebSockets, retrying every heartbeat');
      }
      healthy = false;
      return false;
    } finally {
      metrics.heartbeatDuration.observe((performance.now() - started) / 1000);
    }
  }

  function beat(): Promise<boolean> {
    if (stopped) return Promise.resolve(false);
    if (!running) {
      running = once().finally(() => {
        running = undefined;
      });
      return running;
    }
    // A beat is in flight with a record built earlier (e.g. before draining was set): run one more after it.
    rerun ??= running.then(() => {
      rerun = undefined;
      return beat();
    });
    return rerun;
  }

  const timer = setInterval(() => void beat(), intervalMs);
  timer.unref();
  const unsubscribe = registry.onStatus((status) => {
    if (status === 'ready') void beat();
  });

  return {
    beat,
    get healthy() {
      return healthy;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      unsubscribe();
      const inFlight = rerun ?? running;
      if (inFlight) await inFlight;
    },
  };
}
