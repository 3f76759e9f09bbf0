/**
 * One operation at a time per instance. Provisioning and the ops can take
 * minutes; a redelivered or concurrent command for the same instance must
 * not run beside it. A PostgreSQL session advisory lock, held on one pooled
 * connection for the operation, is released even if the process dies. That
 * connection comes from a pool of its own (lockDb), so the operation's work
 * never waits for a connection that a lock holds.
 */
import { lockDb } from '../db/index.ts';
import { HttpError } from '../errors.ts';

const NAMESPACE = 7007;

/**
 * Runs `fn` holding the instance's lock. When another operation holds it the
 * answer is a 409, which the broker retries later (by then the first one
 * finished and the retry sees its result).
 */
export async function withInstanceLock<T>(instanceId: string, fn: () => Promise<T>): Promise<T> {
  return lockDb('instance').task(async (c) => {
    const { ok } = await c.one<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, hashtext($2)) AS ok', [NAMESPACE, instanceId]);
    if (!ok) throw new HttpError(409, 'busy', 'Another operation is running on this instance; retry later');
    try {
      return await fn();
    } finally {
      await c.one('SELECT pg_advisory_unlock($1, hashtext($2)) AS ok', [NAMESPACE, instanceId]);
    }
  });
}
