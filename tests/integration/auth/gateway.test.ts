/**
 * The account functions through the local host: the supervisor runs each as
 * its own process (lazy start) and the gateway routes /api/<name> to it.
 * Tokens issued by one process are accepted and revoked in the others.
 */
import type { Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { closeDatabases } from '@saasodoo/platform/db/index';
import { dropNamespace, migrate } from '@saasodoo/platform/db/migrate';
import { startGateway } from '@saasodoo/platform/host/gateway';
import { Supervisor } from '@saasodoo/platform/host/supervisor';
import { closeRedis } from '@saasodoo/platform/redis';
import { freePort, freePortRange } from '../../helpers/ports.ts';
import { linkToken, outboxEvents, AUTH_FUNCTIONS } from './serve.ts';

let supervisor: Supervisor;
let gateway: Server;
let base: string;

async function api(fn: string, o: { body?: unknown; token?: string } = {}) {
  const headers: Record<string, string> = {};
  if (o.body !== undefined) headers['content-type'] = 'application/json';
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  const res = await fetch(`${base}/api/${fn}`, { method: o.body === undefined && fn === 'account' ? 'GET' : 'POST', headers, body: o.body === undefined ? undefined : JSON.stringify(o.body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

beforeAll(async () => {
  await migrate({ databases: ['auth'] });
  supervisor = new Supervisor({ portBase: await freePortRange(AUTH_FUNCTIONS.length), only: [...AUTH_FUNCTIONS], env: { LOG_LEVEL: 'warn' } });
  await supervisor.start();
  const port = await freePort();
  gateway = await startGateway({ port, supervisor, baseDomain: 'localhost' });
  base = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  await new Promise((r) => gateway?.close(r));
  await supervisor?.stop();
  await closeRedis();
  await closeDatabases();
  await dropNamespace();
});

it('signup → verify → login → account → refresh → logout, each in its own process', async () => {
  const email = `gw-${randomBytes(4).toString('hex')}@example.test`;
  const password = 'a sensible passphrase 42';
  expect((await api('signup', { body: { email, password, firstName: 'G', lastName: 'W', acceptTerms: true } })).status).toBe(202);
  const ev = (await outboxEvents()).find((e) => e.type === 'user.verification_requested' && e.data.email === email)!;
  expect((await api('verify-email', { body: { token: linkToken(ev.data.verifyUrl) } })).status).toBe(200);
  const login = await api('login', { body: { email, password } });
  expect(login.status).toBe(200);
  expect((await api('account', { token: login.body.accessToken })).body.profile.email).toBe(email);
  const refreshed = await api('refresh', { body: { refreshToken: login.body.refreshToken } });
  expect(refreshed.status).toBe(200);
  expect((await api('logout', { token: refreshed.body.accessToken })).status).toBe(204);
  expect((await api('account', { token: refreshed.body.accessToken })).status).toBe(401);
  expect((await api('account', { token: login.body.accessToken })).status).toBe(401);
  expect((await api('password-reset', { body: { email } })).status).toBe(202);
}, 90_000);
