/**
 * One-time tokens sent by mail: email verification (24 h) and password reset
 * (1 h). Stored hashed; using one marks every token of the same purpose for
 * that user used, so an older link cannot be replayed after a newer one.
 */
import type { Tx } from '../db/index.ts';
import { hashSecretToken, newSecretToken } from './secret-tokens.ts';

export type EmailTokenPurpose = 'verify_email' | 'reset_password';
export const EMAIL_TOKEN_TTL_SECONDS: Record<EmailTokenPurpose, number> = { verify_email: 86_400, reset_password: 3_600 };

/** Creates a token for `userId` inside the caller's transaction; returns the clear token (for the mail link only). */
export async function issueEmailToken(t: Tx, userId: string, purpose: EmailTokenPurpose): Promise<string> {
  const { token, hash } = newSecretToken();
  await t.none(
    `INSERT INTO email_tokens (token_hash, user_id, purpose, expires_at)
     VALUES ($1, $2, $3, now() + make_interval(secs => $4))`,
    [hash, userId, purpose, EMAIL_TOKEN_TTL_SECONDS[purpose]],
  );
  return token;
}

/** Uses a token: the user id when it is valid, unused and unexpired; undefined otherwise. */
export async function consumeEmailToken(t: Tx, token: string, purpose: EmailTokenPurpose): Promise<string | undefined> {
  const row = await t.oneOrNone<{ userId: string }>(
    `UPDATE email_tokens SET used_at = now()
     WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > now()
     RETURNING user_id AS "userId"`,
    [hashSecretToken(token), purpose],
  );
  if (!row) return undefined;
  await t.none('UPDATE email_tokens SET used_at = now() WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL', [row.userId, purpose]);
  return row.userId;
}
