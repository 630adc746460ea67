/**
 * The gateway's cached view of the registry: fed by `registry.subscribe` (new, draining and removed pods
 * arrive at once) and corrected by a periodic `registry.list()`. Lookups are synchronous map reads.
 *
 * Liveness uses the gateway's own clock (when the entry was last seen), so writer clock skew does not
 * matter. While the registry is failing the view is frozen as of the last good sync (`stale`) for
 * `staleMs`; after that it is `unavailable` and the gateway answers 503 instead of routing to pods that
 * may be gone.
 */
import type { Logger } from 'pino';
import { DEAD_AFTER_HEARTBEATS } from '../src/constants.js';
import { settledWithin, type KeySummary, type PodRecord, type Registry, type RegistryChange, type ScalerDecision } from '../src/registry/registry.js';

/** `fresh`: registry reachable; `stale`: failing, last known view served; `unavailable`: 503. */
export type ViewState = 'fresh' | 'stale' | 'unavailable';

/** Numeric form for the metrics gauge. */
export const VIEW_STATE_VALUE: Record<ViewState, number> = { fresh: 0, stale: 1, unavailable: 2 };

interface Entry {
  pod: PodRecord;
  /** Gateway clock when this record was last seen in a change or a list. */
  seenAt: number;
}

/** A cached, synchronous registry view. */
export interface RegistryView {
  /** A live pod by id (draining included), or undefined. Never throws. */
  get(podId: string): PodRecord | undefined;
  /** Every live pod (draining included). */
  live(): PodRecord[];
  state(): ViewState;
  /** The scaler's last decision as of the last sync (null until a scaler reported, or while never read). */
  decision(): ScalerDecision | null;
  /** A pod's placement keys as of the last sync (its count and the first `keysListed`), undefined before one was read. */
  keys(podId: string): KeySummary | undefined;
  /** First sync attempt done (success or failure); resolves at most after `firstSyncWaitMs`. */
  ready(): Promise<void>;
  close(): void;
}

export interface RegistryViewOptions {
  logger: Logger;
  /** How long the last known view is served while the registry fails. */
  staleMs: number;
  /** Period of the corrective `list()`. */
  refreshMs: number;
  /** How many of each pod's keys the sync reads (0: counts only). */
  keysListed?: number;
  /** Longest wait for a connecting registry before the first list. */
  firstSyncWaitMs?: number;
  now?: () => number;
}

/** Create and start a view over `registry`. */
export function createRegistryView(registry: Registry, opts: RegistryViewOptions): RegistryView {
  const now = opts.now ?? Date.now;
  const log = opts.logger;
  const entries = new Map<string, Entry>();
  // Cordon marks live apart from the heartbeat (which does not carry them), so an upsert keeps the last known mark.
  const cordoned = new Set<string>();
  let lastSyncOk = -Infinity;
  let failing = false;
  // Until then, pods missing from the registry stay in the view: it just came back from failing, and a
  // promoted replica (entries expired) or a restarted Cluster node (empty) lacks pods that are alive.
  let graceUntil = -Infinity;
  let closed = false;
  let inflight: Promise<void> | undefined;
  // What was last logged: a state, or `starting` (no sync yet, and within staleMs of creation).
  let logged: ViewState | 'starting' | undefined;
  const createdAt = now();
  let decision: ScalerDecision | null = null;
  let keySummaries = new Map<string, KeySummary>();

  const deadAfter = (p: PodRecord) => DEAD_AFTER_HEARTBEATS * p.heartbeatMs;

  function state(): ViewState {
    const t = now();
    const s: ViewState = !failing && lastSyncOk > -Infinity ? 'fresh' : t - lastSyncOk <= opts.staleMs ? 'stale' : 'unavailable';
    // Before the first sync there is nothing to serve (503), but only past staleMs from start-up is that "too long":
    // a registry that is slow to answer its first list is a start-up, not an outage.
    const neverSynced = lastSyncOk === -Infinity;
    const shown = s === 'unavailable' && neverSynced && t - createdAt <= opts.staleMs ? 'starting' : s;
    if (shown !== logged) {
      // Log transitions once; the first `fresh` is the normal start and not worth a line.
      if (shown === 'starting') log.info({ staleMs: opts.staleMs }, 'registry view: no registry sync yet, answering 503 registry_unavailable until the first one');
      else if (shown === 'stale') log.warn({ staleMs: opts.staleMs }, 'registry view: registry failing, serving the last known view');
      else if (shown === 'unavailable' && neverSynced) log.error({ staleMs: opts.staleMs, sinceStartMs: t - createdAt }, 'registry view: no registry sync since start-up, answering 503 registry_unavailable');
      else if (shown === 'unavailable') log.error({ staleMs: opts.staleMs, lastSyncAgoMs: t - lastSyncOk }, 'registry view: registry unavailable too long, answering 503 registry_unavailable');
      else if (logged === 'starting') log.info('registry view: first registry sync done, view fresh');
      else if (logged !== undefined) log.info('registry view: registry reachable again, view fresh');
      logged = shown;
    }
    return s;
  }

  // Fresh: live by our clock. Stale: frozen as of the last good sync.
  function isLive(e: Entry, s: ViewState, t: number): boolean {
    if (s === 'unavailable') return false;
    const ref = s === 'fresh' ? t : lastSyncOk;
    return ref - e.seenAt < deadAfter(e.pod);
  }

  function onChange(c: RegistryChange): void {
    if (c.type === 'remove') entries.delete(c.podId);
    else if (c.type === 'cordon') {
      if (c.mark) cordoned.add(c.podId);
      else cordoned.delete(c.podId);
      const e = entries.get(c.podId);
      if (e) e.pod = { ...e.pod, cordoned: c.mark !== null };
    } else entries.set(c.pod.podId, { pod: { ...c.pod, cordoned: cordoned.has(c.pod.podId) }, seenAt: now() });
  }

  function refresh(): Promise<void> {
    if (closed) return Promise.resolve();
    if (inflight) return inflight;
    const startedAt = now();
    // Read with the list, so `/api/pods` never costs a registry round trip; a failed read keeps the last one.
    const decided = registry.getScalerDecision().then(
      (d) => {
        decision = d;
      },
      () => undefined,
    );
    const listed = registry.list().then(
      (pods) => {
        const t = now();
        const seen = new Set<string>();
        for (const pod of pods) {
          seen.add(pod.podId);
          if (pod.cordoned) cordoned.add(pod.podId);
          else cordoned.delete(pod.podId);
          entries.set(pod.podId, { pod, seenAt: t });
        }
        for (const id of cordoned) if (!seen.has(id)) cordoned.delete(id);
        if (failing) {
          // Back from failing: every pod of the last view gets DEAD_AFTER_HEARTBEATS heartbeats to re-register.
          for (const [id, e] of entries) if (!seen.has(id)) e.seenAt = t;
          graceUntil = t + Math.max(0, ...[...entries.values()].map((e) => deadAfter(e.pod)));
        }
        // An upsert that raced the list (seen after it started) is kept.
        for (const [id, e] of entries) if (!seen.has(id) && e.seenAt < startedAt && t >= graceUntil) entries.delete(id);
        lastSyncOk = t;
        failing = false;
        // One more read per sync (not per request): the keys of the pods just listed. A failed one keeps the last.
        return registry.keySummary([...seen], opts.keysListed ?? 0).then(
          (summary) => {
            keySummaries = summary;
          },
          (err: unknown) => log.debug({ err }, 'registry view: key summary failed'),
        );
      },
      (err: unknown) => {
        if (!failing) log.debug({ err }, 'registry view: list failed');
        failing = true;
      },
    );
    inflight = Promise.all([listed, decided]).then(() => undefined).finally(() => {
      inflight = undefined;
      state();
    });
    return inflight;
  }

  const unsubscribe = registry.subscribe(onChange);
  const offStatus = registry.onStatus((s) => {
    if (s === 'down') {
      failing = true;
      state();
    } else if (s === 'ready') void refresh();
  });
  const timer = setInterval(() => void refresh(), opts.refreshMs);
  timer.unref();

  const firstSync = (async () => {
    // Await only while connecting, so that otherwise the first refresh starts synchronously.
    if (registry.status() === 'connecting') await settledWithin(registry, opts.firstSyncWaitMs ?? opts.refreshMs);
    await refresh();
  })();

  return {
    get(podId) {
      const e = entries.get(podId);
      if (!e) return undefined;
      return isLive(e, state(), now()) ? e.pod : undefined;
    },
    live() {
      const s = state();
      const t = now();
      const out: PodRecord[] = [];
      for (const e of entries.values()) if (isLive(e, s, t)) out.push(e.pod);
      return out;
    },
    state,
    decision: () => decision,
    keys: (podId) => keySummaries.get(podId),
    ready: () => firstSync,
    close() {
      closed = true;
      clearInterval(timer);
      unsubscribe();
      offStatus();
    },
  };
}
