/** In-process registry for `dev` and single-process tests: liveness by timestamps. */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { RECENT_EVENTS_DEFAULT_LIMIT } from '../constants.js';
import { checkPodRecord, createRecordGuard, type RecordSource } from './record.js';
import { assertClaimArgs, EVENT_LOG_LENGTH, isLive, KEY_SUMMARY_EXACT, type KeySummary, type CordonMark, type EdgeEvent, type PodRecord, type Registry, type RegistryChange, type RegistryStatus, type ScalerDecision } from './registry.js';

/** Create a memory registry. `now` is injectable for tests; `logger` gets the invalid-record lines. */
export function createMemoryRegistry(opts: { now?: () => number; logger?: Logger } = {}): Registry {
  const now = opts.now ?? Date.now;
  // Records come from this process, but every reader applies the same checks whatever the backend.
  const guard = createRecordGuard(opts.logger);
  const valid = (p: PodRecord, id: string, source: RecordSource) => guard.accept(checkPodRecord(p, id), id, source);
  const pods = new Map<string, PodRecord>();
  const bus = new EventEmitter();
  bus.setMaxListeners(0);
  let decision: ScalerDecision | null = null;
  const events: EdgeEvent[] = [];
  const cordons = new Map<string, { mark: CordonMark; until: number }>();
  const markOf = (podId: string): CordonMark | undefined => {
    const c = cordons.get(podId);
    if (c && c.until > now()) return c.mark;
    cordons.delete(podId);
    return undefined;
  };
  const withCordon = (p: PodRecord): PodRecord => ({ ...p, cordoned: markOf(p.podId) !== undefined });
  let state: RegistryStatus = 'ready';
  // One map is the claim table: every claim is a synchronous read-modify-write, so it is atomic in this process.
  const claims = new Map<string, { podId: string; until: number }>();
  const claimed = new Map<string, Set<string>>(); // pod id → its keys (may hold expired ones; readers check)
  const ownerNow = (key: string): string | undefined => {
    const c = claims.get(key);
    if (c && c.until > now()) return c.podId;
    if (c) drop(key, c.podId);
    return undefined;
  };
  const drop = (key: string, podId: string) => {
    claims.delete(key);
    const set = claimed.get(podId);
    set?.delete(key);
    if (set?.size === 0) claimed.delete(podId);
  };
  const hold = (key: string, podId: string, ttlMs: number) => {
    claims.set(key, { podId, until: now() + ttlMs });
    let set = claimed.get(podId);
    if (!set) claimed.set(podId, (set = new Set()));
    set.add(key);
  };
  const keysHeld = (podId: string) => [...(claimed.get(podId) ?? [])].filter((k) => ownerNow(k) === podId).sort();

  const live = (p: PodRecord | undefined) => (p && isLive(p, now()) ? p : undefined);
  const emit = (change: RegistryChange) => queueMicrotask(() => bus.emit('change', change));

  return {
    kind: 'memory',
    async heartbeat(pod) {
      const rec = { ...pod };
      pods.set(pod.podId, rec);
      const checked = valid(rec, pod.podId, 'change');
      if (checked) emit({ type: 'upsert', pod: withCordon(checked) });
    },
    async remove(podId) {
      if (pods.delete(podId)) emit({ type: 'remove', podId });
    },
    async list() {
      const out: PodRecord[] = [];
      for (const [id, p] of pods) {
        const checked = valid(p, id, 'list');
        if (checked && live(checked)) out.push(withCordon(checked));
        else pods.delete(id);
      }
      return out;
    },
    async get(podId) {
      const stored = pods.get(podId);
      const p = stored && live(valid(stored, podId, 'get'));
      return p ? withCordon(p) : undefined;
    },
    async cordon(podId, mark, ttlMs) {
      cordons.set(podId, { mark: { ...mark }, until: now() + ttlMs });
      emit({ type: 'cordon', podId, mark: { ...mark } });
    },
    async uncordon(podId) {
      if (cordons.delete(podId)) emit({ type: 'cordon', podId, mark: null });
    },
    async cordonOf(podId) {
      const m = markOf(podId);
      return m ? { ...m } : undefined;
    },
    subscribe(listener) {
      const l = (c: RegistryChange) => listener(c);
      bus.on('change', l);
      return () => bus.off('change', l);
    },
    async setScalerDecision(d) {
      decision = { ...d };
    },
    async getScalerDecision() {
      return decision ? { ...decision } : null;
    },
    async pushEvent(ev) {
      events.unshift({ ...ev });
      if (events.length > EVENT_LOG_LENGTH) events.length = EVENT_LOG_LENGTH;
    },
    async recentEvents(limit = RECENT_EVENTS_DEFAULT_LIMIT) {
      return events.slice(0, limit).map((e) => ({ ...e }));
    },
    async claim(key, podId, ttlMs, replace) {
      assertClaimArgs(key, podId, replace);
      const owner = ownerNow(key);
      if (owner !== undefined && owner !== podId && owner !== replace) return owner;
      if (owner !== undefined && owner !== podId) drop(key, owner);
      hold(key, podId, ttlMs);
      return podId;
    },
    async ownerOf(key) {
      return ownerNow(key);
    },
    async renewClaims(podId, keys, ttlMs) {
      const lost: string[] = [];
      for (const key of keys) {
        assertClaimArgs(key, podId);
        const owner = ownerNow(key);
        if (owner === undefined || owner === podId) hold(key, podId, ttlMs);
        else lost.push(key);
      }
      return lost;
    },
    async releaseClaims(podId, keys) {
      for (const key of keys ?? [...(claimed.get(podId) ?? [])]) if (claims.get(key)?.podId === podId) drop(key, podId);
    },
    async keysOf(podId) {
      return keysHeld(podId);
    },
    async keySummary(podIds, limit) {
      const out = new Map<string, KeySummary>();
      const n = Math.max(0, Math.min(KEY_SUMMARY_EXACT, Math.floor(limit)));
      for (const id of podIds) {
        const held = keysHeld(id);
        out.set(id, { count: held.length, keys: held.slice(0, n) });
      }
      return out;
    },
    invalidRecords: () => guard.invalidTotal(),
    status: () => state,
    onStatus(listener) {
      bus.on('status', listener);
      return () => bus.off('status', listener);
    },
    async close() {
      state = 'closed';
      bus.emit('status', state);
      bus.removeAllListeners();
      pods.clear();
      claims.clear();
      claimed.clear();
    },
  };
}
