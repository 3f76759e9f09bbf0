/**
 * A create that fails half-way leaves no subscription behind: the real
 * instances, billing and lifecycle functions against the Kill Bill simulator,
 * with the answer lost after the subscription was opened, once between
 * billing and Kill Bill (billing answers 503) and once between instances and
 * billing (no answer at all, after billing had also recorded the trial). The customer gets a 503 JSON error, Kill Bill
 * ends with no open subscription for that instance id, billing refuses a late
 * start for it, its notifications drive nothing, and a retried create gets
 * one subscription (and the trial the failed one had taken).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KillBill, resetKillbill, type Subscription } from '@saasodoo/platform/billing/killbill';
import { settleFailedCreate, startSubscription, voidSubscriptions } from '@saasodoo/platform/billing/service';
import { resetConfig } from '@saasodoo/platform/config';
import { db } from '@saasodoo/platform/db/index';
import { createTestUser, type TestUser } from '../../helpers/auth.ts';
import { lossyHttpProxy, type LossyHttpProxy } from '../../helpers/lossy-http-proxy.ts';
import { call, deliver, startHarness, until, type Harness } from './harness.ts';

let h: Harness;
let kb: KillBill;
/** Between billing (and lifecycle) and Kill Bill. */
let kbProxy: LossyHttpProxy;
/** Between instances and billing (the gateway hop). */
let billingProxy: LossyHttpProxy;

beforeAll(async () => {
  h = await startHarness({ realBilling: true, dispatch: true });
  kb = new KillBill({ url: h.kb!.url, readRetries: 0 });
  kbProxy = await lossyHttpProxy(h.kb!.url);
  billingProxy = await lossyHttpProxy(process.env.GATEWAY_URL!);
  process.env.KILLBILL_URL = kbProxy.url;
  process.env.GATEWAY_URL = billingProxy.url;
  resetConfig();
  resetKillbill();
});
afterAll(async () => {
  await h?.stop();
  await kbProxy?.close();
  await billingProxy?.close();
});

const isOpen = (s: Subscription) => s.state !== 'CANCELLED' && s.state !== 'EXPIRED';
const subdomain = (p: string) => `${p}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 5)}`;

async function subscriptionsOf(customerId: string): Promise<Subscription[]> {
  const account = await kb.accountByCustomer(customerId);
  return account ? (await kb.bundlesOfAccount(account.accountId!)).flatMap((b) => b.subscriptions ?? []) : [];
}

/** What Kill Bill would push for the subscription (lifecycle re-reads the state anyway). */
function notify(eventType: string, subscriptionId: string) {
  return deliver(h.extra.lifecycle!, `org.killbill.${eventType.toLowerCase()}`, {
    eventType,
    accountId: null,
    objectType: 'SUBSCRIPTION',
    objectId: subscriptionId,
    metaData: null,
  });
}

/** Events lifecycle queued about an instance (instance commands, billing.status_changed). */
const lifecycleOutbox = (instanceId: string) => db('billing').manyOrNone('SELECT type FROM outbox WHERE subject = $1', [instanceId]);

function expectUnavailable(r: Awaited<ReturnType<typeof call>>) {
  expect(r.status, JSON.stringify(r.body)).toBe(503);
  expect(r.headers.get('content-type')).toContain('application/json');
  expect(r.headers.get('retry-after')).toMatch(/^\d+$/);
  expect(r.body.error).toMatchObject({ code: 'unavailable', message: expect.stringMatching(/billing/i) });
}

describe('a create whose subscription was opened but whose answer was lost', () => {
  let alice: TestUser;
  let failedId: string;
  let failedSub: Subscription;

  it('Kill Bill opened a trial subscription, billing answered 503: the customer gets a 503 and the subscription is voided', async () => {
    alice = await createTestUser();
    const body = { name: 'Lost', subdomain: subdomain('lost'), plan: 'standard-monthly', odooVersion: '17', trial: true };
    kbProxy.lose = (r) => r.method === 'POST' && r.path === '/1.0/kb/subscriptions';
    const r = await call(h.fn.instances, alice.accessToken, { body }).finally(() => (kbProxy.lose = undefined));
    expectUnavailable(r);
    // Kill Bill did create it: the lost answer was a 201.
    expect(kbProxy.lost.map((l) => l.status)).toEqual([201]);
    const subs = await subscriptionsOf(alice.userId);
    expect(subs).toHaveLength(1);
    failedSub = subs[0]!;
    failedId = failedSub.bundleExternalKey!;
    expect(await db('instance').oneOrNone('SELECT 1 FROM instances WHERE id = $1', [failedId])).toBeNull();
    expect((await call(h.fn.instances, alice.accessToken, { query: { available: body.subdomain } })).body.available).toBe(true);

    // instance.create_failed → lifecycle voids it: service and billing end now.
    const voided = (await until('the subscription voided', async () => {
      const s = await kb.subscription(failedSub.subscriptionId!);
      return s && !isOpen(s) ? s : null;
    }))!;
    expect(voided.state).toBe('CANCELLED');
    expect(voided.billingEndDate).toBe(voided.cancelledDate);
    expect((await subscriptionsOf(alice.userId)).filter(isOpen)).toEqual([]);

    // The retry is a new instance with one subscription, and the trial the failed create took is still there.
    const again = await call(h.fn.instances, alice.accessToken, { body });
    expect(again.status, JSON.stringify(again.body)).toBe(202);
    expect(again.body.id).not.toBe(failedId);
    const open = (await subscriptionsOf(alice.userId)).filter(isOpen);
    expect(open.map((s) => [s.bundleExternalKey, s.phaseType])).toEqual([[again.body.id, 'TRIAL']]);
  });

  it("the failed create's Kill Bill notifications drive nothing (no provision, terminate or mail)", async () => {
    for (const type of ['SUBSCRIPTION_CREATION', 'SUBSCRIPTION_CANCEL']) {
      expect((await notify(type, failedSub.subscriptionId!)).status).toBeLessThan(300);
    }
    expect(await lifecycleOutbox(failedId)).toEqual([]);
  });

  it('voiding a subscription another caller cancelled after it was read is done, not an error (seen in the long fault run: 500s and retries)', async () => {
    const stale = { ...failedSub, state: 'ACTIVE' } as Subscription; // as read before settleFailedCreate voided it
    await expect(voidSubscriptions([stale])).resolves.toBeUndefined();
    expect((await kb.subscription(failedSub.subscriptionId!))?.state).toBe('CANCELLED');
  });

  it('a start for a failed create, arriving late, is refused and opens nothing', async () => {
    // Through billing: the instance row is gone, so the instance check refuses it.
    const late = await call(h.extra.billing!, alice.accessToken, {
      body: { action: 'startSubscription', instanceId: failedId, plan: 'standard-monthly', trial: false },
    });
    expect(late.status, JSON.stringify(late.body)).toBe(404);
    expect(late.body.error.code).toBe('not_found');
    // One already past that check when the create gave up meets the failed-create record.
    await expect(startSubscription({ customerId: alice.userId }, { instanceId: failedId, plan: 'standard-monthly', trial: false })).rejects.toMatchObject({ status: 409, code: 'create_failed' });
    expect((await kb.bundlesOfInstance(failedId)).flatMap((b) => b.subscriptions ?? []).filter(isOpen)).toEqual([]);
  });

  it('billing opened a trial but its answer never reached instances: 503, nothing provisioned meanwhile, voided, trial given back', async () => {
    const bob = await createTestUser();
    const body = { name: 'Slow', subdomain: subdomain('slow'), plan: 'basic-monthly', odooVersion: '18', trial: true };
    let release!: () => void;
    billingProxy.hold = new Promise((r) => (release = r));
    billingProxy.lose = (r) => r.path === '/api/billing' && JSON.parse(r.body || '{}').action === 'startSubscription';
    const pending = call(h.fn.instances, bob.accessToken, { body });
    try {
      const lost = await until('billing answered', () => billingProxy.lost[0]);
      expect(lost.status).toBe(201);
      const id = JSON.parse(lost.body).instanceId as string;
      // While the create still waits for billing, a provision (lifecycle saw SUBSCRIPTION_CREATION) must not start.
      const early = await deliver(h.fn.provision, 'com.saasodoo.instance.provision', { instanceId: id, customerId: bob.userId });
      expect(early.status, early.body).toBe(409);
      expect((await db('instance').one('SELECT status FROM instances WHERE id = $1', [id])).status).toBe('pending_payment');
    } finally {
      release();
    }
    const r = await pending.finally(() => {
      billingProxy.lose = undefined;
      billingProxy.hold = undefined;
    });
    expectUnavailable(r);
    const [sub] = await subscriptionsOf(bob.userId);
    expect(sub?.phaseType).toBe('TRIAL');
    expect(await db('instance').oneOrNone('SELECT 1 FROM instances WHERE id = $1', [sub!.bundleExternalKey])).toBeNull();
    await until('the subscription voided', async () => !isOpen((await kb.subscription(sub!.subscriptionId!))!));
    expect((await subscriptionsOf(bob.userId)).filter(isOpen)).toEqual([]);
    // Billing had recorded the trial for the failed create; the customer still has it.
    const again = await call(h.fn.instances, bob.accessToken, { body });
    expect(again.status, JSON.stringify(again.body)).toBe(202);
    expect((await subscriptionsOf(bob.userId)).filter(isOpen).map((s) => [s.bundleExternalKey, s.phaseType])).toEqual([[again.body.id, 'TRIAL']]);
  });

  it('a subscription opened after the create was settled is voided on its first notification', async () => {
    const carol = await createTestUser();
    const account = await kb.ensureAccount({ customerId: carol.userId });
    const id = randomUUID();
    expect((await deliver(h.extra.lifecycle!, 'com.saasodoo.instance.create_failed', { instanceId: id, customerId: carol.userId })).status).toBeLessThan(300);
    // A start that slipped past the settlement (its lock expired while Kill Bill was slow).
    const sub = await kb.createSubscription({ accountId: account.accountId!, plan: 'basic-monthly', trial: true, instanceId: id, productName: 'Basic' });
    expect(sub.state).toBe('ACTIVE');
    expect((await notify('SUBSCRIPTION_CREATION', sub.subscriptionId!)).status).toBeLessThan(300);
    expect((await kb.subscription(sub.subscriptionId!))?.state).toBe('CANCELLED');
    expect(await lifecycleOutbox(id)).toEqual([]);
  });

  it("a staging copy's add-on opened without an answer is voided by instance.create_failed; the original's subscription stays", async () => {
    const u = await createTestUser();
    const account = await kb.ensureAccount({ customerId: u.userId });
    const original = randomUUID();
    const copy = randomUUID();
    const base = await kb.createSubscription({ accountId: account.accountId!, plan: 'standard-monthly', trial: true, instanceId: original, productName: 'Standard' });
    const addOn = await kb.createAddOn({ accountId: account.accountId!, bundleId: base.bundleId!, plan: 'staging-monthly', productName: 'Staging', externalKey: copy });
    await settleFailedCreate(u.userId, copy);
    expect((await kb.subscription(addOn.subscriptionId!))?.state).toBe('CANCELLED');
    expect((await kb.subscription(base.subscriptionId!))?.state).toBe('ACTIVE');
  });
});

describe('a create retried while its failed attempt still holds the trial', () => {
  const body = () => ({ name: 'Retry', subdomain: subdomain('retry'), plan: 'standard-monthly', odooVersion: '17', trial: true });

  it('answers 503 with Retry-After, never 409, until lifecycle settles the failed attempt; then the retry gets the trial', async () => {
    const u = await createTestUser();
    // What a create whose answer was lost leaves until instance.create_failed is handled: Kill Bill holds a
    // trial subscription for an id that is no instance of the customer (billing's trial row too, when it got that far).
    const failedId = randomUUID();
    const account = await kb.ensureAccount({ customerId: u.userId });
    const held = await kb.createSubscription({ accountId: account.accountId!, plan: 'standard-monthly', trial: true, instanceId: failedId, productName: 'Standard' });
    await db('billing').none('INSERT INTO trials (customer_id, instance_id, plan_id, subscription_id) VALUES ($1, $2, $3, $4)', [u.userId, failedId, 'standard-monthly', held.subscriptionId]);

    const early = await call(h.fn.instances, u.accessToken, { body: body() });
    expectRetryLater(early);
    expect(early.body.error.fields).toEqual({ trial: 'held by your previous attempt' });

    expect((await deliver(h.extra.lifecycle!, 'com.saasodoo.instance.create_failed', { instanceId: failedId, customerId: u.userId })).status).toBeLessThan(300);
    const again = await call(h.fn.instances, u.accessToken, { body: body() });
    expect(again.status, JSON.stringify(again.body)).toBe(202);
    expect((await subscriptionsOf(u.userId)).filter(isOpen).map((s) => [s.bundleExternalKey, s.phaseType])).toEqual([[again.body.id, 'TRIAL']]);
  });

  it('the lost answer end to end: every retry is a 202 or a 503 with Retry-After, and one of them gets the trial', async () => {
    const u = await createTestUser();
    const b = body();
    kbProxy.lose = (r) => r.method === 'POST' && r.path === '/1.0/kb/subscriptions';
    const first = await call(h.fn.instances, u.accessToken, { body: b }).finally(() => (kbProxy.lose = undefined));
    expectUnavailable(first);
    // Retried at once, as a client does after a 503, whether or not lifecycle has settled the failed attempt yet.
    const again = (await until('the retry created', async () => {
      const r = await call(h.fn.instances, u.accessToken, { body: b });
      if (r.status === 503) return expectRetryLater(r);
      expect(r.status, JSON.stringify(r.body)).toBe(202);
      return r;
    }))!;
    expect((await subscriptionsOf(u.userId)).filter(isOpen).map((s) => [s.bundleExternalKey, s.phaseType])).toEqual([[again.body.id, 'TRIAL']]);
  });

  it('the one-trial fence holds: a customer whose trial instance was terminated gets 409 trial_unavailable', async () => {
    const u = await createTestUser();
    const made = await call(h.fn.instances, u.accessToken, { body: body() });
    expect(made.status, JSON.stringify(made.body)).toBe(202);
    await db('instance').none(`UPDATE instances SET status = 'terminated' WHERE id = $1`, [made.body.id]);
    const again = await call(h.fn.instances, u.accessToken, { body: body() });
    expect(again.status, JSON.stringify(again.body)).toBe(409);
    expect(again.body.error).toMatchObject({ code: 'trial_unavailable', fields: { trial: 'not eligible' } });
  });
});

describe('a trial create while Kill Bill cannot be read', () => {
  it('answers 503 naming billing (eligibility unknown), not a 409 nor the settling answer, and keeps nothing', async () => {
    const u = await createTestUser();
    const b = { name: 'Blind', subdomain: subdomain('blind'), plan: 'standard-monthly', odooVersion: '17', trial: true };
    kbProxy.lose = () => true;
    const r = await call(h.fn.instances, u.accessToken, { body: b }).finally(() => (kbProxy.lose = undefined));
    expectUnavailable(r);
    expect(await db('instance').oneOrNone('SELECT 1 FROM instances WHERE customer_id = $1', [u.userId])).toBeNull();
    const again = await call(h.fn.instances, u.accessToken, { body: b });
    expect(again.status, JSON.stringify(again.body)).toBe(202);
  });
});

/** A 503 telling the client to come back (a JSON error naming the trial, Retry-After in seconds); undefined, to go on polling. */
function expectRetryLater(r: Awaited<ReturnType<typeof call>>): undefined {
  expect(r.status, JSON.stringify(r.body)).toBe(503);
  expect(r.headers.get('retry-after')).toMatch(/^\d+$/);
  expect(r.body.error.code).toBe('unavailable');
  return undefined;
}
