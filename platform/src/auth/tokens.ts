/**
 * Access tokens (platform/src/auth/README.md 2): JWTs signed with EdDSA, valid 10 minutes, carrying
 * `sub` (user id), `sid` (session id), `role`, `iss`, `aud`, `exp`, `iat`,
 * `jti`. Short-lived because they are bearer credentials; session liveness
 * (verify.ts) makes a logout effective before they expire. Verification
 * uses public keys only (keys.ts); signing is in signing.ts.
 */
import { errors, jwtVerify, type JWTHeaderParameters } from 'jose';
import { config } from '../config.ts';
import { verificationKeys } from './keys.ts';

export type Role = 'customer' | 'admin';
export const ACCESS_TOKEN_SECONDS = 600;

export type AccessClaims = { userId: string; sessionId: string; role: Role };

/** Thrown for any token that must not be accepted; the message is safe to show. */
export class InvalidTokenError extends Error {}

/**
 * Verifies signature (only EdDSA, only a known `kid`), expiry, issuer and
 * audience, and the claim shapes. `alg: none` and any other algorithm are
 * refused by the `algorithms` allow-list before any key is looked at.
 */
export async function verifyAccessToken(token: string): Promise<AccessClaims> {
  const verify = await verificationKeys();
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
