/** `createRegistry`: the memory backend unless REDIS_URL is set. */
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { REDIS_RECONNECT_MAX_MS } from '../constants.js';
import { createMemoryRegistry } from './memory.js';
import { createRedisRegistry } from './redis.js';
import type { Registry } from './registry.js';

export * from './registry.js';
export { createMemoryRegistry } from './memory.js';
export { createRedisRegistry } from './redis.js';
export { checkPodRecord, MAX_RECORD_BYTES } from './record.js';

/**
 * Pick the backend from config. With HEARTBEAT_MS the Redis reconnect backoff is capped at one heartbeat, so
 * after a failover (a Sentinel promotion, a Cluster node back) every writer is back within a heartbeat or two.
 */
export function createRegistry(config: Pick<Config, 'redisUrl' | 'redisPrefix'> & Partial<Pick<Config, 'heartbeatMs'>>, logger?: Logger): Registry {
  if (config.redisUrl) {
    const maxBackoffMs = config.heartbeatMs ? Math.min(config.heartbeatMs, REDIS_RECONNECT_MAX_MS) : undefined;
    return createRedisRegistry({ url: config.redisUrl, prefix: config.redisPrefix, ...(logger ? { logger } : {}), ...(maxBackoffMs ? { maxBackoffMs } : {}) });
  }
  return createMemoryRegistry(logger ? { logger } : {});
}
