/** In-process registry for `dev` and single-process tests: liveness by timestamps. */
import { EventEmitter } from 'node:events';
import { RECENT_EVENTS_DEFAULT_LIMIT } from '../constants.js';
import { EVENT_LOG_LENGTH, isLive, type CordonMark, type EdgeEvent, type PodRecord, type Registry, type RegistryChange, type RegistryStatus, type ScalerDecision } from './registry.js';

/** Create a memory registry. `now` is injectable for tests. */
export function createMemoryRegistry(opts: { now?: () => number } = {}): Registry {
  const now = opts.now ?? Date.now;
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

  const live = (p: PodRecord | undefined) => (p && isLive(p, now()) ? p : undefined);
  const emit = (change: RegistryChange) => queueMicrotask(() => bus.emit('change', change));

  return {
    kind: 'memory',
    async heartbeat(pod) {
      const rec = { ...pod };
      pods.set(pod.podId, rec);
      emit({ type: 'upsert', pod: withCordon(rec) });
    },
    async remove(podId) {
      if (pods.delete(podId)) emit({ type: 'remove', podId });
    },
    async list() {
      const out: PodRecord[] = [];
      for (const [id, p] of pods) {
        if (live(p)) out.push(withCordon(p));
        else pods.delete(id);
      }
      return out;
    },
    async get(podId) {
      const p = live(pods.get(podId));
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
    },
  };
}
