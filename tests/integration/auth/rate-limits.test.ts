/**
 * Rate limits (SPEC 2) on real Redis: login 5 failures per account and 50
 * per IP per 15 minutes; signup, password-reset requests and verification
 * resends 10 per IP per hour; 429 with Retry-After past a limit.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeDatabases } from '@saasodoo/platform/db/index';
import { dropNamespace, migrate } from '@saasodoo/platform/db/migrate';
import { closeRedis } from '@saasodoo/platform/redis';
import { createTestUser, TEST_PASSWORD } from '../../helpers/auth.ts';
import { freshIp, serveFunctions, AUTH_FUNCTIONS, type Reply, type Served } from './serve.ts';

let served: Served;
const email = () => `rl-${randomBytes(5).toString('hex')}@example.test`;

function expect429(r: Reply, maxSeconds: number) {
  expect(r.status).toBe(429);
  expect(r.body.error.code).toBe('rate_limited');
  const after = Number(r.headers.get('retry-after'));
  expect(after).toBeGreaterThan(0);
  expect(after).toBeLessThanOrEqual(maxSeconds);
}

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
  it('the sixth failed login of an account is refused with 429 and Retry-After, even with the right password', async () => {
    const u = await createTestUser();
    for (let i = 0; i < 5; i++) {
      const r = await served.call('login', { body: { email: u.email, password: `wrong password ${i}` }, ip: freshIp() });
      expect(r.status).toBe(401);
    }
    expect429(await served.call('login', { body: { email: u.email, password: `wrong password 6` }, ip: freshIp() }), 900);
    expect429(await served.call('login', { body: { email: u.email, password: TEST_PASSWORD }, ip: freshIp() }), 900);
    // other accounts are not affected
    const v = await createTestUser();
    expect((await served.call('login', { body: { email: v.email, password: TEST_PASSWORD }, ip: freshIp() })).status).toBe(200);
  });

  it('a success clears the account counter', async () => {
    const u = await createTestUser();
    for (let i = 0; i < 4; i++) await served.call('login', { body: { email: u.email, password: 'wrong password x' }, ip: freshIp() });
    expect((await served.call('login', { body: { email: u.email, password: TEST_PASSWORD }, ip: freshIp() })).status).toBe(200);
    for (let i = 0; i < 4; i++) expect((await served.call('login', { body: { email: u.email, password: 'wrong password y' }, ip: freshIp() })).status).toBe(401);
  });

  it('the 51st failure from one IP is refused, whatever the account', async () => {
    const ip = freshIp();
    for (let i = 0; i < 50; i++) {
      expect((await served.call('login', { body: { email: email(), password: 'guessing a password' }, ip })).status).toBe(401);
    }
    const u = await createTestUser();
    expect429(await served.call('login', { body: { email: u.email, password: TEST_PASSWORD }, ip }), 900);
    expect((await served.call('login', { body: { email: u.email, password: TEST_PASSWORD }, ip: freshIp() })).status).toBe(200);
  });
});

describe('per IP per hour', () => {
  it.each([
    ['signup', () => ({ email: email(), password: 'a sensible passphrase 42', firstName: 'A', lastName: 'B', acceptTerms: true })],
    ['password-reset', () => ({ email: email() })],
    ['verify-email', () => ({ email: email(), resend: true })],
  ] as const)('%s: 10 requests, then 429 with Retry-After', async (fn, body) => {
    const ip = freshIp();
    for (let i = 0; i < 10; i++) expect((await served.call(fn, { body: body(), ip })).status).toBe(202);
    expect429(await served.call(fn, { body: body(), ip }), 3600);
    expect((await served.call(fn, { body: body(), ip: freshIp() })).status).toBe(202);
  });
});
