/**
 * The socket node's side of keyed placement (DESIGN.md "Keyed placement"). The node is authoritative: a connect
 * carrying `?key=` is admitted only when the registry names this pod the key's owner (claiming the key when
 * nobody holds it and the pod is not cordoned), otherwise `409 key_moved` with the owner's pinned URL. The node
 * then keeps the claims of its keys alive every heartbeat period while it has their sessions, releases a key
 * SOCKET_KEY_GRACE_MS after its last session closed (so a reconnect does not move it), and releases every claim
 * when it drains. A registry that fails never stops a connect: the key is admitted, and the next renewal settles
 * who owns it (the sessions of a key another pod took meanwhile get a `reconnect` notice to meet there).
 */
import type { Logger } from 'pino';
import { DEAD_AFTER_HEARTBEATS } from '../src/constants.js';
import type { Registry } from '../src/registry/registry.js';
import { withTimeout } from './heartbeat.js';
import type { Session } from './session.js';

/** What an upgrade with a key learns: admitted here, or refused with the owner (undefined: nobody may take it here). */
export type KeyVerdict = { admit: true } | { admit: false; owner: string | undefined };

/** The node's key claims. */
export interface KeyKeeper {
  /** May a session of `key` open on this pod? Never rejects. */
  admit(key: string): Promise<KeyVerdict>;
  /** A session carrying a key opened. */
  opened(session: Session): void;
  /** A session carrying a key closed. */
  closed(session: Session): void;
  /** Refresh the claims of the keys this pod has sessions of (every heartbeat period). Never rejects. */
  renew(): Promise<void>;
  /** Drop every claim of this pod and stop renewing (drain): the keys move on their next assign. Never rejects. */
  releaseAll(): Promise<void>;
  /** Cancel the grace timers. */
  stop(): void;
}

/** Options of createKeyKeeper. */
export interface KeyKeeperOptions {
  registry: Registry;
  podId: string;
  heartbeatMs: number;
  /** SOCKET_KEY_GRACE_MS. */
  graceMs: number;
  /** The scaler cordoned this pod: it keeps its keys but claims no new ones. */
  cordoned(): boolean;
  /** Tell the sessions of a key another pod owns now to reconnect (and close them). */
  moved(sessions: Session[]): void;
  logger: Logger;
}

/** Start keeping this pod's claims. */
export function createKeyKeeper(opts: KeyKeeperOptions): KeyKeeper {
  const { registry, podId, logger } = opts;
  const ttlMs = DEAD_AFTER_HEARTBEATS * opts.heartbeatMs;
  const local = new Map<string, { sessions: Set<Session>; grace?: NodeJS.Timeout }>();
  let released = false;
  let failing = false;
  const failed = (err: unknown, what: string) => {
    // Logged once per outage: every keyed connect would repeat it.
    if (!failing) logger.warn({ err }, `keyed placement: registry ${what} failed; keys are admitted and settled on the next renewal`);
    failing = true;
  };
  const ok = () => {
    if (failing) logger.info('keyed placement: registry answering again');
    failing = false;
  };

  const release = (key: string) => {
    const entry = local.get(key);
    if (!entry || entry.sessions.size > 0) return;
    local.delete(key);
    if (released) return;
    registry.releaseClaims(podId, [key]).catch((err: unknown) => failed(err, 'release'));
  };

  return {
    async admit(key) {
      if (released) return { admit: false, owner: undefined };
      try {
        // A cordoned pod claims nothing new, but a key it already has sessions of is not new.
        const owner = opts.cordoned() && !local.has(key) ? await withTimeout(registry.ownerOf(key), opts.heartbeatMs, 'registry ownerOf') : await withTimeout(registry.claim(key, podId, ttlMs), opts.heartbeatMs, 'registry claim');
        ok();
        return owner === podId ? { admit: true } : { admit: false, owner };
      } catch (err) {
        failed(err, 'claim');
        return { admit: true };
      }
    },
    opened(session) {
      const key = session.key;
      if (key === undefined) return;
      let entry = local.get(key);
      if (!entry) local.set(key, (entry = { sessions: new Set() }));
      entry.sessions.add(session);
      clearTimeout(entry.grace);
      entry.grace = undefined;
    },
    closed(session) {
      const key = session.key;
      const entry = key === undefined ? undefined : local.get(key);
      if (!entry || !entry.sessions.delete(session) || entry.sessions.size > 0) return;
      if (opts.graceMs === 0) return release(key!);
      entry.grace = setTimeout(() => release(key!), opts.graceMs);
      entry.grace.unref();
    },
    async renew() {
      if (released || local.size === 0) return;
      try {
        const lost = await withTimeout(registry.renewClaims(podId, [...local.keys()], ttlMs), opts.heartbeatMs, 'registry renewClaims');
        ok();
        for (const key of lost) {
          const entry = local.get(key);
          if (!entry) continue;
          logger.warn({ key, sessions: entry.sessions.size }, 'keyed placement: another pod owns a key this pod has sessions of; telling them to reconnect');
          clearTimeout(entry.grace);
          local.delete(key);
          opts.moved([...entry.sessions]);
        }
      } catch (err) {
        failed(err, 'renewal');
      }
    },
    async releaseAll() {
      if (released) return;
      released = true;
      for (const entry of local.values()) clearTimeout(entry.grace);
      try {
        await withTimeout(registry.releaseClaims(podId), opts.heartbeatMs, 'registry releaseClaims');
      } catch (err) {
        logger.warn({ err }, 'keyed placement: claims not released; they expire after 3 heartbeats');
      }
    },
    stop() {
      for (const entry of local.values()) clearTimeout(entry.grace);
    },
  };
}
