/**
 * POST /api/signup {email, password, firstName, lastName, acceptTerms: true} → 202.
 * The answer and the work are the same whether or not the address is taken
 * (platform/src/auth/README.md 2, no enumeration): the password is always hashed and one
 * transaction always writes an event. A new address gets `user.registered` and
 * `user.verification_requested`; a taken one gets `user.signup_attempted`.
 */
import { z } from 'zod';
import { enqueue, transact } from '@saasodoo/platform/outbox';
import { authFunction } from '@saasodoo/platform/auth/auth-function';
import { issueEmailToken } from '@saasodoo/platform/auth/email-tokens';
import { portalLink } from '@saasodoo/platform/auth/links';
import { hashPassword } from '@saasodoo/platform/auth/passwords';
import { newPasswordSchema, refuseOwnerPassword } from '@saasodoo/platform/auth/password-policy';
import { consumeOrThrow } from '@saasodoo/platform/auth/rate-limits';
import { emailSchema, insertUser, nameSchema } from '@saasodoo/platform/auth/users';

const body = z
  .object({
    email: emailSchema,
    password: newPasswordSchema,
    firstName: nameSchema,
    lastName: nameSchema,
    acceptTerms: z.literal(true, 'must be true'),
  })
  .strict();

export const ACCEPTED = { status: 'accepted', message: 'Check your inbox: we sent a link to confirm the address.' };

export default authFunction({
  name: 'signup',
  POST: {
    auth: 'none',
    audit: false, // recorded from user.registered: the answer is the same whether or not an account was made
    body,
    handle: async ({ body: b, ip }) => {
      await refuseOwnerPassword(b.password, b);
      await consumeOrThrow('signupIp', ip);
      const passwordHash = await hashPassword(b.password);
      await transact('auth', async (t) => {
        const id = await insertUser(t, { email: b.email, passwordHash, firstName: b.firstName, lastName: b.lastName });
        if (!id) {
          await enqueue(t, 'user.signup_attempted', { email: b.email });
          return;
        }
        const token = await issueEmailToken(t, id, 'verify_email');
        await enqueue(t, 'user.registered', { customerId: id, email: b.email, firstName: b.firstName, lastName: b.lastName }, { subject: id });
        await enqueue(t, 'user.verification_requested', { customerId: id, email: b.email, firstName: b.firstName, verifyUrl: portalLink('/verify-email', token) }, { subject: id });
      });
      return { status: 202, body: ACCEPTED };
    },
  },
});
