/**
 * Opening a session and rotating its refresh token: the two places that
 * sign access tokens (signing.ts). Only `login` and `refresh` import this,
 * so only they are given JWT's private key (locally and on Kubernetes);
 * everything else verifies with public keys (keys.ts).
 */
import { randomUUID } from 'node:crypto';
import { db, type Tx } from '../db/index.ts';
import { HttpError } from '../errors.ts';
import { log } from '../log.ts';
import type { LiveSession } from './liveness.ts';
import { hashSecretToken, newSecretToken } from './secret-tokens.ts';
import { endSessions, mirrorLive } from './sessions.ts';
import { issueAccessToken } from './signing.ts';
import type { Role } from './tokens.ts';

export const REFRESH_TOKEN_DAYS = 30;
const REFRESH_MS = REFRESH_TOKEN_DAYS * 86_400_000;

export type TokenPair = { accessToken: string; refreshToken: string; expiresIn: number; tokenType: 'Bearer' };

async function insertRefreshToken(t: Tx, sessionId: string, expiresAt: Date): Promise<string> {
  const { token, hash } = newSecretToken();
  await t.none('INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)', [hash, sessionId, expiresAt]);
  return token;
}

/** Opens a session for a user who just proved who they are; returns the token pair. */
export async function openSession(user: { id: string; role: Role }, client: { ip?: string; userAgent?: string } = {}): Promise<TokenPair & { sessionId: string }> {
  const sessionId = randomUUID();
  const expiresAt = new Date(Date.now() + REFRESH_MS);
  const { token: refreshToken, hash } = newSecretToken();
  // The session and its first refresh token in one statement (atomic on its
  // own): one round trip instead of BEGIN, two INSERTs and COMMIT on login's path.
  await db('auth').none(
    `WITH session AS (INSERT INTO user_sessions (id, user_id, expires_at, ip, user_agent) VALUES ($1, $2, $3, $4, $5))
     INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES ($6, $1, $3)`,
    [sessionId, user.id, expiresAt, client.ip?.slice(0, 100) ?? null, client.userAgent?.slice(0, 300) ?? null, hash],
  );
  // Both need only the committed session: the Redis mirror and the signature do not wait on each other.
  const [, access] = await Promise.all([mirrorLive(sessionId, { userId: user.id, role: user.role }, expiresAt), issueAccessToken({ userId: user.id, sessionId, role: user.role })]);
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
      const old = await t.oneOrNone<{ sessionId: string; usedAt: Date | null }>('SELECT session_id AS "sessionId", used_at AS "usedAt" FROM refresh_tokens WHERE token_hash = $1', [hash]);
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
