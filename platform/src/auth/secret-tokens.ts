/**
 * Opaque secret tokens (refresh, verification, reset): 256 random bits given
 * to the client once, stored only as their sha256 so a database leak gives
 * nobody a usable token. sha256 (not argon2) is enough: the input is random.
 */
import { createHash, randomBytes } from 'node:crypto';

export function hashSecretToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** A fresh token and the hash to store. */
export function newSecretToken(): { token: string; hash: Buffer } {
  const token = randomBytes(32).toString('base64url');
  return { token, hash: hashSecretToken(token) };
}

/** Shape check for a token received from a client (43 base64url characters). */
export const SECRET_TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;
