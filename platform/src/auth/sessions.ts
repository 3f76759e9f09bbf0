/**
 * Sessions (platform/src/auth/README.md 2): a row in `user_sessions` (the truth) mirrored in Redis
 * (liveness.ts, what every function checks). Each session has one current
 * opaque refresh token (30 days, rotated on every use); presenting a rotated
 * one again means it was stolen or replayed, so the whole session ends.
 *
 * Opening and refreshing a session sign access tokens: those live in
 * session-tokens.ts, so only the functions that sign (login, refresh) load
 * the private key (deploy/analyze.ts gives it by what the code imports).
 */
import { db } from '../db/index.ts';
import { HttpError } from '../errors.ts';
import { log } from '../log.ts';
import { connectedRedis, markDead, markLive, type LiveSession } from './liveness.ts';
import type { Role } from './tokens.ts';
import { setSessionFallback } from './verify.ts';

export type SessionInfo = { id: string; createdAt: Date; lastUsedAt: Date; expiresAt: Date; ip: string | null; userAgent: string | null };

/** Redis liveness is a mirror: when it cannot be written the database still holds the session. */
export async function mirrorLive(sid: string, s: LiveSession, expiresAt: Date): Promise<void> {
  try {
    await markLive(sid, s, expiresAt);
  } catch (err) {
    log.warn({ err: (err as Error).message, sessionId: sid }, 'could not mark session live in Redis; the next refresh will');
  }
}

/**
 * Ends sessions everywhere. Redis goes first and must succeed (else 503 and
 * nothing changed): a session deleted from the database but still live in
 * Redis would keep its access tokens working. Redis is cleared again after
 * the delete in case a refresh raced in between.
 */
export async function endSessions(sessionIds: string[]): Promise<void> {
  if (!sessionIds.length) return;
  try {
    await markDead(sessionIds);
  } catch {
    throw HttpError.unavailable('The session store');
  }
  await db('auth').none('DELETE FROM user_sessions WHERE id IN ($1:csv)', [sessionIds]);
  await markDead(sessionIds).catch(() => {});
}

/** Ends every session of a user, except `keep` (password change keeps the caller's own). Returns how many ended. */
export async function endUserSessions(userId: string, keep?: string): Promise<number> {
  const rows = await db('auth').manyOrNone<{ id: string }>('SELECT id FROM user_sessions WHERE user_id = $1 AND ($2::uuid IS NULL OR id <> $2::uuid)', [userId, keep ?? null]);
  await endSessions(rows.map((r) => r.id));
  return rows.length;
}

/** The live sessions of a user, newest first. */
export function listSessions(userId: string): Promise<SessionInfo[]> {
  return db('auth').manyOrNone<SessionInfo>(
    `SELECT id, created_at AS "createdAt", last_used_at AS "lastUsedAt", expires_at AS "expiresAt", ip, user_agent AS "userAgent"
     FROM user_sessions WHERE user_id = $1 AND expires_at > now() ORDER BY created_at DESC`,
    [userId],
  );
}

/** Whether `sessionId` is one of the user's: a session id alone must not let one user end another's session. */
export async function sessionOwnedBy(sessionId: string, userId: string): Promise<boolean> {
  return Boolean(await db('auth').oneOrNone('SELECT 1 FROM user_sessions WHERE id = $1 AND user_id = $2', [sessionId, userId]));
}

/** Liveness from the database, for when Redis is down. */
export async function sessionFromDatabase(sid: string): Promise<LiveSession | undefined> {
  const row = await db('auth').oneOrNone<{ userId: string; role: Role }>(
    `SELECT u.id AS "userId", u.role FROM user_sessions s JOIN users u ON u.id = s.user_id
     WHERE s.id = $1 AND s.expires_at > now()`,
    [sid],
  );
  return row ?? undefined;
}

/**
 * Lets `authenticate` fall back to `user_sessions` when Redis is down. Only
 * the auth functions call this: they own the auth database (see verify.ts).
 */
export function useSessionDatabaseFallback(): void {
  setSessionFallback(sessionFromDatabase);
}

/**
 * Fails with 503 unless Redis answers. Called before a change that must end
 * sessions (password reset), so the change is not made when the sessions it
 * should end could not be ended.
 */
export async function requireSessionStore(): Promise<void> {
  try {
    await (await connectedRedis()).ping();
  } catch {
    throw HttpError.unavailable('The session store');
  }
}
