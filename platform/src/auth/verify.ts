/**
 * Authentication of a request's Bearer token, used by `platform/fn` in every
 * function: the token's signature, algorithm, expiry, issuer and audience
 * (tokens.ts), then that its session `sid` is still live.
 *
 * Liveness comes from Redis (liveness.ts). When Redis is down:
 * - the auth functions (signup ... account) fall back to the auth database's
 *   `user_sessions`, which they own; they opt in with
 *   `useSessionDatabaseFallback()` (auth/sessions.ts);
 * - every other function answers 503. Reading `user_sessions` from, say,
 *   `instances` would need the auth database role in a non-auth service,
 *   breaking the one-role-per-service rule; asking the auth side over HTTP
 *   on every request would put `account` on every call path exactly when the
 *   platform is degraded. Failing closed with 503 + Retry-After is honest and
 *   never accepts a logged-out token.
 * If both Redis and the fallback fail: 503.
 */
import { HttpError, isUnavailable } from '../errors.ts';
import { readLiveness, type LiveSession } from './liveness.ts';
import { InvalidTokenError, verifyAccessToken, type Role } from './tokens.ts';

export type { Role };
export type Caller = { userId: string; sessionId: string; role: Role };

type Fallback = (sid: string) => Promise<LiveSession | undefined>;
let fallback: Fallback | undefined;

/**
 * Installs the database lookup used when Redis is down. Only code that owns
 * the auth database calls this (see auth/sessions.ts).
 */
export function setSessionFallback(f: Fallback | undefined): void {
  fallback = f;
}

async function liveSession(sid: string): Promise<LiveSession | undefined> {
  try {
    return await readLiveness(sid);
  } catch (redisErr) {
    if (!fallback) throw HttpError.unavailable('The session store');
    try {
      return await fallback(sid);
    } catch (dbErr) {
      if (isUnavailable(dbErr) || isUnavailable(redisErr)) throw HttpError.unavailable('The session store');
      throw dbErr;
    }
  }
}

/**
 * The caller of a request, from its `Authorization: Bearer <jwt>` header.
 * 401 for a missing, malformed, forged, expired or foreign token and for a
 * session that ended (logout, revoke, password reset); 503 when liveness
 * cannot be checked. The role is the session's current role (admin grant and
 * revoke apply at once), not the one frozen in the token.
 */
export async function authenticate(authorization: string | undefined): Promise<Caller> {
  const m = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*)$/.exec(authorization?.trim() ?? '');
  if (!m) throw HttpError.unauthorized();
  let claims;
  try {
    claims = await verifyAccessToken(m[1]);
  } catch (err) {
    if (err instanceof InvalidTokenError) throw HttpError.unauthorized(err.message === 'token expired' ? 'Token expired' : 'Invalid token');
    throw err;
  }
  const live = await liveSession(claims.sessionId);
  if (!live || live.userId !== claims.userId) throw HttpError.unauthorized('Session ended');
  return { userId: claims.userId, sessionId: claims.sessionId, role: live.role };
}
