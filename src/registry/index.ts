/** `createRegistry`: the memory backend unless REDIS_URL is set. */
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { createMemoryRegistry } from './memory.js';
import { createRedisRegistry } from './redis.js';
import type { Registry } from './registry.js';

export * from './registry.js';
export { createMemoryRegistry } from './memory.js';
export { createRedisRegistry } from './redis.js';
export { checkPodRecord, MAX_RECORD_BYTES } from './record.js';

/** Pick the backend from config. */
export function createRegistry(config: Pick<Config, 'redisUrl' | 'redisPrefix'>, logger?: Logger): Registry {
  if (config.redisUrl) return createRedisRegistry({ url: config.redisUrl, prefix: config.redisPrefix, ...(logger ? { logger } : {}) });
  return createMemoryRegistry(logger ? { logger } : {});
}
