/** Setting a new password: one transaction with its event, then the other sessions end. */
import { log } from '../log.ts';
import { enqueue, transact } from '../outbox.ts';
import { hashPassword } from './passwords.ts';
import { endUserSessions, requireSessionStore } from './sessions.ts';
import type { Tx } from '../db/index.ts';

/**
 * Stores `password` for the user `resolveUser` returns inside the
 * transaction (undefined aborts with nothing changed), emits
 * `user.password_changed`, then ends every session but `keepSession`.
 * Redis is checked first: a password change whose old sessions survive would
 * defeat its purpose.
 */
export async function setPassword(
  resolveUser: (t: Tx) => Promise<{ id: string; email: string } | undefined>,
  password: string,
  o: { keepSession?: string; source: string },
): Promise<{ userId: string; email: string; endedSessions: number } | undefined> {
  await requireSessionStore();
  const passwordHash = await hashPassword(password);
  const user = await transact('auth', async (t) => {
    const u = await resolveUser(t);
    if (!u) return undefined;
    await t.none('UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1', [u.id, passwordHash]);
    await enqueue(t, 'user.password_changed', { customerId: u.id, email: u.email }, { subject: u.id, source: o.source });
    return u;
  });
  if (!user) return undefined;
  const endedSessions = await endUserSessions(user.id, o.keepSession);
  log.info({ userId: user.id, endedSessions, via: o.source }, 'password changed');
  return { userId: user.id, email: user.email, endedSessions };
}
