/** Scaler events for the status page: recorded in the registry, never failing the caller. */
import type { Logger } from 'pino';
import type { EdgeEvent, Registry } from '../src/registry/registry.js';

/** Record one event; a registry that cannot take it is logged at debug and otherwise ignored. */
export type RecordEvent = (kind: EdgeEvent['kind'], message: string, podId?: string) => void;

/** An event recorder on `registry`, stamped with `now()`. */
export function eventRecorder(registry: Registry, logger: Logger, now: () => number): RecordEvent {
  return (kind, message, podId) => {
    registry.pushEvent({ at: now(), kind, message, ...(podId ? { podId } : {}) }).catch((err: unknown) => logger.debug({ err }, 'registry event not recorded'));
  };
}
