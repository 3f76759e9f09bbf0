/**
 * One ioredis connection per process, with the namespace prefix so tests and
 * several local platforms never share keys. Commands issued while the first
 * connection is being made wait for it; once Redis is lost, a command fails
 * after one reconnection attempt (callers map that to 503 or fail closed)
 * instead of queueing forever.
 */
import { Redis } from 'ioredis';
import { config } from './config.ts';

let client: Redis | undefined;

export function redis(): Redis {
  if (!client) {
    client = new Redis(config().REDIS_URL, {
      keyPrefix: config().REDIS_PREFIX,
      maxRetriesPerRequest: 1,
      enableOfflineQueue: true,
      retryStrategy: (times) => Math.min(times * 100, 1000),
      connectTimeout: 2000,
      commandTimeout: 2000,
      lazyConnect: false,
    });
    client.on('error', () => {}); // surfaced per command; avoid unhandled 'error' noise
  }
  return client;
}

/** Closes the connection (shutdown, tests). */
export async function closeRedis(): Promise<void> {
  const c = client;
  client = undefined;
  if (c) await c.quit().catch(() => c.disconnect());
}
