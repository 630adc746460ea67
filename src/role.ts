/** The shape every role exports: `start(config, deps)` returning a handle. */
import type { Logger } from 'pino';
import type { Registry } from './registry/registry.js';

/** What a started role gives back. `close()` is idempotent and resolves when the role has stopped. */
export interface RoleHandle {
  close(): Promise<void>;
}

/** Shared dependencies injected into a role; tests pass their own. */
export interface RoleDeps {
  logger: Logger;
  /** When omitted the role creates one from config and owns it. */
  registry?: Registry;
}
