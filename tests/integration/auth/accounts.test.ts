/**
 * The account functions end to end, in-process against real PostgreSQL and
 * Redis: signup, verification, login, refresh rotation and reuse, logout,
 * password reset and change, account, admin role; events read from the
 * auth outbox.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeDatabases, db } from '@saasodoo/platform/db/index';
import { dropNamespace, migrate } from '@saasodoo/platform/db/migrate';
import { closeRedis } from '@saasodoo/platform/redis';
import { setAdminRole } from '@saasodoo/platform/cli/admin';
import { httpFunction } from '@saasodoo/platform/fn';
import { createTestUser, loginTestUser } from '../../helpers/auth.ts';
import { freshIp, linkToken, outboxEvents, serveFunctions, AUTH_FUNCTIONS, type Served } from './serve.ts';

let served: Served;
const call: Served['call'] = (...a) => served.call(...a);
const PASSWORD = 'a sensible passphrase 42';

function newEmail(): string {
  return `ada-${randomBytes(5).toString('hex')}@example.test`;
}

async function signup(email: string, ip = freshIp()) {
  return call('signup', { body: { email, password: PASSWORD, firstName: 'Ada', lastName: 'Lovelace', acceptTerms: true }, ip });
}

async function verifyTokenFor(email: string): Promise<string> {
  const ev = (await outboxEvents()).filter((e) => e.type === 'user.verification_requested' && e.data.email === email).at(-1);
  return linkToken(ev!.data.verifyUrl);
}

/** A signed-up, verified, logged-in customer, all through the functions. */
async function customer() {
  const email = newEmail();
  expect((await signup(email)).status).toBe(202);
  expect((await call('verify-email', { body: { token: await verifyTokenFor(email) } })).status).toBe(200);
  const login = await call('login', { body: { email, password: PASSWORD }, ip: freshIp() });
  expect(login.status).toBe(200);
  return { email, ...(login.body as { accessToken: string; refreshToken: string; expiresIn: number }) };
}

beforeAll(async () => {
  await migrate({ databases: ['auth'] });
  served = await serveFunctions(AUTH_FUNCTIONS, {
    // stands for any other service's function: the same platform/fn authentication, no auth database
    probe: httpFunction({ name: 'probe', GET: { auth: 'customer', handle: () => ({ body: { ok: true } }) } }),
  });
});

afterAll(async () => {
  await served?.close();
  await closeRedis();
  await closeDatabases();
  await dropNamespace();
});

describe('signup and verification', () => {
  it('signs up, emits user.registered and user.verification_requested with a portal link, and stores an argon2id m=19456,t=2,p=1 hash', async () => {
    const email = newEmail();
    const res = await signup(email.toUpperCase());
    expect(res.status).toBe(202);
    const user = await db('auth').one('SELECT id, email, password_hash, email_verified_at FROM users WHERE email = $1', [email]);
    expect(user.password_hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    expect(user.password_hash).not.toContain(PASSWORD);
    expect(user.email_verified_at).toBeNull();
    // one transaction: same created_at, so sort by type
    const events = (await outboxEvents()).filter((e) => e.subject === user.id).sort((a, b) => a.type.localeCompare(b.type));
    expect(events.map((e) => e.type)).toEqual(['user.registered', 'user.verification_requested']);
    expect(events[0].data).toEqual({ customerId: user.id, email, firstName: 'Ada', lastName: 'Lovelace' });
    expect(events[1].data.verifyUrl).toMatch(/^http:\/\/localhost:3000\/verify-email\?token=[A-Za-z0-9_-]{43}$/);
    // the token is stored hashed only
    const stored = await db('auth').one('SELECT token_hash FROM email_tokens WHERE user_id = $1', [user.id]);
    expect(Buffer.from(stored.token_hash).toString('base64url')).not.toBe(linkToken(events[1].data.verifyUrl));
  });

  it('answers a taken address exactly like a new one, and emits user.signup_attempted instead', async () => {
    const email = newEmail();
    const first = await signup(email);
    const before = (await outboxEvents()).length;
    const second = await signup(email);
    expect(second.status).toBe(first.status);
    expect(second.body).toEqual(first.body);
    const added = (await outboxEvents()).slice(before);
    expect(added.map((e) => e.type)).toEqual(['user.signup_attempted']);
    expect(added[0].data).toEqual({ email });
    expect(await db('auth').one('SELECT count(*) FROM users WHERE email = $1', [email])).toEqual({ count: 1 });
  });

  it('refuses bad inputs with 400 naming each field', async () => {
    const bad = await call('signup', { body: { email: 'not-an-email', password: 'short', firstName: '', acceptTerms: false, extra: 1 } });
    expect(bad.status).toBe(400);
    expect(Object.keys(bad.body.error.fields).sort()).toEqual(['email', 'extra', 'firstName', 'lastName', 'password', 'acceptTerms'].sort());
    const long = await call('signup', { body: { email: newEmail(), password: 'x'.repeat(129), firstName: 'A', lastName: 'B', acceptTerms: true } });
    expect(long.body.error.fields).toEqual({ password: 'must be at most 128 characters' });
    const common = await call('signup', { body: { email: newEmail(), password: 'password', firstName: 'A', lastName: 'B', acceptTerms: true } });
    expect(common.body.error.fields.password).toBeDefined();
    for (const password of ['password1234', 'aaaaaaaaaaaa']) {
      const weak = await call('signup', { body: { email: newEmail(), password, firstName: 'A', lastName: 'B', acceptTerms: true } });
      expect(weak.status, password).toBe(400);
      expect(weak.body.error.fields.password, password).toMatch(/^is too easy to guess \(.+\)/);
    }
    const own = await call('signup', { body: { email: 'grace.hopper@example.test', password: 'GraceHopper1906!', firstName: 'Grace', lastName: 'Hopper', acceptTerms: true } });
    expect(own.status).toBe(400);
    expect(own.body.error.fields.password).toMatch(/built from your email address or name/);
    const notJson = await served.call('login', { body: undefined, headers: { 'content-type': 'text/plain' } });
    expect(notJson.status).toBe(415);
    for (const [fn, body, field] of [
      ['login', { email: 'x@example.test' }, 'password'],
      ['login', { email: 'nope', password: 'whatever' }, 'email'],
      ['refresh', { refreshToken: 'short' }, 'refreshToken'],
      ['verify-email', { token: 'bad token!' }, 'token'],
      ['verify-email', {}, 'token'],
      ['verify-email', { resend: true }, 'email'],
      ['password-reset', {}, 'email'],
      ['password-reset', { token: 'a'.repeat(43) }, 'password'],
      ['password-reset', { email: 'x@example.test', password: 'p' }, 'password'],
    ] as const) {
      const r = await call(fn, { body, ip: freshIp() });
      expect(r.status, `${fn} ${JSON.stringify(body)}`).toBe(400);
      expect(r.body.error.fields, `${fn} ${JSON.stringify(body)}`).toHaveProperty(field);
    }
  });

  it('needs a verified address to log in; the verification token is single use', async () => {
    const email = newEmail();
    await signup(email);
    const early = await call('login', { body: { email, password: PASSWORD }, ip: freshIp() });
    expect(early.status).toBe(403);
    expect(early.body.error.code).toBe('email_not_verified');
    const token = await verifyTokenFor(email);
    expect((await call('verify-email', { body: { token } })).status).toBe(200);
    const again = await call('verify-email', { body: { token } });
    expect(again.status).toBe(400);
    expect(again.body.error.fields).toEqual({ token: 'invalid, used or expired' });
    const events = await outboxEvents();
    expect(events.filter((e) => e.type === 'user.verified' && e.data.email === email)).toHaveLength(1);
    expect((await call('login', { body: { email, password: PASSWORD }, ip: freshIp() })).status).toBe(200);
  });

  it('refuses an expired verification token; resend gives a new one and answers the same for unknown addresses', async () => {
    const email = newEmail();
    await signup(email);
    const token = await verifyTokenFor(email);
    const ttl = await db('auth').one(`SELECT extract(epoch FROM expires_at - created_at)::int AS s FROM email_tokens ORDER BY created_at DESC LIMIT 1`);
    expect(ttl.s).toBe(86_400);
    await db('auth').none("UPDATE email_tokens SET expires_at = now() - interval '1 second' WHERE purpose = 'verify_email'");
    expect((await call('verify-email', { body: { token } })).status).toBe(400);

    const known = await call('verify-email', { body: { email, resend: true }, ip: freshIp() });
    const unknown = await call('verify-email', { body: { email: newEmail(), resend: true }, ip: freshIp() });
    expect(known.status).toBe(202);
    expect(unknown.status).toBe(202);
    expect(unknown.body).toEqual(known.body);
    const fresh = await verifyTokenFor(email);
    expect(fresh).not.toBe(token);
    expect((await call('verify-email', { body: { token: fresh } })).status).toBe(200);
    // verified: resending sends nothing more
    const before = (await outboxEvents()).length;
    expect((await call('verify-email', { body: { email, resend: true }, ip: freshIp() })).status).toBe(202);
    expect((await outboxEvents()).length).toBe(before);
  });
});

describe('login, refresh, logout', () => {
  it('issues a 10-minute EdDSA token with sub, sid, role, iss, aud, exp, iat, jti and an opaque refresh token', async () => {
    const c = await customer();
    expect(c.expiresIn).toBe(600);
    const [h, p] = c.accessToken
      .split('.')
      .slice(0, 2)
      .map((s) => JSON.parse(Buffer.from(s, 'base64url').toString()));
    expect(h.alg).toBe('EdDSA');
    expect(h.kid).toBeTruthy();
    expect(Object.keys(p).sort()).toEqual(['aud', 'exp', 'iat', 'iss', 'jti', 'role', 'sid', 'sub']);
    expect(p.exp - p.iat).toBe(600);
    expect(p.role).toBe('customer');
    expect(c.refreshToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const stored = await db('auth').one('SELECT count(*) FROM refresh_tokens WHERE session_id = $1', [p.sid]);
    expect(stored.count).toBe(1);
  });

  it('answers a wrong password and an unknown address the same way', async () => {
    const c = await customer();
    const wrong = await call('login', { body: { email: c.email, password: 'not the password at all' }, ip: freshIp() });
    const unknown = await call('login', { body: { email: newEmail(), password: 'not the password at all' }, ip: freshIp() });
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(unknown.body).toEqual(wrong.body);
  });

  it('rotates the refresh token on every use; reusing a rotated one revokes the session', async () => {
    const c = await customer();
    const r1 = await call('refresh', { body: { refreshToken: c.refreshToken } });
    expect(r1.status).toBe(200);
    expect(r1.body.refreshToken).not.toBe(c.refreshToken);
    expect(Object.keys(r1.body).sort()).toEqual(['accessToken', 'expiresIn', 'refreshToken', 'tokenType']);
    const r2 = await call('refresh', { body: { refreshToken: r1.body.refreshToken } });
    expect(r2.status).toBe(200);
    expect((await call('account', { token: r2.body.accessToken })).status).toBe(200);
    // the first token again: theft assumed, the whole session ends
    const reuse = await call('refresh', { body: { refreshToken: c.refreshToken } });
    expect(reuse.status).toBe(401);
    expect((await call('account', { token: r2.body.accessToken })).status).toBe(401);
    expect((await call('refresh', { body: { refreshToken: r2.body.refreshToken } })).status).toBe(401);
    expect((await call('refresh', { body: { refreshToken: randomBytes(32).toString('base64url') } })).status).toBe(401);
  });

  it('logout: every token of the session is refused at once by every function', async () => {
    const c = await customer();
    const other = await call('login', { body: { email: c.email, password: PASSWORD }, ip: freshIp() });
    expect((await call('account', { token: c.accessToken })).status).toBe(200);
    expect((await call('probe', { method: 'GET', token: c.accessToken })).status).toBe(200);
    expect((await call('logout', { token: c.accessToken })).status).toBe(204);
    expect((await call('account', { token: c.accessToken })).status).toBe(401);
    expect((await call('probe', { method: 'GET', token: c.accessToken })).status).toBe(401);
    expect((await call('logout', { token: c.accessToken })).status).toBe(401);
    expect((await call('refresh', { body: { refreshToken: c.refreshToken } })).status).toBe(401);
    // the other session lives on
    expect((await call('account', { token: other.body.accessToken })).status).toBe(200);
  });
});

describe('password reset and change', () => {
  it('always answers 202; a reset revokes every session; the token is single use and lasts 1 hour', async () => {
    const c = await customer();
    const second = await call('login', { body: { email: c.email, password: PASSWORD }, ip: freshIp() });
    const known = await call('password-reset', { body: { email: c.email }, ip: freshIp() });
    const unknown = await call('password-reset', { body: { email: newEmail() }, ip: freshIp() });
    expect(known.status).toBe(202);
    expect(unknown.body).toEqual(known.body);
    const ev = (await outboxEvents()).filter((e) => e.type === 'user.password_reset_requested' && e.data.email === c.email);
    expect(ev).toHaveLength(1);
    expect(ev[0].data.resetUrl).toMatch(/^http:\/\/localhost:3000\/reset-password\?token=/);
    const ttl = await db('auth').one("SELECT extract(epoch FROM expires_at - created_at)::int AS s FROM email_tokens WHERE purpose = 'reset_password' ORDER BY created_at DESC LIMIT 1");
    expect(ttl.s).toBe(3_600);
    const token = linkToken(ev[0].data.resetUrl);
    const newPassword = 'an entirely new passphrase';
    const done = await call('password-reset', { body: { token, password: newPassword } });
    expect(done.status).toBe(200);
    for (const t of [c.accessToken, second.body.accessToken]) expect((await call('account', { token: t })).status).toBe(401);
    expect((await call('password-reset', { body: { token, password: 'yet another passphrase' } })).status).toBe(400);
    expect((await call('login', { body: { email: c.email, password: PASSWORD }, ip: freshIp() })).status).toBe(401);
    expect((await call('login', { body: { email: c.email, password: newPassword }, ip: freshIp() })).status).toBe(200);
    const changed = (await outboxEvents()).filter((e) => e.type === 'user.password_changed' && e.data.email === c.email);
    expect(changed).toHaveLength(1);
  });

  it('refuses an expired reset token', async () => {
    const c = await customer();
    await call('password-reset', { body: { email: c.email }, ip: freshIp() });
    const ev = (await outboxEvents()).filter((e) => e.type === 'user.password_reset_requested' && e.data.email === c.email).at(-1)!;
    await db('auth').none("UPDATE email_tokens SET expires_at = now() - interval '1 second' WHERE purpose = 'reset_password'");
    const r = await call('password-reset', { body: { token: linkToken(ev.data.resetUrl), password: 'an entirely new passphrase' } });
    expect(r.status).toBe(400);
    expect(r.body.error.fields).toEqual({ token: 'invalid, used or expired' });
  });

  it('change password keeps the current session and revokes the others', async () => {
    const c = await customer();
    const other = await call('login', { body: { email: c.email, password: PASSWORD }, ip: freshIp() });
    const wrong = await call('account', { body: { action: 'changePassword', currentPassword: 'wrong password here', newPassword: 'a brand new passphrase' }, token: c.accessToken });
    expect(wrong.status).toBe(400);
    expect(wrong.body.error.fields).toEqual({ currentPassword: 'is wrong' });
    const ok = await call('account', { body: { action: 'changePassword', currentPassword: PASSWORD, newPassword: 'a brand new passphrase' }, token: c.accessToken });
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual({ passwordChanged: true, endedSessions: 1 });
    expect((await call('account', { token: c.accessToken })).status).toBe(200);
    expect((await call('account', { token: other.body.accessToken })).status).toBe(401);
    expect((await outboxEvents()).filter((e) => e.type === 'user.password_changed' && e.data.email === c.email)).toHaveLength(1);
  });
});

describe('account', () => {
  it('shows the profile and sessions, updates the profile, revokes one of its own sessions only', async () => {
    const c = await customer();
    const other = await call('login', { body: { email: c.email, password: PASSWORD }, ip: freshIp(), headers: { 'user-agent': 'phone' } });
    const me = await call('account', { token: c.accessToken });
    expect(me.status).toBe(200);
    expect(me.body.profile).toMatchObject({ email: c.email, firstName: 'Ada', lastName: 'Lovelace', role: 'customer', emailVerified: true });
    expect(me.body.profile).not.toHaveProperty('passwordHash');
    expect(me.body.sessions).toHaveLength(2);
    expect(me.body.sessions.filter((s: { current: boolean }) => s.current)).toHaveLength(1);
    const otherSid = me.body.sessions.find((s: { current: boolean }) => !s.current).id;

    const upd = await call('account', { body: { action: 'updateProfile', firstName: 'Augusta' }, token: c.accessToken });
    expect(upd.body.profile).toMatchObject({ firstName: 'Augusta', lastName: 'Lovelace' });
    expect((await call('account', { body: { action: 'updateProfile' }, token: c.accessToken })).body.error.fields).toHaveProperty('firstName');
    expect((await call('account', { body: { action: 'explode' }, token: c.accessToken })).body.error.fields).toHaveProperty('action');

    const stranger = await createTestUser();
    expect((await call('account', { body: { action: 'revokeSession', sessionId: stranger.sessionId }, token: c.accessToken })).status).toBe(404);
    expect((await call('account', { token: stranger.accessToken })).status).toBe(200);
    expect((await call('account', { body: { action: 'revokeSession', sessionId: otherSid }, token: c.accessToken })).body).toEqual({ revoked: true });
    expect((await call('account', { token: other.body.accessToken })).status).toBe(401);
    expect((await call('account')).status).toBe(401);
  });

  it('platform admin grant/revoke changes the role of live sessions at once', async () => {
    const u = await createTestUser();
    const second = await loginTestUser(u);
    expect(await setAdminRole(u.email.toUpperCase(), 'admin')).toContain('is now admin (2 open session(s) updated)');
    for (const t of [u.accessToken, second.accessToken]) expect((await call('account', { token: t })).body.profile.role).toBe('admin');
    const fresh = await call('refresh', { body: { refreshToken: u.refreshToken } });
    expect(JSON.parse(Buffer.from(fresh.body.accessToken.split('.')[1], 'base64url').toString()).role).toBe('admin');
    await setAdminRole(u.email, 'customer');
    expect((await call('account', { token: fresh.body.accessToken })).body.profile.role).toBe('customer');
    await expect(setAdminRole('nobody@example.test', 'admin')).rejects.toThrow(/No account uses/);
  });
});
