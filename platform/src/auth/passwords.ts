/**
 * Password policy and hashing (platform/src/auth/README.md 2): 12 to 128 characters, no composition
 * rules, none of the 1,000 most common passwords (platform/data/common-passwords.txt),
 * argon2id with OWASP's parameters m=19456 KiB, t=2, p=1.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { hash, verify, type Algorithm } from '@node-rs/argon2';
import { z } from 'zod';
import { repoRoot } from '../config.ts';

/** `Algorithm.Argon2id` is a const enum, which isolated modules cannot import by value. */
const ARGON2ID = 2 as Algorithm;
export const ARGON2_OPTIONS = { algorithm: ARGON2ID, memoryCost: 19456, timeCost: 2, parallelism: 1 } as const;

export const PASSWORD_MIN = 12;
export const PASSWORD_MAX = 128;

let common: Set<string> | undefined;

/** True for one of the 1,000 most common passwords (case-insensitive, as the list is lower case). */
export function isCommonPassword(password: string): boolean {
  common ??= new Set(
    fs.readFileSync(path.join(repoRoot, 'platform/data/common-passwords.txt'), 'utf8')
      .split('\n').filter((l) => l && !l.startsWith('#')),
  );
  return common.has(password.toLowerCase());
}

const length = (s: string) => [...s].length; // characters, not UTF-16 units

/** A new password: the policy, with a message naming the rule that failed. */
export const newPasswordSchema = z
  .string()
  .refine((s) => length(s) >= PASSWORD_MIN, `must be at least ${PASSWORD_MIN} characters`)
  .refine((s) => length(s) <= PASSWORD_MAX, `must be at most ${PASSWORD_MAX} characters`)
  .refine((s) => !isCommonPassword(s), 'is too common, choose another');

/** A password typed to log in: bounded so nobody makes us hash megabytes. */
export const givenPasswordSchema = z.string().min(1, 'required').max(PASSWORD_MAX * 4, 'too long');

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
