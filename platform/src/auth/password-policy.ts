/**
 * The policy for new passwords (platform/src/auth/README.md 2): 12 to 128 characters, no composition
 * rules, none of the 1,000 most common passwords (platform/data/common-passwords.txt),
 * a zxcvbn score of at least 3 (so `password1234` and `aaaaaaaaaaaa` fail),
 * nothing built from the user's own email or name.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ZxcvbnFactory } from '@zxcvbn-ts/core';
import { z } from 'zod';
import { repoRoot } from '../config.ts';
import { HttpError } from '../errors.ts';
import { PASSWORD_MAX, PASSWORD_MIN } from './passwords.ts';

let common: Set<string> | undefined;

/** True for one of the 1,000 most common passwords (case-insensitive, as the list is lower case). */
export function isCommonPassword(password: string): boolean {
  common ??= new Set(
    fs
      .readFileSync(path.join(repoRoot, 'platform/data/common-passwords.txt'), 'utf8')
      .split('\n')
      .filter((l) => l && !l.startsWith('#')),
  );
  return common.has(password.toLowerCase());
}

const length = (s: string) => [...s].length; // characters, not UTF-16 units

/** Lowest zxcvbn score (0–4) a new password may have: 3 is "safely unguessable" against an online attack and a slow hash. */
export const MIN_PASSWORD_SCORE = 3;

// Built on first use (about a second of CPU), its dictionaries loaded then too (10 MB of heap, 22 MB with the
// factory's indexes): at start they would delay every cold start of signup, account and password-reset and
// stay in memory in processes that may never judge a password.
let zxcvbn: Promise<ZxcvbnFactory> | undefined;
const strength = () =>
  (zxcvbn ??= Promise.all([import('@zxcvbn-ts/language-common'), import('@zxcvbn-ts/language-en')]).then(
    ([common, en]) => new ZxcvbnFactory({ dictionary: { ...common.dictionary, ...en.dictionary }, graphs: common.adjacencyGraphs, translations: en.translations }),
  ));

/** Who the password belongs to: what it must not be built from. */
export type PasswordOwner = { email?: string; firstName?: string; lastName?: string };

/** The owner's address and names, split into the pieces a person builds a password from (3+ characters). */
function personalWords(o: PasswordOwner): string[] {
  const email = (o.email ?? '').toLowerCase();
  const [local = '', domain = ''] = email.split('@');
  const words = [email, local, domain, domain.split('.')[0] ?? '', ...local.split(/[._+-]+/), o.firstName ?? '', o.lastName ?? ''].map((w) => w.trim().toLowerCase()).filter((w) => length(w) >= 3);
  return [...new Set(words)].sort((a, b) => b.length - a.length); // longest first, so the whole address goes before its parts
}

/** "Add more words that are less common." → "add more words that are less common" (to follow a comma). */
const clause = (s: string) => s.replace(/\.$/, '').replace(/^./, (c) => c.toLowerCase());

/**
 * Why a new password is too weak, as the end of a sentence ("Password …"),
 * or undefined when it is strong enough. Judged by zxcvbn with its common and
 * English dictionaries (a score below MIN_PASSWORD_SCORE is refused), and a
 * password that is the owner's email or name plus a little (what is left once
 * those are removed is itself weak) is refused even when zxcvbn scores the
 * whole as long enough.
 */
export async function passwordWeakness(password: string, owner: PasswordOwner = {}): Promise<string | undefined> {
  const personal = personalWords(owner);
  const judge = await strength();
  const result = judge.check(password, personal);
  if (personal.length) {
    let rest = password.toLowerCase();
    for (const w of personal) rest = rest.split(w).join('');
    if (rest !== password.toLowerCase() && judge.check(rest).score < MIN_PASSWORD_SCORE) {
      return 'is built from your email address or name; choose something unrelated to you';
    }
  }
  if (result.score >= MIN_PASSWORD_SCORE) return undefined;
  if (result.sequence.some((m) => m.pattern === 'dictionary' && m.dictionaryName === 'userInputs')) {
    return 'is built from your email address or name; choose something unrelated to you';
  }
  const why = result.feedback.warning ? clause(result.feedback.warning) : 'is too easy to guess';
  const tip = result.feedback.suggestions[0] ? clause(result.feedback.suggestions[0]) : 'a few unrelated words make a strong password';
  return `is too easy to guess (${why}): ${tip}`;
}

/** A new password: the policy, with a message naming the rule that failed. */
export const newPasswordSchema = z
  .string()
  .refine((s) => length(s) >= PASSWORD_MIN, `must be at least ${PASSWORD_MIN} characters`)
  .refine((s) => length(s) <= PASSWORD_MAX, `must be at most ${PASSWORD_MAX} characters`)
  .refine((s) => !isCommonPassword(s), 'is too common, choose another')
  .superRefine(async (s, ctx) => {
    const weak = length(s) >= PASSWORD_MIN && length(s) <= PASSWORD_MAX && !isCommonPassword(s) ? await passwordWeakness(s) : undefined;
    if (weak) ctx.addIssue({ code: 'custom', message: weak });
  });

/** Adds the owner check to a parsed body: refuses a password built from its own email or name, on `field`. */
export async function refuseOwnerPassword(password: string | undefined, owner: PasswordOwner, field = 'password'): Promise<void> {
  const weak = password === undefined ? undefined : await passwordWeakness(password, owner);
  if (weak) throw HttpError.badRequest(`Invalid ${field}`, { [field]: weak });
}
