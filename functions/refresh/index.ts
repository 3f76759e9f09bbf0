/**
 * POST /api/refresh {refreshToken} → 200 {accessToken, refreshToken, expiresIn, tokenType}.
 * The refresh token is rotated on every use; presenting a used one ends the
 * whole session (its holder and the thief both lose it).
 */
import { z } from 'zod';
import { authFunction } from '@saasodoo/platform/auth/auth-function';
import { SECRET_TOKEN_PATTERN } from '@saasodoo/platform/auth/secret-tokens';
import { rotateRefreshToken } from '@saasodoo/platform/auth/session-tokens';

const body = z.object({ refreshToken: z.string().regex(SECRET_TOKEN_PATTERN, 'is not a valid refresh token') }).strict();

export default authFunction({
  name: 'refresh',
  POST: {
    auth: 'none',
    audit: false, // a token rotation changes nothing a person would look for
    body,
    handle: async ({ body: b }) => ({ status: 200, body: await rotateRefreshToken(b.refreshToken), headers: { 'cache-control': 'no-store' } }),
  },
});
