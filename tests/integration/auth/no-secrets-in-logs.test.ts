/**
 * No password or token in any log line: the auth functions run in a child
 * process at LOG_LEVEL=trace, a full flow (including failures: wrong
 * password, bad and reused tokens, malformed bodies) goes through them, and
 * every captured stdout/stderr line is searched for every secret used.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { repoRoot } from '@saasodoo/platform/config';
import { closeDatabases } from '@saasodoo/platform/db/index';
import { dropNamespace, migrate } from '@saasodoo/platform/db/migrate';
import { closeRedis } from '@saasodoo/platform/redis';
import { linkToken, outboxEvents } from './serve.ts';

let child: ChildProcess;
let captured = '';
let ports: Record<string, number> = {};

async function call(fn: string, o: { body?: unknown; token?: string; raw?: string; method?: string } = {}) {
  const headers: Record<string, string> = { 'content-type': 'application/json', 'x-forwarded-for': `10.9.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}` };
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  const res = await fetch(`http://127.0.0.1:${ports[fn]}/`, {
    method: o.method ?? 'POST',
    headers,
    body: o.method === 'GET' ? undefined : (o.raw ?? JSON.stringify(o.body ?? {})),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

beforeAll(async () => {
  await migrate({ databases: ['auth'] });
  // From a bundle (platform/bin/host-bundle.mjs), not under tsx: the same code, seconds sooner.
  const { hostBundle } = await import('@saasodoo/platform/bin/host-bundle');
  child = spawn(process.execPath, [await hostBundle('auth-serve-child', 'tests/integration/auth/serve-child.ts')], {
    cwd: repoRoot,
    env: { ...process.env, LOG_LEVEL: 'trace' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stderr!.on('data', (d) => (captured += d));
  ports = await new Promise((resolve, reject) => {
    let first = '';
    child.once('exit', (code) => reject(new Error(`child exited ${code}: ${captured}`)));
    child.stdout!.on('data', (d) => {
      if (Object.keys(ports).length) {
        captured += d;
        return;
      }
      first += d;
      const nl = first.indexOf('\n');
      if (nl < 0) return;
      const line = first.slice(0, nl);
      captured += first.slice(nl + 1);
      try {
        resolve(JSON.parse(line).ports);
      } catch {
        captured += line;
      }
    });
  });
});

afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
  await closeRedis();
  await closeDatabases();
  await dropNamespace();
});

it('logs no password or token, whatever happens', async () => {
  const email = `log-${randomBytes(4).toString('hex')}@example.test`;
  const password = `pw-${randomBytes(12).toString('hex')}`;
  const secrets: string[] = [password];
  const base = { email, password, firstName: 'Log', lastName: 'Test', acceptTerms: true };
  expect((await call('signup', { body: base })).status).toBe(202);
  expect((await call('signup', { body: base })).status).toBe(202); // taken
  expect((await call('signup', { body: { ...base, email: 'bad', password: `${password}-short`.slice(0, 5) } })).status).toBe(400);
  expect((await call('login', { body: { email, password } })).status).toBe(403); // unverified
  const verify = (await outboxEvents()).find((e) => e.type === 'user.verification_requested')!;
  const verifyToken = linkToken(verify.data.verifyUrl);
  secrets.push(verifyToken);
  expect((await call('verify-email', { body: { token: verifyToken } })).status).toBe(200);
  expect((await call('verify-email', { body: { token: verifyToken } })).status).toBe(400);
  expect((await call('login', { body: { email, password: `${password}-wrong` } })).status).toBe(401);
  secrets.push(`${password}-wrong`);
  const login = await call('login', { body: { email, password } });
  expect(login.status).toBe(200);
  secrets.push(login.body.accessToken, login.body.refreshToken);
  const refreshed = await call('refresh', { body: { refreshToken: login.body.refreshToken } });
  secrets.push(refreshed.body.accessToken, refreshed.body.refreshToken);
  expect((await call('refresh', { body: { refreshToken: login.body.refreshToken } })).status).toBe(401); // reuse
  const again = await call('login', { body: { email, password } });
  secrets.push(again.body.accessToken, again.body.refreshToken);
  expect((await call('account', { method: 'GET', token: again.body.accessToken })).status).toBe(200);
  const newPassword = `new-${randomBytes(12).toString('hex')}`;
  secrets.push(newPassword);
  expect((await call('account', { body: { action: 'changePassword', currentPassword: password, newPassword }, token: again.body.accessToken })).status).toBe(200);
  expect((await call('account', { body: { action: 'changePassword', currentPassword: password, newPassword }, token: again.body.accessToken })).status).toBe(400);
  expect((await call('password-reset', { body: { email } })).status).toBe(202);
  const reset = (await outboxEvents()).find((e) => e.type === 'user.password_reset_requested')!;
  const resetToken = linkToken(reset.data.resetUrl);
  const resetPassword = `reset-${randomBytes(12).toString('hex')}`;
  secrets.push(resetToken, resetPassword);
  expect((await call('password-reset', { body: { token: resetToken, password: resetPassword } })).status).toBe(200);
  expect((await call('logout', { token: again.body.accessToken })).status).toBe(401); // revoked by the reset
  expect((await call('login', { raw: `{"email":"${email}","password":"${resetPassword}"` })).status).toBe(400); // malformed JSON
  const last = await call('login', { body: { email, password: resetPassword } });
  secrets.push(last.body.accessToken, last.body.refreshToken);
  expect((await call('logout', { token: last.body.accessToken })).status).toBe(204);
  expect((await call('account', { method: 'GET', token: last.body.accessToken })).status).toBe(401);

  await new Promise((r) => setTimeout(r, 300)); // let the child flush
  expect(captured.length).toBeGreaterThan(0); // trace level: the runtime logs every request
  if (process.env.SHOW_CAPTURED) console.log(captured.slice(0, 3000));
  for (const s of secrets) {
    expect(captured.includes(s), `a secret (${s.slice(0, 4)}...) appears in the logs`).toBe(false);
    // the signature part of a JWT alone is also a secret-bearing fragment
    const sig = s.split('.')[2];
    if (sig) expect(captured.includes(sig)).toBe(false);
  }
});
