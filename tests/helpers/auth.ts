/**
 * Test users for any integration test that needs a logged-in caller.
 *
 *   import { createTestUser } from '../../helpers/auth.ts';
 *   beforeAll(async () => { await migrate(); });          // the auth database must exist
 *   const alice = await createTestUser();                  // verified customer with a live session
 *   const admin = await createTestUser({ role: 'admin' });
 *   fetch(url, { headers: { authorization: `Bearer ${alice.accessToken}` } });
 *
 * It writes the user straight into the auth database of the current
 * DB_NAMESPACE (no HTTP, no rate limits, no mail events) and opens a session
 * exactly as login does (row in user_sessions, liveness in Redis), so the
 * token passes `authenticate` in every function of the same test process.
 * `endTestSession(user)` logs the session out (as POST /api/logout does).
 */
import { randomBytes } from 'node:crypto';
import { db } from '@saasodoo/platform/db/index';
import { hashPassword } from '@saasodoo/platform/auth/passwords';
import { endSessions } from '@saasodoo/platform/auth/sessions';
import { openSession } from '@saasodoo/platform/auth/session-tokens';
import { insertUser } from '@saasodoo/platform/auth/users';
import type { Role } from '@saasodoo/platform/auth/tokens';

export type TestUser = {
  userId: string;
  email: string;
  password: string;
  firstName: string;
  lastName: string;
  role: Role;
  sessionId: string;
  accessToken: string;
  refreshToken: string;
};

export const TEST_PASSWORD = 'correct horse battery staple';
let defaultHash: Promise<string> | undefined;

/** Creates a verified user (customer unless `role: 'admin'`) with a live session. */
export async function createTestUser(o: { role?: Role; email?: string; password?: string; firstName?: string; lastName?: string } = {}): Promise<TestUser> {
  const email = (o.email ?? `user-${randomBytes(6).toString('hex')}@example.test`).trim().toLowerCase();
  const password = o.password ?? TEST_PASSWORD;
  const passwordHash = o.password ? await hashPassword(password) : await (defaultHash ??= hashPassword(TEST_PASSWORD));
  const role = o.role ?? 'customer';
  const firstName = o.firstName ?? 'Test';
  const lastName = o.lastName ?? 'User';
  const userId = await db('auth').tx((t) => insertUser(t, { email, passwordHash, firstName, lastName, role, verified: true }));
  if (!userId) throw new Error(`createTestUser: ${email} already exists`);
  const s = await openSession({ id: userId, role }, { ip: '127.0.0.1', userAgent: 'vitest' });
  return { userId, email, password, firstName, lastName, role, sessionId: s.sessionId, accessToken: s.accessToken, refreshToken: s.refreshToken };
}

/** A new session (and tokens) for an existing test user, like a second login. */
export async function loginTestUser(u: Pick<TestUser, 'userId' | 'role'>): Promise<{ sessionId: string; accessToken: string; refreshToken: string }> {
  const s = await openSession({ id: u.userId, role: u.role }, { ip: '127.0.0.1', userAgent: 'vitest' });
  return { sessionId: s.sessionId, accessToken: s.accessToken, refreshToken: s.refreshToken };
}

/** Ends a test user's session: its tokens are refused from now on. */
export async function endTestSession(u: Pick<TestUser, 'sessionId'>): Promise<void> {
  await endSessions([u.sessionId]);
}
