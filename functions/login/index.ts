/**
 * POST /api/login {email, password} → 200 {accessToken, refreshToken, expiresIn, tokenType}.
 * Unknown address and wrong password answer the same 401 after the same
 * argon2 work. Failures are limited per account (5) and per IP (50) per 15
 * minutes; the 6th attempt is refused with 429 before the password is
 * checked. An unverified address cannot log in (403 after a right password).
 */
import { z } from 'zod';
import { db } from '@saasodoo/platform/db/index';
import { HttpError } from '@saasodoo/platform/errors';
import { authFunction } from '@saasodoo/platform/auth/auth-function';
import { givenPasswordSchema, verifyAgainstDummy, verifyPassword } from '@saasodoo/platform/auth/passwords';
import { clearFailures, recordFailure, refuseIfExhausted } from '@saasodoo/platform/auth/rate-limits';
import { openSession } from '@saasodoo/platform/auth/session-tokens';
import { emailSchema, findUserByEmail } from '@saasodoo/platform/auth/users';

const body = z.object({ email: emailSchema, password: givenPasswordSchema }).strict();

export default authFunction({
  name: 'login',
  POST: {
    auth: 'none',
    body,
    handle: async ({ body: b, ip, headers, log }) => {
      await refuseIfExhausted('loginIp', ip);
      await refuseIfExhausted('loginAccount', b.email);
      const user = await findUserByEmail(db('auth'), b.email);
      const ok = user ? await verifyPassword(user.passwordHash, b.password) : await verifyAgainstDummy(b.password);
      if (!user || !ok) {
        await Promise.all([recordFailure('loginIp', ip), recordFailure('loginAccount', b.email)]);
        log.info({ userId: user?.id, ip, body: b }, 'login failed'); // body is redacted by the logger: the test proves it
        throw new HttpError(401, 'invalid_credentials', 'Wrong email or password');
      }
      if (!user.emailVerifiedAt) {
        throw new HttpError(403, 'email_not_verified', 'Confirm your email address first: use the link we sent, or ask for a new one', { email: 'not verified' });
      }
      await clearFailures('loginAccount', b.email);
      const ua = headers['user-agent'];
      const { sessionId, ...pair } = await openSession(user, { ip, userAgent: Array.isArray(ua) ? ua[0] : ua });
      log.info({ userId: user.id, sessionId, ip }, 'login');
      return { status: 200, body: pair, headers: { 'cache-control': 'no-store' } };
    },
  },
});
