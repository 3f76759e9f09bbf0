/**
 * POST /api/verify-email {token} → 200: confirms the address (token single
 * use, 24 h). POST {email, resend: true} → 202 whatever the address: a new
 * link goes out only to an existing, unverified account (rate limited per IP).
 */
import { z } from 'zod';
import { HttpError } from '@saasodoo/platform/errors';
import { enqueue, transact } from '@saasodoo/platform/outbox';
import { authFunction } from '@saasodoo/platform/auth/auth-function';
import { consumeEmailToken, issueEmailToken } from '@saasodoo/platform/auth/email-tokens';
import { portalLink } from '@saasodoo/platform/auth/links';
import { consumeOrThrow } from '@saasodoo/platform/auth/rate-limits';
import { newSecretToken, SECRET_TOKEN_PATTERN } from '@saasodoo/platform/auth/secret-tokens';
import { emailSchema, findUserByEmail, findUserById, markEmailVerified } from '@saasodoo/platform/auth/users';

const body = z
  .object({
    token: z.string().regex(SECRET_TOKEN_PATTERN, 'is not a valid link token').optional(),
    email: emailSchema.optional(),
    resend: z.literal(true, 'must be true').optional(),
  })
  .strict();

export default authFunction({
  name: 'verify-email',
  POST: {
    auth: 'none',
    body,
    handle: async ({ body: b, ip }) => {
      if (b.resend) {
        if (!b.email) throw HttpError.badRequest('Invalid email', { email: 'required to resend the link' });
        await consumeOrThrow('resendIp', ip);
        await resend(b.email);
        return { status: 202, body: { status: 'accepted', message: 'If the address has an unconfirmed account, a new link is on its way.' } };
      }
      if (!b.token) throw HttpError.badRequest('Invalid token', { token: 'required' });
      const token = b.token;
      const customerId = await transact('auth', async (t) => {
        const userId = await consumeEmailToken(t, token, 'verify_email');
        if (!userId) throw HttpError.badRequest('This link is invalid, used or expired', { token: 'invalid, used or expired' });
        await markEmailVerified(t, userId);
        const u = (await findUserById(t, userId))!;
        await enqueue(t, 'user.verified', { customerId: u.id, email: u.email, firstName: u.firstName }, { subject: u.id });
        return u.id;
      });
      return { status: 200, body: { verified: true }, audit: { customerId } };
    },
  },
});

/** Sends a fresh link to an unverified account; for other addresses does comparable work and nothing else. */
async function resend(email: string): Promise<void> {
  await transact('auth', async (t) => {
    const u = await findUserByEmail(t, email);
    if (!u || u.emailVerifiedAt) {
      newSecretToken(); // same token work as the real path; nothing is stored or sent
      return;
    }
    const token = await issueEmailToken(t, u.id, 'verify_email');
    await enqueue(
      t,
      'user.verification_requested',
      { customerId: u.id, email: u.email, firstName: u.firstName, verifyUrl: portalLink('/verify-email', token) },
      { subject: u.id, source: '/saasodoo/verify-email' },
    );
  });
}
