/**
 * plans, trial-eligibility and billing (SPEC 3, 4) served in-process against
 * the Kill Bill simulator: trial fields only for eligible callers, one trial
 * per customer for life (20 concurrent requests → exactly one), fail closed
 * when Redis or Kill Bill is down, another tenant's ids → 404. The instances
 * function runs too, behind a small /api router as GATEWAY_URL: billing asks
 * it whether a startSubscription names a pending instance of the caller.
 */
import { randomUUID } from 'node:crypto';
import http, { type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropNamespace, migrate } from '@saasodoo/platform/db/migrate';
import { closeDatabases, db } from '@saasodoo/platform/db/index';
import { closeRedis } from '@saasodoo/platform/redis';
import { resetConfig } from '@saasodoo/platform/config';
import { resetKillbill } from '@saasodoo/platform/billing/killbill';
import { trialEligibility } from '@saasodoo/platform/billing/service';
import { startFunction } from '@saasodoo/platform/host/run-function';
import plansFn from '@saasodoo/fn-plans';
import eligibilityFn from '@saasodoo/fn-trial-eligibility';
import billingFn from '@saasodoo/fn-billing';
import instancesFn from '@saasodoo/fn-instances';
import { createTestUser, type TestUser } from '../../helpers/auth.ts';
import { startTestKillbill, type TestKillbill } from '../../helpers/killbill.ts';
import { freePort } from '../../helpers/ports.ts';

let kb: TestKillbill;
const servers: Server[] = [];
const urls: Record<string, string> = {};

beforeAll(async () => {
  await migrate();
  kb = await startTestKillbill();
  for (const [name, fn] of [
    ['plans', plansFn],
    ['trial-eligibility', eligibilityFn],
    ['billing', billingFn],
    ['instances', instancesFn],
  ] as const) {
    const s = await startFunction(fn, await freePort()); // faas-js-runtime treats port 0 as 8080
    servers.push(s);
    urls[name] = `http://127.0.0.1:${(s.address() as { port: number }).port}/`;
  }
  // What the gateway does for these functions: /api/<name>?q → <name>'s /?q.
  const router = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const target = urls[/^\/api\/([a-z-]+)$/.exec(url.pathname)?.[1] ?? ''];
    if (!target) return void res.writeHead(404).end();
    const to = new URL(target);
    req.pipe(
      http
        .request({ host: to.hostname, port: to.port, path: `/${url.search}`, method: req.method, headers: req.headers }, (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        })
        .on('error', () => res.writeHead(502).end()),
    );
  });
  await new Promise<void>((r) => router.listen(0, '127.0.0.1', () => r()));
  servers.push(router);
  process.env.GATEWAY_URL = `http://127.0.0.1:${(router.address() as { port: number }).port}`;
  resetConfig();
});

afterAll(async () => {
  for (const s of servers) await new Promise((r) => s.close(r));
  await kb?.stop();
  await closeRedis();
  await closeDatabases();
  await dropNamespace();
});

const auth = (u: TestUser) => ({ authorization: `Bearer ${u.accessToken}` });
async function call(fn: string, u?: TestUser, body?: unknown) {
  const res = await fetch(urls[fn], {
    method: body ? 'POST' : 'GET',
    headers: { ...(u ? auth(u) : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, body: (await res.json().catch(() => undefined)) as any };
}
/** A row as the instances function writes it before it asks billing for the subscription. */
async function pendingInstance(u: TestUser, id: string, plan: string, trial: boolean): Promise<void> {
  await db('instance').none(
    `INSERT INTO instances (id, customer_id, name, subdomain, plan, odoo_version, status, billing_status, trial, resources)
     VALUES ($1, $2, 'Test', $3, $4, '17', 'pending_payment', $5, $6, '{"cpu":1,"memoryMiB":1024,"storageGiB":5}') ON CONFLICT (id) DO NOTHING`,
    [id, u.userId, `t-${id.slice(0, 8)}`, plan, trial ? 'trial' : 'payment_required', trial],
  );
}
async function start(u: TestUser, plan: string, trial: boolean, instanceId = randomUUID()) {
  await pendingInstance(u, instanceId, plan, trial);
  return call('billing', u, { action: 'startSubscription', instanceId, plan, trial });
}

describe('plans and trials', () => {
  it('plans come from the catalogue with entitlements; trial fields for eligible callers only', async () => {
    const anon = await call('plans');
    expect(anon.status).toBe(200);
    expect(anon.body.items.map((p: any) => p.id)).toEqual(['basic-immediate', 'basic-monthly', 'standard-monthly', 'premium-monthly']);
    expect(anon.body.items.find((p: any) => p.id === 'premium-monthly')).toEqual({
      id: 'premium-monthly',
      name: 'Premium',
      price: { amount: 10, currency: 'USD', period: 'month' },
      resources: { cpu: 4, memoryMiB: 8192, storageGiB: 50 },
      database: 'dedicated',
      customDomains: 5,
      staging: true,
      trial: { days: 14 },
    });
    const fresh = await createTestUser();
    expect((await call('trial-eligibility', fresh)).body).toEqual({ eligible: true, reason: 'eligible', trialDays: 14 });
    expect((await call('plans', fresh)).body.items.filter((p: any) => p.trial)).toHaveLength(3);
  });

  it('20 concurrent trial requests give exactly one trial; afterwards no trial anywhere', async () => {
    const u = await createTestUser();
    const answers = await Promise.all(Array.from({ length: 20 }, () => start(u, 'standard-monthly', true)));
    expect(answers.filter((a) => a.status === 201)).toHaveLength(1);
    expect(answers.filter((a) => a.status === 409 && a.body.error.code === 'trial_unavailable')).toHaveLength(19);
    expect((await call('trial-eligibility', u)).body).toMatchObject({ eligible: false, reason: 'had_trial' });
    const plans = (await call('plans', u)).body.items;
    expect(plans.some((p: any) => 'trial' in p)).toBe(false);
    // converted then cancelled: still no second trial
    const subId = answers.find((a) => a.status === 201)!.body.subscriptionId;
    expect((await call('billing', u, { action: 'cancel', subscriptionId: subId, immediate: true })).status).toBe(202);
    expect((await start(u, 'basic-monthly', true)).status).toBe(409);
  });

  it('startSubscription is idempotent per instance', async () => {
    const u = await createTestUser();
    const instanceId = randomUUID();
    const a = await start(u, 'basic-immediate', false, instanceId);
    const b = await start(u, 'basic-immediate', false, instanceId);
    expect(a.status).toBe(201);
    expect(b.status).toBe(200);
    expect(b.body.subscriptionId).toBe(a.body.subscriptionId);
  });

  it('an active paid subscription makes a customer ineligible', async () => {
    const u = await createTestUser();
    expect((await start(u, 'basic-immediate', false)).status).toBe(201);
    expect((await call('trial-eligibility', u)).body).toMatchObject({ eligible: false, reason: 'active_subscription' });
  });

  it('trial eligibility fails closed when Kill Bill or Redis is down; a trial start then answers 503, deciding nothing', async () => {
    const customerId = randomUUID();
    const saved = process.env.KILLBILL_URL;
    process.env.KILLBILL_URL = 'http://127.0.0.1:9';
    resetConfig();
    resetKillbill();
    expect(await trialEligibility(customerId)).toEqual({ eligible: false, reason: 'unavailable' });
    // Showing the offer fails closed; starting a trial decides nothing on a failed read: 503 to retry, not "no trial".
    const u = await createTestUser();
    const down = await start(u, 'basic-monthly', true);
    expect(down.status).toBe(503);
    expect(down.body.error.code).toBe('unavailable');
    process.env.KILLBILL_URL = saved;
    resetConfig();
    resetKillbill();
    expect((await start(u, 'basic-monthly', true)).status).toBe(201); // the trial was not used up by the failed read
    await closeRedis();
    const savedRedis = process.env.REDIS_URL;
    process.env.REDIS_URL = 'redis://127.0.0.1:9';
    resetConfig();
    expect(await trialEligibility(customerId)).toEqual({ eligible: false, reason: 'unavailable' });
    await closeRedis();
    if (savedRedis === undefined) delete process.env.REDIS_URL;
    else process.env.REDIS_URL = savedRedis;
    resetConfig();
    expect((await trialEligibility(customerId)).eligible).toBe(true);
  });
});

describe('billing', () => {
  it("shows the caller's subscriptions and invoices; another tenant's subscription is 404", async () => {
    const alice = await createTestUser();
    const bob = await createTestUser();
    const instanceId = randomUUID();
    const started = await start(alice, 'basic-immediate', false, instanceId);
    const view = await call('billing', alice);
    expect(view.status).toBe(200);
    expect(view.body.subscriptions).toMatchObject([{ id: started.body.subscriptionId, instanceId, plan: 'basic-immediate', state: 'ACTIVE' }]);
    expect(view.body.invoices).toMatchObject([{ amount: 5, balance: 0, currency: 'USD' }]);
    expect(view.body.paymentMethod).toMatchObject({ isDefault: true });
    const foreign = await call('billing', bob, { action: 'cancel', subscriptionId: started.body.subscriptionId });
    expect(foreign.status).toBe(404);
    const change = await call('billing', alice, { action: 'changePlan', subscriptionId: started.body.subscriptionId, plan: 'standard-monthly' });
    expect(change.status).toBe(202);
    const bad = await call('billing', alice, { action: 'changePlan', subscriptionId: 'nope', plan: 'x' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.fields).toHaveProperty('subscriptionId');
    expect((await call('billing')).status).toBe(401);
  });
});

describe('cards (billing function)', () => {
  it('removeCard with no card on file is 409 naming `card`; with extra fields, 400', async () => {
    const u = await createTestUser();
    const none = await call('billing', u, { action: 'removeCard' });
    expect(none.status).toBe(409);
    expect(none.body.error.fields).toEqual({ card: 'no card on file' });
    const bad = await call('billing', u, { action: 'removeCard', cardId: 'x' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.fields).toHaveProperty('cardId');
  });

  it('addCard → Stripe card page → cardAdded puts the card on file; another customer cannot use the session', async () => {
    const u = await createTestUser();
    const other = await createTestUser();
    const add = await call('billing', u, { action: 'addCard' });
    expect(add.status, JSON.stringify(add.body)).toBe(201);
    expect(add.body.url).toMatch(/\/pay\/cs_test_[0-9a-f]{32}$/);
    const page = await fetch(add.body.url, { method: 'POST', redirect: 'manual', body: new URLSearchParams({ number: '4242 4242 4242 4242', expiry: '12 / 34', cvc: '123' }) });
    const back = new URL(page.headers.get('location')!);
    expect(back.pathname).toBe('/billing/card');
    const sessionId = back.searchParams.get('session')!;
    expect((await call('billing', other, { action: 'cardAdded', sessionId })).status).toBe(404);
    const added = await call('billing', u, { action: 'cardAdded', sessionId });
    expect(added).toEqual({ status: 200, body: { card: { brand: 'visa', last4: '4242', expMonth: 12, expYear: 2034 }, unpaid: [] } });
    expect((await call('billing', u, { action: 'cardAdded', sessionId })).status).toBe(200); // a reload of the return page
    const summary = await call('billing', u);
    expect(summary.body.paymentMethod).toMatchObject({ type: 'card', card: { last4: '4242' }, failing: false });
    expect((await call('billing', u, { action: 'cardAdded', sessionId: 'cs_test_<script>' })).body.error.fields).toHaveProperty('sessionId');

    // Charged to the card; the invoice opens with its lines (the plan, never Kill Bill's phase name), for its owner only.
    const account = (await kb.adapter.accountByCustomer(u.userId))!;
    await kb.adapter.createSubscription({ accountId: account.accountId!, plan: 'basic-immediate', trial: false, instanceId: randomUUID(), productName: 'Basic' });
    const inv = (await kb.adapter.invoices(account.accountId!)).find((i) => (i.amount ?? 0) > 0)!;
    const open = async (who: TestUser) => fetch(`${urls.billing}?invoice=${inv.invoiceId}`, { headers: auth(who) });
    const view = await (await open(u)).json();
    expect(view).toMatchObject({ number: inv.invoiceNumber, amount: 5, balance: 0 });
    expect(view.lines).toEqual([{ kind: 'charge', plan: 'basic-immediate', addOn: false, trial: false, startDate: expect.any(String), endDate: expect.any(String), amount: 5 }]);
    expect(JSON.stringify(view)).not.toMatch(/evergreen|basic-immediate-/);
    expect((await open(other)).status).toBe(404);
  });
});
