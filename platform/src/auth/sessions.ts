/**
 * Sessions (SPEC 2): a row in `user_sessions` (the truth) mirrored in Redis
 * (liveness.ts, what every function checks). Each session has one current
 * opaque refresh token (30 days, rotated on every use); presenting a rotated
 * one again means it was stolen or replayed, so the whole session ends.
 */
import { randomUUID } from 'node:crypto';
import { db, type Tx } from '../db/index.ts';
import { HttpError } from '../errors.ts';
import { log } from '../log.ts';
import { connectedRedis, markDead, markLive, type LiveSession } from './liveness.ts';
import { hashSecretToken, newSecretToken } from './secret-tokens.ts';
import { issueAccessToken, type Role } from './tokens.ts';
import { setSessionFallback } from './verify.ts';

export const REFRESH_TOKEN_DAYS = 30;
const REFRESH_MS = REFRESH_TOKEN_DAYS * 86_400_000;

export type TokenPair = { accessToken: string; refreshToken: string; expiresIn: number; tokenType: 'Bearer' };
export type SessionInfo = { id: string; createdAt: Date; lastUsedAt: Date; expiresAt: Date; ip: string | null; userAgent: string | null };

/** Redis liveness is a mirror: when it cannot be written the database still holds the session. */
async function mirrorLive(sid: string, s: LiveSession, expiresAt: Date): Promise<void> {
  try {
    await markLive(sid, s, expiresAt);
  } catch (err) {
    log.warn({ err: (err as Error).message, sessionId: sid }, 'could not mark session live in Redis; the next refresh will');
  }
}

async function insertRefreshToken(t: Tx, sessionId: string, expiresAt: Date): Promise<string> {
  const { token, hash } = newSecretToken();
  await t.none('INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)', [hash, sessionId, expiresAt]);
  return token;
}

/** Opens a session for a user who just proved who they are; returns the token pair. */
export async function openSession(
  user: { id: string; role: Role },
  client: { ip?: string; userAgent?: string } = {},
): Promise<TokenPair & { sessionId: string }> {
  const sessionId = randomUUID();
  const expiresAt = new Date(Date.now() + REFRESH_MS);
  const refreshToken = await db('auth').tx(async (t) => {
    await t.none(
      'INSERT INTO user_sessions (id, user_id, expires_at, ip, user_agent) VALUES ($1, $2, $3, $4, $5)',
      [sessionId, user.id, expiresAt, client.ip?.slice(0, 100) ?? null, client.userAgent?.slice(0, 300) ?? null],
    );
    return insertRefreshToken(t, sessionId, expiresAt);
  });
  await mirrorLive(sessionId, { userId: user.id, role: user.role }, expiresAt);
  const access = await issueAccessToken({ userId: user.id, sessionId, role: user.role });
  return { ...access, refreshToken, tokenType: 'Bearer', sessionId };
}

type Rotation = { kind: 'ok'; pair: TokenPair } | { kind: 'reused'; sessionId: string } | { kind: 'invalid' };

/**
 * Exchanges a refresh token for a new pair. The old token is marked used in
 * the same statement that checks it, so two concurrent uses cannot both win:
 * the loser is treated as reuse and ends the session.
 */
export async function rotateRefreshToken(refreshToken: string): Promise<TokenPair> {
  const hash = hashSecretToken(refreshToken);
  const now = Date.now();
  const expiresAt = new Date(now + REFRESH_MS);
  const result = await db('auth').tx<Rotation & { live?: LiveSession & { sid: string } }>(async (t) => {
    const used = await t.oneOrNone<{ sessionId: string; userId: string; role: Role }>(
      `UPDATE refresh_tokens r SET used_at = now()
       FROM user_sessions s JOIN users u ON u.id = s.user_id
       WHERE r.token_hash = $1 AND r.used_at IS NULL AND r.expires_at > now()
         AND s.id = r.session_id AND s.expires_at > now()
       RETURNING s.id AS "sessionId", u.id AS "userId", u.role`,
      [hash],
    );
    if (!used) {
      const old = await t.oneOrNone<{ sessionId: string; usedAt: Date | null }>(
        'SELECT session_id AS "sessionId", used_at AS "usedAt" FROM refresh_tokens WHERE token_hash = $1',
        [hash],
      );
      return old?.usedAt ? { kind: 'reused', sessionId: old.sessionId } : { kind: 'invalid' };
    }
    await t.none('UPDATE user_sessions SET last_used_at = now(), expires_at = $2 WHERE id = $1', [used.sessionId, expiresAt]);
    const next = await insertRefreshToken(t, used.sessionId, expiresAt);
    const access = await issueAccessToken({ userId: used.userId, sessionId: used.sessionId, role: used.role });
    return { kind: 'ok', pair: { ...access, refreshToken: next, tokenType: 'Bearer' }, live: { sid: used.sessionId, userId: used.userId, role: used.role } };
  });
  if (result.kind === 'reused') {
    log.warn({ sessionId: result.sessionId }, 'rotated refresh token presented again: session revoked');
    await endSessions([result.sessionId]);
    throw HttpError.unauthorized('Refresh token already used; the session has been ended');
  }
  if (result.kind === 'invalid') throw HttpError.unauthorized('Invalid or expired refresh token');
  await mirrorLive(result.live!.sid, result.live!, expiresAt);
  return result.pair;
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
  const rows = await db('auth').manyOrNone<{ id: string }>(
    'SELECT id FROM user_sessions WHERE user_id = $1 AND ($2::uuid IS NULL OR id <> $2::uuid)',
    [userId, keep ?? null],
  );
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
