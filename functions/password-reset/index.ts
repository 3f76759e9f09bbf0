/**
 * POST /api/password-reset {email} → 202 always (a link goes out only to an
 * existing account; 10 requests per IP per hour). POST {token, password} →
 * 200: sets the password (token single use, 1 h), confirms the address (the
 * mailbox was just proven) and ends every session of the account.
 */
import { z } from 'zod';
import { HttpError } from '@saasodoo/platform/errors';
import { enqueue, transact } from '@saasodoo/platform/outbox';
import { authFunction } from '@saasodoo/platform/auth/auth-function';
import { consumeEmailToken, issueEmailToken } from '@saasodoo/platform/auth/email-tokens';
import { portalLink } from '@saasodoo/platform/auth/links';
import { setPassword } from '@saasodoo/platform/auth/password-change';
import { newPasswordSchema, refuseOwnerPassword } from '@saasodoo/platform/auth/password-policy';
import { clearFailures, consumeOrThrow } from '@saasodoo/platform/auth/rate-limits';
import { newSecretToken, SECRET_TOKEN_PATTERN } from '@saasodoo/platform/auth/secret-tokens';
import { emailSchema, findUserByEmail, findUserById, markEmailVerified } from '@saasodoo/platform/auth/users';

const body = z
  .object({
    email: emailSchema.optional(),
    token: z.string().regex(SECRET_TOKEN_PATTERN, 'is not a valid link token').optional(),
    password: newPasswordSchema.optional(),
  })
  .strict();

export default authFunction({
  name: 'password-reset',
  POST: {
    auth: 'none',
    body,
    handle: async ({ body: b, ip }) => {
      if (b.token !== undefined || b.password !== undefined) {
        const missing: Record<string, string> = {};
        if (!b.token) missing.token = 'required with password';
        if (!b.password) missing.password = 'required with token';
        if (b.email) missing.email = 'not allowed with token';
        if (Object.keys(missing).length) throw HttpError.badRequest(`Invalid ${Object.keys(missing).join(', ')}`, missing);
        const token = b.token!;
        const done = await setPassword(
          async (t) => {
            const userId = await consumeEmailToken(t, token, 'reset_password');
            if (!userId) return undefined;
            const user = await findUserById(t, userId);
            // Throwing here rolls the token back: the person can try another password with the same link.
            if (user) await refuseOwnerPassword(b.password, user);
            await markEmailVerified(t, userId);
            return user ?? undefined;
          },
          b.password!,
          { source: '/saasodoo/password-reset' },
        );
        if (!done) throw HttpError.badRequest('This link is invalid, used or expired', { token: 'invalid, used or expired' });
        await clearFailures('loginAccount', done.email).catch(() => {});
        return { status: 200, body: { passwordChanged: true }, audit: { customerId: done.userId } };
      }
      if (!b.email) throw HttpError.badRequest('Invalid email', { email: 'required' });
      await consumeOrThrow('resetIp', ip);
      const email = b.email;
      await transact('auth', async (t) => {
        const u = await findUserByEmail(t, email);
        if (!u) {
          newSecretToken(); // comparable work; nothing stored or sent
          return;
        }
        const token = await issueEmailToken(t, u.id, 'reset_password');
        await enqueue(t, 'user.password_reset_requested', { customerId: u.id, email: u.email, resetUrl: portalLink('/reset-password', token) }, { subject: u.id });
      });
      return { status: 202, body: { status: 'accepted', message: 'If an account uses this address, a reset link is on its way.' } };
    },
  },
});
