/** Password policy and hashing parameters (SPEC 2), without services. */
import { describe, expect, it } from 'vitest';
import { ARGON2_OPTIONS, hashPassword, verifyAgainstDummy, verifyPassword } from '@saasodoo/platform/auth/passwords';
import { isCommonPassword, newPasswordSchema, passwordWeakness } from '@saasodoo/platform/auth/password-policy';
import { hashSecretToken, newSecretToken, SECRET_TOKEN_PATTERN } from '@saasodoo/platform/auth/secret-tokens';
import { emailSchema } from '@saasodoo/platform/auth/users';
import fs from 'node:fs';
import { repoRoot } from '@saasodoo/platform/config';

const problems = async (p: string) => {
  const r = await newPasswordSchema.safeParseAsync(p);
  return r.success ? [] : r.error.issues.map((i) => i.message);
};

describe('password policy', () => {
  const long = (n: number) => 'violet kayak drums'.repeat(10).slice(0, n);

  it('accepts 12 to 128 characters with no composition rules', async () => {
    expect(await problems('lowercase only words')).toEqual([]);
    expect(await problems(long(128))).toEqual([]);
  });

  it('refuses shorter or longer, counting characters rather than UTF-16 units', async () => {
    expect(await problems('a'.repeat(11))).toEqual(['must be at least 12 characters']);
    expect(await problems(long(129))).toEqual(['must be at most 128 characters']);
    expect(await problems('🔑a🐙b🦊c🌵d🍩e🧲f')).toEqual([]); // 24 UTF-16 units, 12 characters
    expect(await problems('🔑'.repeat(11))).toEqual(['must be at least 12 characters']);
  });

  it('refuses guessable passwords (zxcvbn score below 3) and says why', async () => {
    for (const p of ['password1234', 'aaaaaaaaaaaa', 'qwertyuiop12', '123456789012']) {
      const why = await problems(p);
      expect(why, p).toHaveLength(1);
      expect(why[0], p).toMatch(/^is too easy to guess \(.+\): .+/);
    }
    expect((await problems('aaaaaaaaaaaa'))[0]).toMatch(/repeated/i);
    expect(await problems('correct horse battery staple')).toEqual([]);
  });

  it('refuses a password built from the owner’s own email or name, which zxcvbn alone scores as strong enough', async () => {
    const ada = { email: 'ada.lovelace@example.com', firstName: 'Ada', lastName: 'Lovelace' };
    for (const p of ['AdaLovelace2026!', 'ada.lovelace@example.com', 'lovelace1815!!']) {
      expect(await passwordWeakness(p, ada), p).toMatch(/built from your email address or name/);
    }
    expect(await passwordWeakness('violet kayak drums', ada)).toBeUndefined();
    expect(await passwordWeakness('AdaLovelace2026!')).toBeUndefined(); // the same text is fine for someone else
  });

  it('ships exactly 1,000 common passwords and refuses them whatever the case', async () => {
    const list = fs
      .readFileSync(`${repoRoot}/platform/data/common-passwords.txt`, 'utf8')
      .split('\n')
      .filter((l) => l && !l.startsWith('#'));
    expect(list).toHaveLength(1000);
    expect(new Set(list).size).toBe(1000);
    for (const p of ['password', '123456', 'qwerty', 'PassWord', 'dragon']) expect(isCommonPassword(p)).toBe(true);
    expect(isCommonPassword('a sensible passphrase 42')).toBe(false);
    expect(await problems('password')).toContain('is too common, choose another');
  });
});

describe('argon2id', () => {
  it('hashes with m=19456, t=2, p=1 and verifies', async () => {
    expect(ARGON2_OPTIONS).toMatchObject({ memoryCost: 19456, timeCost: 2, parallelism: 1 });
    const h = await hashPassword('a sensible passphrase 42');
    expect(h).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/);
    expect(await verifyPassword(h, 'a sensible passphrase 42')).toBe(true);
    expect(await verifyPassword(h, 'a sensible passphrase 43')).toBe(false);
    expect(await verifyPassword('not a hash', 'x')).toBe(false);
    expect(await verifyAgainstDummy('anything')).toBe(false);
  });
});

describe('secret tokens and emails', () => {
  it('makes 256-bit url-safe tokens stored as sha256', () => {
    const { token, hash } = newSecretToken();
    expect(token).toMatch(SECRET_TOKEN_PATTERN);
    expect(hash).toEqual(hashSecretToken(token));
    expect(hash).toHaveLength(32);
    expect(newSecretToken().token).not.toBe(token);
  });

  it('normalizes emails to trimmed lower case and refuses non-addresses', () => {
    expect(emailSchema.parse('  Ada@Example.TEST ')).toBe('ada@example.test');
    expect(emailSchema.safeParse('ada').success).toBe(false);
    expect(emailSchema.safeParse(42).success).toBe(false);
  });
});
