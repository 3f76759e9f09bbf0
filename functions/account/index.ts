/**
 * GET /api/account (Bearer) → 200 {profile, sessions}. Operators (admin) also:
 *   ?customers=true[&q=] → {items: customers, newest first, searched by email or name};
 *   ?customerId= → {profile, sessions} of that customer.
 * POST /api/account (Bearer) {action: 'changePassword', currentPassword, newPassword}
 *   | {action: 'updateProfile', firstName?, lastName?} | {action: 'revokeSession', sessionId} → 200.
 * Changing the password ends every other session; a wrong current password
 * counts as a failed login (same per-account limit).
 */
import { z } from 'zod';
import { db } from '@saasodoo/platform/db/index';
import { HttpError } from '@saasodoo/platform/errors';
import { route, type Caller } from '@saasodoo/platform/fn';
import { authFunction } from '@saasodoo/platform/auth/auth-function';
import { setPassword } from '@saasodoo/platform/auth/password-change';
import { givenPasswordSchema, verifyPassword } from '@saasodoo/platform/auth/passwords';
import { newPasswordSchema, refuseOwnerPassword } from '@saasodoo/platform/auth/password-policy';
import { limitedAttempt } from '@saasodoo/platform/auth/rate-limits';
import { endSessions, listSessions, sessionOwnedBy } from '@saasodoo/platform/auth/sessions';
import { findUserById, nameSchema, searchUsers, updateProfile, type User } from '@saasodoo/platform/auth/users';

const body = z.discriminatedUnion('action', [
  z.object({ action: z.literal('changePassword'), currentPassword: givenPasswordSchema, newPassword: newPasswordSchema }).strict(),
  z
    .object({ action: z.literal('updateProfile'), firstName: nameSchema.optional(), lastName: nameSchema.optional() })
    .strict()
    .refine((v) => v.firstName !== undefined || v.lastName !== undefined, { message: 'give firstName or lastName', path: ['firstName'] }),
  z.object({ action: z.literal('revokeSession'), sessionId: z.uuid('must be a session id') }).strict(),
]);
type Body = z.infer<typeof body>;

function profile(u: Omit<User, 'passwordHash'>) {
  return { id: u.id, email: u.email, firstName: u.firstName, lastName: u.lastName, role: u.role, emailVerified: u.emailVerifiedAt !== null, createdAt: u.createdAt };
}

async function me(caller: Caller): Promise<User> {
  const u = await findUserById(db('auth'), caller.userId);
  if (!u) throw HttpError.unauthorized('Session ended');
  return u;
}

async function sessions(caller: Caller) {
  return (await listSessions(caller.userId)).map((s) => ({ ...s, current: s.id === caller.sessionId }));
}

async function act(caller: Caller, b: Body) {
  switch (b.action) {
    case 'changePassword': {
      const u = await me(caller);
      // Counted before the check, like login: parallel guesses cannot outrun the account's limit.
      await limitedAttempt([['loginAccount', u.email]], async (failure) => {
        if (!(await verifyPassword(u.passwordHash, b.currentPassword))) {
          throw failure(HttpError.badRequest('The current password is wrong', { currentPassword: 'is wrong' }));
        }
      });
      await refuseOwnerPassword(b.newPassword, u, 'newPassword');
      const done = await setPassword(async () => ({ id: u.id, email: u.email }), b.newPassword, { keepSession: caller.sessionId, source: '/saasodoo/account' });
      return { passwordChanged: true, endedSessions: done!.endedSessions };
    }
    case 'updateProfile': {
      await updateProfile(db('auth'), caller.userId, { firstName: b.firstName, lastName: b.lastName });
      return { profile: profile(await me(caller)) };
    }
    case 'revokeSession': {
      if (!(await sessionOwnedBy(b.sessionId, caller.userId))) throw HttpError.notFound('No such session');
      await endSessions([b.sessionId]);
      return { revoked: true };
    }
  }
}

const query = z
  .object({
    customers: z.enum(['true']).optional(),
    q: z.string().trim().max(200).optional(),
    customerId: z.uuid('must be a customer id').optional(),
  })
  .strict();
type Query = z.infer<typeof query>;

/** Customers for the operator console: searched by email (or name), newest first. */
async function customers(q: string | undefined) {
  const rows = await searchUsers(db('auth'), q);
  return rows.map(profile);
}

async function operatorView(caller: Caller, q: Query) {
  if (caller.role !== 'admin') throw HttpError.forbidden('Only operators see other customers');
  if (q.customers) return { items: await customers(q.q || undefined) };
  const u = await findUserById(db('auth'), q.customerId!);
  if (!u) throw HttpError.notFound('No such customer');
  return { profile: profile(u), sessions: await listSessions(u.id) };
}

export default authFunction({
  name: 'account',
  GET: route<Query, undefined, 'customer'>({
    auth: 'customer',
    query,
    handle: async ({ caller, query: q }) => {
      if (q.customers || q.customerId) return { body: await operatorView(caller, q), headers: { 'cache-control': 'no-store' } };
      return { body: { profile: profile(await me(caller)), sessions: await sessions(caller) } };
    },
  }),
  POST: route<undefined, Body, 'customer'>({
    auth: 'customer',
    body,
    handle: async ({ caller, body: b }) => ({ status: 200, body: await act(caller, b) }),
  }),
});
