/** The live registry of socket pods: one interface, `memory` and `redis` backends. */
import { DEAD_AFTER_HEARTBEATS, DNS1123_LABEL, PLACEMENT_KEY } from '../constants.js';

/** One socket pod's heartbeat. */
export interface PodRecord {
  podId: string;
  ip: string;
  /** WebSocket port. */
  port: number;
  /** Admin port (drain, health, metrics); optional for older writers. */
  adminPort?: number;
  connections: number;
  draining: boolean;
  /**
   * The scaler plans to remove this pod: gateways assign no new clients to it. Readers set it from the
   * cordon mark (its own key with a TTL the scaler renews); a writer's value is ignored.
   */
  cordoned?: boolean;
  /** ms since epoch, writer's clock. */
  startedAt: number;
  /** ms since epoch, writer's clock. */
  updatedAt: number;
  /** The writer's heartbeat period; the entry is dead after 3 of them. */
  heartbeatMs: number;
}

/** The scaler's last decision, for `/api/pods` and the status page. */
export interface ScalerDecision {
  desiredReplicas: number;
  currentReplicas: number;
  reason: string;
  at: number;
  /** Deletion costs last written, by pod id. */
  deletionCosts?: Record<string, number>;
  /** The planned victims of the coming scale-in (the cordoned pods), lightest first. */
  victims?: string[];
}

/** The scaler's mark on a pod it plans to remove (DESIGN "Cordon"). */
export interface CordonMark {
  /**
   * Set just before the scale call: the pod reports NotReady (for a bound of its own) so that the
   * ReplicaSet removes it first. A new value starts a new bound.
   */
  retire?: string;
}

/** A recent scaling or drain event, for the status page. */
export interface EdgeEvent {
  at: number;
  kind: 'scale-out' | 'scale-in' | 'drain-start' | 'drain-done' | 'pod-added' | 'pod-removed' | 'hold' | 'victim' | 'cordon' | 'uncordon' | 'not-honoured' | 'info';
  message: string;
  podId?: string;
}

/** Announced on the change channel. */
export type RegistryChange = { type: 'upsert'; pod: PodRecord } | { type: 'remove'; podId: string } | { type: 'cordon'; podId: string; mark: CordonMark | null };

export type RegistryStatus = 'connecting' | 'ready' | 'down' | 'closed';

/** The registry interface every role uses. */
export interface Registry {
  readonly kind: 'memory' | 'redis';
  /** Upsert this pod's entry and refresh its liveness (dead after 3 × heartbeatMs). Announces the change. */
  heartbeat(pod: PodRecord): Promise<void>;
  /** Remove an entry at once (SIGTERM, scale-in). Announces the removal. */
  remove(podId: string): Promise<void>;
  /** Live entries only, each with `cordoned` set. */
  list(): Promise<PodRecord[]>;
  /** One live entry (with `cordoned` set), or undefined. */
  get(podId: string): Promise<PodRecord | undefined>;
  /** Mark (or renew) a pod as cordoned for `ttlMs`: the mark vanishes unless renewed. Announces the change. */
  cordon(podId: string, mark: CordonMark, ttlMs: number): Promise<void>;
  /** Drop a cordon mark at once. Announces the change. */
  uncordon(podId: string): Promise<void>;
  /** The pod's cordon mark, or undefined when it has none. */
  cordonOf(podId: string): Promise<CordonMark | undefined>;
  /** Listen to changes; returns an unsubscribe function. */
  subscribe(listener: (change: RegistryChange) => void): () => void;
  setScalerDecision(decision: ScalerDecision): Promise<void>;
  getScalerDecision(): Promise<ScalerDecision | null>;
  /** Append to the capped event log (newest first when read). */
  pushEvent(event: EdgeEvent): Promise<void>;
  recentEvents(limit?: number): Promise<EdgeEvent[]>;
  /**
   * Claim placement `key` for `podId` for `ttlMs`, atomically across every reader (DESIGN "Keyed placement"):
   * it succeeds when nobody holds the key, when `podId` already does (its TTL is refreshed) or when the holder is
   * `replace` (a dead or draining owner the caller takes over). Resolves the owner after the call.
   */
  claim(key: string, podId: string, ttlMs: number, replace?: string): Promise<string>;
  /** The owner of `key`, or undefined (none, expired, or an invalid stored value: logged once, counted). */
  ownerOf(key: string): Promise<string | undefined>;
  /**
   * Refresh `podId`'s claims on `keys` for `ttlMs`, re-claiming those nobody holds (the pod still has their
   * sessions). Resolves the keys another pod holds now.
   */
  renewClaims(podId: string, keys: readonly string[], ttlMs: number): Promise<string[]>;
  /** Drop `podId`'s claims on `keys` (every claim of the pod when omitted); a key another pod took over is left alone. */
  releaseClaims(podId: string, keys?: readonly string[]): Promise<void>;
  /** The keys `podId` holds (live claims only), sorted. */
  keysOf(podId: string): Promise<string[]>;
  /**
   * For each of `podIds` (one read for all of them: the gateway view's refresh, the scaler's tick): how many keys it
   * holds and up to `limit` of them, sorted. The count is exact up to {@link KEY_SUMMARY_EXACT} keys and beyond it
   * may still include a claim lost since the pod's last renewal; `redis` lists any `limit` of a larger set.
   */
  keySummary(podIds: readonly string[], limit: number): Promise<Map<string, KeySummary>>;
  /** Records skipped on read because they failed validation (src/registry/record.ts), for rtc_registry_invalid_records_total. */
  invalidRecords(): number;
  /** Connection state of the backend (`memory` is always ready). */
  status(): RegistryStatus;
  /** Called on every status transition. Returns an unsubscribe function. */
  onStatus(listener: (status: RegistryStatus) => void): () => void;
  close(): Promise<void>;
}

/** A pod's placement keys as {@link Registry.keySummary} reports them. */
export interface KeySummary {
  /** Keys the pod holds. */
  count: number;
  /** Up to the asked limit of them, sorted. */
  keys: string[];
}

/** Up to this many keys per pod, keySummary checks every claim (so the count is exact); never more than this are listed. */
export const KEY_SUMMARY_EXACT = 100;

/** Throw unless `key` is a placement key and `podId` a pod id: callers validate first, so this is a bug guard that keeps both out of key names. */
export function assertClaimArgs(key: string, podId: string, replace?: string): void {
  if (!PLACEMENT_KEY.test(key)) throw new TypeError(`not a placement key: ${JSON.stringify(key.slice(0, 140))}`);
  if (!DNS1123_LABEL.test(podId)) throw new TypeError(`not a pod id: ${JSON.stringify(podId.slice(0, 70))}`);
  if (replace !== undefined && !DNS1123_LABEL.test(replace)) throw new TypeError(`replace: not a pod id: ${JSON.stringify(replace.slice(0, 70))}`);
}

/** How many events the log keeps. */
export const EVENT_LOG_LENGTH = 200;

/** Resolves once `registry` is no longer `connecting` (ready, down or closed) or after `ms`, whichever is first. */
export function settledWithin(registry: Registry, ms: number): Promise<void> {
  if (registry.status() !== 'connecting') return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    const off = registry.onStatus((s) => s !== 'connecting' && done());
    function done() {
      clearTimeout(timer);
      off();
      resolve();
    }
  });
}

/** True when `pod` has missed fewer than 3 heartbeats at `now`. */
export function isLive(pod: PodRecord, now: number, deadAfter = DEAD_AFTER_HEARTBEATS): boolean {
  return now - pod.updatedAt < deadAfter * pod.heartbeatMs;
}

/** Validate a cordon mark read from a backend; returns undefined when malformed (never throws). */
export function parseCordonMark(raw: unknown): CordonMark | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined;
  const r = raw as Record<string, unknown>;
  if (r.retire !== undefined && typeof r.retire !== 'string') return undefined;
  return r.retire === undefined ? {} : { retire: r.retire };
}
