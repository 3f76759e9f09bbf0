/**
 * Access tokens (SPEC 2): JWTs signed with EdDSA, valid 10 minutes, carrying
 * `sub` (user id), `sid` (session id), `role`, `iss`, `aud`, `exp`, `iat`,
 * `jti`. Short-lived because they are bearer credentials; session liveness
 * (verify.ts) makes a logout effective before they expire.
 */
import { randomUUID } from 'node:crypto';
import { errors, jwtVerify, SignJWT, type JWTHeaderParameters } from 'jose';
import { config } from '../config.ts';
import { keyRing } from './keys.ts';

export type Role = 'customer' | 'admin';
export const ACCESS_TOKEN_SECONDS = 600;

export type AccessClaims = { userId: string; sessionId: string; role: Role };

/** Signs a new access token for a live session. */
export async function issueAccessToken(c: AccessClaims): Promise<{ accessToken: string; expiresIn: number }> {
  const { signing } = await keyRing();
  const accessToken = await new SignJWT({ sid: c.sessionId, role: c.role })
    .setProtectedHeader({ alg: 'EdDSA', kid: signing.kid, typ: 'JWT' })
    .setSubject(c.userId)
    .setIssuer(config().JWT_ISSUER)
    .setAudience(config().JWT_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(`${ACCESS_TOKEN_SECONDS}s`)
    .setJti(randomUUID())
    .sign(signing.privateKey);
  return { accessToken, expiresIn: ACCESS_TOKEN_SECONDS };
}

/** Thrown for any token that must not be accepted; the message is safe to show. */
export class InvalidTokenError extends Error {}

/**
 * Verifies signature (only EdDSA, only a known `kid`), expiry, issuer and
 * audience, and the claim shapes. `alg: none` and any other algorithm are
 * refused by the `algorithms` allow-list before any key is looked at.
 */
export async function verifyAccessToken(token: string): Promise<AccessClaims> {
  const { verify } = await keyRing();
  try {
    const { payload } = await jwtVerify(
      token,
      async (header: JWTHeaderParameters) => {
        const key = header.kid ? verify.get(header.kid) : undefined;
        if (!key) throw new InvalidTokenError('unknown signing key');
        return key;
      },
      {
        algorithms: ['EdDSA'],
        issuer: config().JWT_ISSUER,
        audience: config().JWT_AUDIENCE,
        requiredClaims: ['sub', 'sid', 'role', 'exp', 'iat', 'jti'],
        clockTolerance: 5,
      },
    );
    const { sub, sid, role } = payload as { sub?: unknown; sid?: unknown; role?: unknown };
    if (typeof sub !== 'string' || typeof sid !== 'string' || (role !== 'customer' && role !== 'admin')) {
      throw new InvalidTokenError('malformed claims');
    }
    return { userId: sub, sessionId: sid, role };
  } catch (err) {
    if (err instanceof InvalidTokenError) throw err;
    if (err instanceof errors.JOSEError || err instanceof TypeError) throw new InvalidTokenError(err instanceof errors.JWTExpired ? 'token expired' : 'invalid token');
    throw err;
  }
}
