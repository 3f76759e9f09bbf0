/**
 * Login race (issue 15.3): rate limits must hold against requests sent all at
 * once, not only one after the other. The counter used to be read, the
 * password checked, and only then the failure recorded, so 12 parallel wrong
 * passwords all got 401 through a limit of 5. Now every attempt is taken
 * from the limit before the work it guards and handed back on success. Real
 * Redis and PostgreSQL; each request goes over HTTP to the function.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LIMITS } from '@saasodoo/platform/auth/rate-limits';
import { closeDatabases } from '@saasodoo/platform/db/index';
import { dropNamespace, migrate } from '@saasodoo/platform/db/migrate';
import { closeRedis } from '@saasodoo/platform/redis';
import { createTestUser, TEST_PASSWORD } from '../../helpers/auth.ts';
import { AUTH_FUNCTIONS, freshIp, serveFunctions, type Reply, type Served } from '../auth/serve.ts';

let served: Served;
const email = () => `race-${randomBytes(5).toString('hex')}@example.test`;

/** The statuses of parallel replies, counted: `{ 401: 5, 429: 7 }`. */
function tally(replies: Reply[]): Record<number, number> {
  const t: Record<number, number> = {};
  for (const r of replies) t[r.status] = (t[r.status] ?? 0) + 1;
  return t;
}

/** Every 429 names the limit and says when to come back. */
function expectRetryAfter(replies: Reply[], maxSeconds: number) {
  const refused = replies.filter((r) => r.status === 429);
  expect(refused.length).toBeGreaterThan(0);
  for (const r of refused) {
    expect(r.body.error.code).toBe('rate_limited');
    const after = Number(r.headers.get('retry-after'));
    expect(after).toBeGreaterThan(0);
    expect(after).toBeLessThanOrEqual(maxSeconds);
  }
}

const parallel = <T>(n: number, f: (i: number) => Promise<T>) => Promise.all(Array.from({ length: n }, (_, i) => f(i)));

beforeAll(async () => {
  await migrate({ databases: ['auth'] });
  served = await serveFunctions(AUTH_FUNCTIONS);
});

afterAll(async () => {
  await served?.close();
  await closeRedis();
  await closeDatabases();
  await dropNamespace();
});

describe('login', () => {
  it('12 parallel wrong passwords for one account: 5 are checked (401), the rest 429 with Retry-After, and then even the right one waits', async () => {
    const u = await createTestUser();
    const replies = await parallel(12, (i) => served.call('login', { body: { email: u.email, password: `wrong password ${i}` }, ip: freshIp() }));
    expect(tally(replies)).toEqual({ 401: LIMITS.loginAccount.points, 429: 12 - LIMITS.loginAccount.points });
    expectRetryAfter(replies, LIMITS.loginAccount.duration);
    expect((await served.call('login', { body: { email: u.email, password: TEST_PASSWORD }, ip: freshIp() })).status).toBe(429);
  });

  it('60 parallel wrong logins from one IP (any accounts): 50 are checked, the rest 429', async () => {
    const ip = freshIp();
    const replies = await parallel(60, () => served.call('login', { body: { email: email(), password: 'guessing a password' }, ip }));
    expect(tally(replies)).toEqual({ 401: LIMITS.loginIp.points, 429: 60 - LIMITS.loginIp.points });
    expectRetryAfter(replies, LIMITS.loginIp.duration);
  });

  it('the right password after a few failures still succeeds, and its attempt is handed back', async () => {
    const u = await createTestUser();
    const ip = freshIp();
    // Use up all but one of the IP's budget on other accounts, and 3 of the account's.
    await parallel(LIMITS.loginIp.points - 4, () => served.call('login', { body: { email: email(), password: 'guessing a password' }, ip }));
    for (let i = 0; i < 3; i++) expect((await served.call('login', { body: { email: u.email, password: `wrong ${i}` }, ip })).status).toBe(401);
    // One attempt is left on this IP: each success gives its attempt back, so successes never use it up.
    for (let i = 0; i < 3; i++) expect((await served.call('login', { body: { email: u.email, password: TEST_PASSWORD }, ip })).status).toBe(200);
    expect((await served.call('login', { body: { email: u.email, password: 'wrong again' }, ip })).status).toBe(401);
    expect((await served.call('login', { body: { email: u.email, password: TEST_PASSWORD }, ip })).status).toBe(429);
    // The account's own counter was cleared by the success: a full budget from another IP.
    const other = freshIp();
    const replies = await parallel(7, () => served.call('login', { body: { email: u.email, password: 'wrong once more' }, ip: other }));
    expect(tally(replies)).toEqual({ 401: LIMITS.loginAccount.points - 1, 429: 8 - LIMITS.loginAccount.points });
  });
});

describe('change password (account)', () => {
  it('12 parallel wrong current passwords: 5 are checked (400 naming currentPassword), the rest 429', async () => {
    const u = await createTestUser();
    const replies = await parallel(12, (i) =>
      served.call('account', { token: u.accessToken, body: { action: 'changePassword', currentPassword: `wrong current ${i}`, newPassword: 'a brand new passphrase 7' } }),
    );
    expect(tally(replies)).toEqual({ 400: LIMITS.loginAccount.points, 429: 12 - LIMITS.loginAccount.points });
    for (const r of replies.filter((x) => x.status === 400)) expect(r.body.error.fields).toEqual({ currentPassword: 'is wrong' });
    expectRetryAfter(replies, LIMITS.loginAccount.duration);
  });
});

describe('per IP per hour, in parallel', () => {
  it.each([
    ['signup', 'signupIp', () => ({ email: email(), password: 'a sensible passphrase 42', firstName: 'A', lastName: 'B', acceptTerms: true })],
    ['password-reset', 'resetIp', () => ({ email: email() })],
    ['verify-email', 'resendIp', () => ({ email: email(), resend: true })],
  ] as const)('%s: 15 at once from one IP → 10 served, 5 refused with 429', async (fn, limit, body) => {
    const ip = freshIp();
    const replies = await parallel(15, () => served.call(fn, { body: body(), ip }));
    expect(tally(replies)).toEqual({ 202: LIMITS[limit].points, 429: 15 - LIMITS[limit].points });
    expectRetryAfter(replies, LIMITS[limit].duration);
  });
});
