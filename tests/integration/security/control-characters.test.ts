/**
 * Control characters in text inputs (issue 16), through the gateway as a
 * client sends them: a NUL in a free-text field used to reach PostgreSQL and
 * answer 500 (signup firstName, instances name, account updateProfile). Now
 * every text field answers 400 naming the field (free-text fields by their
 * schema, any other string by the kit's net), and free text is stored in
 * NFC. Kill Bill's notification fields at webhook-intake follow the same rule.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { webhookToken } from '@saasodoo/platform/billing/webhook';
import { config } from '@saasodoo/platform/config';
import { db } from '@saasodoo/platform/db/index';
import { gatewayProxyToken } from '@saasodoo/platform/host/gateway';
import { createTestUser, type TestUser } from '../../helpers/auth.ts';
import { startPlatform, type Platform } from '../../helpers/platform.ts';

let p: Platform;
let alice: TestUser;
let ip = 1;

type Answer = { status: number; body: { error?: { code: string; fields?: Record<string, string> } } & Record<string, any> };

/** One request through the gateway, from a client IP of its own (so per-IP limits stay out of the way). */
async function api(method: 'GET' | 'POST', path: string, o: { body?: unknown; token?: string } = {}): Promise<Answer> {
  const headers: Record<string, string> = { 'x-forwarded-for': `198.51.100.${ip++ % 250}`, 'x-saasodoo-proxy-token': gatewayProxyToken() };
  if (o.body !== undefined) headers['content-type'] = 'application/json';
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  const res = await fetch(`${p.gateway}${path}`, { method, headers, body: o.body === undefined ? undefined : JSON.stringify(o.body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : {} };
}

const signupBody = (over: Record<string, unknown> = {}) => ({
  email: `text-${randomBytes(5).toString('hex')}@example.test`,
  password: 'a sensible passphrase 42',
  firstName: 'Ada',
  lastName: 'Lovelace',
  acceptTerms: true,
  ...over,
});
let n = 0;
const instanceBody = (over: Record<string, unknown> = {}) => ({ name: 'Shop', subdomain: `text-${Date.now().toString(36)}-${n++}`, plan: 'basic-monthly', odooVersion: '17', ...over });

beforeAll(async () => {
  p = await startPlatform({ warm: ['signup', 'account', 'instances', 'webhook-intake'] });
  alice = await createTestUser();
}, 180_000);

afterAll(async () => {
  await p?.stop();
});

describe('control characters in text fields answer 400 naming the field, never 500', () => {
  it('POST /api/signup with a NUL (or another control, or a lone surrogate) in firstName or lastName', async () => {
    for (const [field, value] of [
      ['firstName', 'Ada\u0000'],
      ['firstName', '\u0000'],
      ['lastName', 'Love\u001blace'],
      ['lastName', 'Lo\u007fve'],
      ['firstName', 'A\ud800'],
      ['firstName', 'Ada\tB'],
    ] as const) {
      const r = await api('POST', '/api/signup', { body: signupBody({ [field]: value }) });
      expect(r.status, `${field}=${JSON.stringify(value)}`).toBe(400);
      expect(Object.keys(r.body.error!.fields!), JSON.stringify(r.body)).toEqual([field]);
    }
    const r = await api('POST', '/api/signup', { body: signupBody({ firstName: 'Ada\u0000' }) });
    expect(r.body.error!.fields).toEqual({ firstName: 'must not contain control characters (found U+0000)' });
  });

  it('POST /api/instances with a NUL in name', async () => {
    const r = await api('POST', '/api/instances', { token: alice.accessToken, body: instanceBody({ name: 'My\u0000Shop' }) });
    expect(r.status).toBe(400);
    expect(r.body.error!.fields).toEqual({ name: 'must not contain control characters (found U+0000)' });
  });

  it('POST /api/account updateProfile with a NUL in firstName or lastName', async () => {
    for (const field of ['firstName', 'lastName']) {
      const r = await api('POST', '/api/account', { token: alice.accessToken, body: { action: 'updateProfile', [field]: 'X\u0000' } });
      expect(r.status).toBe(400);
      expect(r.body.error!.fields).toEqual({ [field]: 'must not contain control characters (found U+0000)' });
    }
    const profile = await api('GET', '/api/account', { token: alice.accessToken });
    expect(profile.body.profile).toMatchObject({ firstName: alice.firstName, lastName: alice.lastName });
  });

  it('strings the schema declares plainly are held to the rule too (the kit applies it to every parsed string)', async () => {
    const plan = await api('POST', '/api/instances', { token: alice.accessToken, body: instanceBody({ plan: 'basic\u0000' }) });
    expect(plan.status).toBe(400);
    expect(plan.body.error!.fields).toEqual({ plan: 'must not contain control characters (found U+0000)' });
    const ignored = await api('POST', '/api/instances', { token: alice.accessToken, body: instanceBody({ resources: { note: 'a\u0000' } }) });
    expect(ignored.status).toBe(400);
    expect(ignored.body.error!.fields).toEqual({ 'resources.note': 'must not contain control characters (found U+0000)' });
    const query = await api('GET', '/api/instances?available=%00abc', { token: alice.accessToken });
    expect(query.status).toBe(400);
    expect(query.body.error!.fields).toEqual({ available: 'must not contain control characters (found U+0000)' });
    const password = await api('POST', '/api/login', { body: { email: alice.email, password: 'pass\u0000word and more' } });
    expect(password.status).toBe(400);
    expect(Object.keys(password.body.error!.fields!)).toEqual(['password']);
  });
});

describe('free text is stored in NFC', () => {
  it('a signup name with combining characters is stored composed', async () => {
    const body = signupBody({ firstName: 'Zoe\u0308', lastName: 'Mu\u0308ller-Ne\u0301ron' });
    expect((await api('POST', '/api/signup', { body })).status).toBe(202);
    const row = await db('auth').one<{ first_name: string; last_name: string }>('SELECT first_name, last_name FROM users WHERE email = $1', [body.email]);
    expect(row).toEqual({ first_name: 'Zoë', last_name: 'Müller-Néron' });
    expect(row.first_name).toBe('Zo\u00eb');
  });

  it('updateProfile stores and answers the NFC form', async () => {
    const bob = await createTestUser();
    const r = await api('POST', '/api/account', { token: bob.accessToken, body: { action: 'updateProfile', firstName: 'Jose\u0301', lastName: 'A\u030angstro\u0308m' } });
    expect(r.status).toBe(200);
    const read = await api('GET', '/api/account', { token: bob.accessToken });
    expect(read.body.profile).toMatchObject({ firstName: 'Jos\u00e9', lastName: '\u00c5ngstr\u00f6m' });
  });

  it('an instance name with combining characters is stored composed (and counted after composing)', async () => {
    const name = 'Cafe\u0301 '.repeat(18).trim(); // 107 UTF-16 units as sent, 89 once composed: within the 100 limit
    const r = await api('POST', '/api/instances', { token: alice.accessToken, body: instanceBody({ name }) });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    const got = await api('GET', `/api/instances?id=${r.body.id}`, { token: alice.accessToken });
    expect(got.body.name).toBe(name.normalize('NFC'));
    expect(got.body.name).toContain('Caf\u00e9');
  });
});

describe('Kill Bill notification fields at webhook-intake', () => {
  const query = () => new URLSearchParams({ tenant: config().KILLBILL_API_KEY, token: webhookToken(config().KILLBILL_API_KEY) }).toString();
  const note = (over: Record<string, unknown>) => ({ eventType: 'INVOICE_CREATION', accountId: null, objectType: 'INVOICE', objectId: null, metaData: null, ...over });

  it('a control character in a field, or escaped inside metaData, answers 400 naming the field; JSON whitespace in metaData is kept', async () => {
    const bad = await api('POST', `/api/webhook-intake?${query()}`, { body: note({ eventType: 'INVOICE_\u0000CREATION' }) });
    expect(bad.status).toBe(400);
    expect(bad.body.error!.fields).toEqual({ eventType: 'must not contain control characters (found U+0000)' });
    const inner = await api('POST', `/api/webhook-intake?${query()}`, { body: note({ metaData: '{"invoiceId":"a\\u0000"}' }) });
    expect(inner.status).toBe(400);
    expect(inner.body.error!.fields).toEqual({ metaData: 'holds JSON whose invoiceId must not contain control characters (found U+0000)' });
    const metaData = `{\n\t"note": "line\\nbreak ${randomBytes(4).toString('hex')}"\n}`;
    const ok = await api('POST', `/api/webhook-intake?${query()}`, { body: note({ metaData }) });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    const stored = await db('billing').one<{ body: { metaData: string } }>('SELECT body FROM kb_inbox WHERE dedupe_key = $1', [ok.body.id]);
    expect(stored.body.metaData).toBe(metaData);
  });
});
