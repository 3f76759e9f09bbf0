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
 * Tokens already verified, by their exact text: a portal page sends the same
 * token on every call for up to 10 minutes, and the EdDSA check was 12% of an
 * authenticated read's CPU (issue 23). Only a byte-identical token hits, so a
 * changed signature or claim is verified afresh; an entry is only good while
 * its `exp` holds and for the key set that verified it (a rotation that drops
 * a key drops its tokens). Liveness is not cached: verify.ts reads it per call.
 */
const verified = new Map<string, { claims: AccessClaims; expMs: number; keys: Map<string, unknown> }>();
const VERIFIED_MAX = 10_000;
const CLOCK_TOLERANCE_S = 5;

/**
 * Verifies signature (only EdDSA, only a known `kid`), expiry, issuer and
 * audience, and the claim shapes. `alg: none` and any other algorithm are
 * refused by the `algorithms` allow-list before any key is looked at.
 */
export async function verifyAccessToken(token: string): Promise<AccessClaims> {
  const verify = await verificationKeys();
  const hit = verified.get(token);
  if (hit && hit.keys === verify && Date.now() < hit.expMs) return { ...hit.claims };
  if (hit) verified.delete(token);
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
        clockTolerance: CLOCK_TOLERANCE_S,
      },
    );
    const { sub, sid, role } = payload as { sub?: unknown; sid?: unknown; role?: unknown };
    if (typeof sub !== 'string' || typeof sid !== 'string' || (role !== 'customer' && role !== 'admin')) {
      throw new InvalidTokenError('malformed claims');
    }
    const claims: AccessClaims = { userId: sub, sessionId: sid, role };
    // Oldest first out: Map keeps insertion order.
    if (verified.size >= VERIFIED_MAX) verified.delete(verified.keys().next().value as string);
    verified.set(token, { claims, expMs: (payload.exp! + CLOCK_TOLERANCE_S) * 1000, keys: verify });
    return { ...claims };
  } catch (err) {
    if (err instanceof InvalidTokenError) throw err;
    if (err instanceof errors.JOSEError || err instanceof TypeError) throw new InvalidTokenError(err instanceof errors.JWTExpired ? 'token expired' : 'invalid token');
    throw err;
  }
}
