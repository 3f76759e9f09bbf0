/**
 * POST /api/login {email, password} → 200 {accessToken, refreshToken, expiresIn, tokenType}.
 * Unknown address and wrong password answer the same 401 after the same
 * argon2 work. Failures are limited per account (5) and per IP (50) per 15
 * minutes, counted before the password is checked: the 6th attempt, even
 * among parallel ones, is refused with 429 and never checked. An unverified
 * address cannot log in (403 after a right password).
 */
import { z } from 'zod';
import { db } from '@saasodoo/platform/db/index';
import { HttpError } from '@saasodoo/platform/errors';
import { authFunction } from '@saasodoo/platform/auth/auth-function';
import { givenPasswordSchema, verifyAgainstDummy, verifyPassword } from '@saasodoo/platform/auth/passwords';
import { clearFailures, limitedAttempt } from '@saasodoo/platform/auth/rate-limits';
import { openSession } from '@saasodoo/platform/auth/session-tokens';
import { emailSchema, findUserByEmail } from '@saasodoo/platform/auth/users';

const body = z.object({ email: emailSchema, password: givenPasswordSchema }).strict();

export default authFunction({
  name: 'login',
  POST: {
    auth: 'none',
    body,
    handle: async ({ body: b, ip, headers, log }) => {
      // The attempt is counted before the password is checked (parallel guesses cannot outrun the count) and handed back unless it failed.
      const user = await limitedAttempt(
        [
          ['loginIp', ip],
          ['loginAccount', b.email],
        ],
        async (failure) => {
          const found = await findUserByEmail(db('auth'), b.email);
          const ok = found ? await verifyPassword(found.passwordHash, b.password) : await verifyAgainstDummy(b.password);
          if (!found || !ok) {
            log.info({ userId: found?.id, ip, body: b }, 'login failed'); // body is redacted by the logger: the test proves it
            throw failure(new HttpError(401, 'invalid_credentials', 'Wrong email or password'));
          }
          return found;
        },
      );
      if (!user.emailVerifiedAt) {
        throw new HttpError(403, 'email_not_verified', 'Confirm your email address first: use the link we sent, or ask for a new one', { email: 'not verified' });
      }
      await clearFailures('loginAccount', b.email);
      const ua = headers['user-agent'];
      const { sessionId, ...pair } = await openSession(user, { ip, userAgent: Array.isArray(ua) ? ua[0] : ua });
      log.info({ userId: user.id, sessionId, ip }, 'login');
      return { status: 200, body: pair, headers: { 'cache-control': 'no-store' }, audit: { customerId: user.id } };
    },
  },
});
