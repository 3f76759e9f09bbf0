/**
 * Password hashing (platform/src/auth/README.md 2): argon2id with OWASP's
 * parameters m=19456 KiB, t=2, p=1. The policy for new passwords is
 * password-policy.ts, apart so that functions which only check passwords
 * (login) do not load its dictionaries (10 MB of heap per process).
 */
import { randomBytes } from 'node:crypto';
import { hash, verify, type Algorithm } from '@node-rs/argon2';
import { z } from 'zod';

/** `Algorithm.Argon2id` is a const enum, which isolated modules cannot import by value. */
const ARGON2ID = 2 as Algorithm;
export const ARGON2_OPTIONS = { algorithm: ARGON2ID, memoryCost: 19456, timeCost: 2, parallelism: 1 } as const;

export const PASSWORD_MIN = 12;
export const PASSWORD_MAX = 128;

/** A password typed to log in: bounded so nobody makes us hash megabytes. */
export const givenPasswordSchema = z
  .string()
  .min(1, 'required')
  .max(PASSWORD_MAX * 4, 'too long');

/** Hashes a password with argon2id (runs on libuv's thread pool). */
export function hashPassword(password: string): Promise<string> {
  return hash(password, ARGON2_OPTIONS);
}

/** Checks a password against a stored PHC hash; false for a wrong password or a bad hash. */
export async function verifyPassword(phc: string, password: string): Promise<boolean> {
  try {
    return await verify(phc, password);
  } catch {
    return false;
  }
}

let dummy: Promise<string> | undefined;

/**
 * Spends the time of a real verification when there is no user to check, so
 * "no such account" and "wrong password" cannot be told apart by timing.
 */
export async function verifyAgainstDummy(password: string): Promise<false> {
  dummy ??= hashPassword(randomBytes(16).toString('hex'));
  await verifyPassword(await dummy, password);
  return false;
}
