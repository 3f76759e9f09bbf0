/**
 * The Kill Bill simulator through the platform's adapter: Kill Bill's answer
 * shapes (contract vs kbswagger.yaml), the test clock firing trial end,
 * invoices, payments, overdue at 10/14/21 days and end-of-term cancellation,
 * with push notifications in Kill Bill's exact shape, retried on failure.
 */
import { randomUUID } from 'node:crypto';
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropNamespace, migrate } from '@saasodoo/platform/db/migrate';
import { closeDatabases } from '@saasodoo/platform/db/index';
import { localCatalogXml, localOverdueXml, parseCatalog, parseOverdueConfig } from '@saasodoo/platform/billing/catalog';
import { startReceiver, startTestKillbill, waitFor, type Received, type TestKillbill } from '../../helpers/killbill.ts';

let kb: TestKillbill;
let rx: Awaited<ReturnType<typeof startReceiver>>;

beforeAll(async () => {
  await migrate({ databases: ['killbill'] });
  kb = await startTestKillbill({ retries: '100ms,100ms,100ms' });
  rx = await startReceiver();
});

afterAll(async () => {
  await kb?.stop();
  await rx?.close();
  await closeDatabases();
  await dropNamespace();
});

const kbHeaders = () => ({
  authorization: `Basic ${Buffer.from('admin:password').toString('base64')}`,
  'x-killbill-apikey': 'saasodoo',
  'x-killbill-apisecret': 'saasodoo-secret',
});
const of = (accountId: string) => rx.received.filter((r) => r.body.accountId === accountId);
const types = (list: Received[]) => list.map((r) => r.body.eventType + (r.body.metaData && JSON.parse(r.body.metaData).actionType ? `:${JSON.parse(r.body.metaData).actionType}` : ''));
const has =
  (accountId: string, ...wanted: string[]) =>
  () =>
    wanted.every((w) => types(of(accountId)).includes(w));

async function customerWithSubscription(plan: string, trial: boolean, outcome: 'SUCCESS' | 'FAILURE' = 'SUCCESS') {
  const customerId = randomUUID();
  const instanceId = randomUUID();
  const account = await kb.adapter.ensureAccount({ customerId, email: `${customerId}@example.test`, name: 'Test User' });
  if (outcome === 'FAILURE') await kb.adapter.setPaymentOutcome(account.accountId!, 'FAILURE');
  const sub = await kb.adapter.createSubscription({ accountId: account.accountId!, plan, trial, instanceId, productName: plan.startsWith('standard') ? 'Standard' : 'Basic' });
  return { customerId, instanceId, accountId: account.accountId!, sub };
}

describe('Kill Bill simulator', () => {
  it('refuses calls without basic auth or with a wrong tenant secret (401)', async () => {
    const noAuth = await fetch(`${kb.url}/1.0/kb/accounts?externalKey=x`);
    expect(noAuth.status).toBe(401);
    const wrongSecret = await fetch(`${kb.url}/1.0/kb/accounts?externalKey=x`, {
      headers: { authorization: `Basic ${Buffer.from('admin:password').toString('base64')}`, 'x-killbill-apikey': 'saasodoo', 'x-killbill-apisecret': 'nope' },
    });
    expect(wrongSecret.status).toBe(401);
  });

  it('answers creates as Kill Bill 0.24 does: 201, a Location header, no body', async () => {
    const res = await fetch(`${kb.url}/1.0/kb/accounts`, {
      method: 'POST',
      headers: { ...kbHeaders(), 'content-type': 'application/json', 'x-killbill-createdby': 'test' },
      body: JSON.stringify({ externalKey: randomUUID(), currency: 'USD' }),
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toMatch(/\/1\.0\/kb\/accounts\/[0-9a-f-]{36}$/);
    expect(await res.text()).toBe('');
  });

  it('requires tenant headers everywhere but /1.0/kb/tenants (the test clock too); a fresh tenant has no catalogue', async () => {
    const basic = { authorization: kbHeaders().authorization };
    expect((await fetch(`${kb.url}/1.0/kb/test/clock`, { headers: basic })).status).toBe(401);
    expect((await fetch(`${kb.url}/1.0/kb/test/clock`, { headers: kbHeaders() })).status).toBe(200);
    expect((await fetch(`${kb.url}/1.0/kb/test/queues?timeoutSec=1`, { headers: kbHeaders() })).status).toBe(200);
    const apiKey = `fresh-${randomUUID().slice(0, 8)}`;
    const created = await fetch(`${kb.url}/1.0/kb/tenants`, {
      method: 'POST',
      headers: { ...basic, 'content-type': 'application/json', 'x-killbill-createdby': 'test' },
      body: JSON.stringify({ apiKey, apiSecret: 'fresh-secret' }),
    });
    expect([created.status, await created.text()]).toEqual([201, '']);
    expect((await fetch(`${kb.url}/1.0/kb/tenants?apiKey=${apiKey}`, { headers: basic })).status).toBe(200);
    const fresh = { ...basic, 'x-killbill-apikey': apiKey, 'x-killbill-apisecret': 'fresh-secret' };
    const catalog = await (await fetch(`${kb.url}/1.0/kb/catalog/xml`, { headers: fresh })).text();
    expect(parseCatalog(catalog)).toEqual([]);
  });

  it('registers the callback only once: registering twice leaves one URL', async () => {
    expect(await kb.adapter.registerCallback(rx.url)).toBe(true);
    expect(await kb.adapter.registerCallback(rx.url)).toBe(false);
    expect(await kb.adapter.callbacks()).toEqual([rx.url]);
  });

  it('uploads the catalogue and overdue config only when they changed', async () => {
    expect(await kb.adapter.syncConfig()).toEqual({ catalog: false, overdue: false });
    const changed = localCatalogXml().replace('<value>8.00</value>', '<value>9.00</value>');
    expect(await kb.adapter.syncConfig(changed)).toEqual({ catalog: true, overdue: false });
    expect(await kb.adapter.syncConfig(changed)).toEqual({ catalog: false, overdue: false });
    expect(await kb.adapter.syncConfig()).toEqual({ catalog: true, overdue: false });
  });

  it('ensures an account by external key, idempotently and under concurrency', async () => {
    const customerId = randomUUID();
    const all = await Promise.all(Array.from({ length: 5 }, () => kb.adapter.ensureAccount({ customerId })));
    expect(new Set(all.map((a) => a.accountId)).size).toBe(1);
    expect(all[0].externalKey).toBe(customerId);
    expect((await kb.adapter.paymentMethods(all[0].accountId!)).filter((p) => p.isDefault)).toHaveLength(1);
  });

  it('trial subscription: creation events, then clock +14 days fires phase, invoice and payment success', async () => {
    const c = await customerWithSubscription('basic-monthly', true);
    expect(c.sub.phaseType).toBe('TRIAL');
    expect(c.sub.bundleExternalKey).toBe(c.instanceId);
    await waitFor(has(c.accountId, 'ACCOUNT_CREATION', 'ENTITLEMENT_CREATION', 'SUBSCRIPTION_CREATION:REQUESTED', 'SUBSCRIPTION_CREATION:EFFECTIVE', 'INVOICE_CREATION'), 10_000, 'creation events');
    const sample = of(c.accountId).find((r) => r.body.eventType === 'SUBSCRIPTION_CREATION')!;
    expect(Object.keys(sample.body)).toEqual(['eventType', 'accountId', 'objectType', 'objectId', 'metaData']);
    expect(sample.body.objectType).toBe('SUBSCRIPTION');
    expect(typeof sample.body.metaData).toBe('string');
    expect(JSON.parse(sample.body.metaData!)).toMatchObject({ bundleExternalKey: c.instanceId });
    expect(sample.headers['user-agent']).toBe('KillBill/1.0');
    expect(sample.headers.upgrade).toBe('h2c');
    expect(of(c.accountId).find((r) => r.body.eventType === 'ACCOUNT_CREATION')!.body.metaData).toBeNull();

    await kb.adapter.moveClock({ days: 14 });
    await waitFor(has(c.accountId, 'SUBSCRIPTION_PHASE:EFFECTIVE', 'INVOICE_PAYMENT_SUCCESS', 'PAYMENT_SUCCESS'), 10_000, 'trial end events');
    expect(types(of(c.accountId)).filter((t) => t === 'INVOICE_CREATION')).toHaveLength(2);
    const sub = await kb.adapter.subscription(c.sub.subscriptionId!);
    expect(sub).toMatchObject({ phaseType: 'EVERGREEN', state: 'ACTIVE' });
    const invoices = await kb.adapter.invoices(c.accountId);
    expect(invoices.map((i) => [i.amount, i.balance])).toEqual([
      [0, 0],
      [5, 0],
    ]);
    expect((await kb.adapter.payments(c.accountId))[0].transactions![0].status).toBe('SUCCESS');
  });

  it('failed payment: overdue WARNING at 10 days, BLOCKED at 14, CANCELLATION at 21 (service ends that day)', async () => {
    const c = await customerWithSubscription('standard-monthly', true, 'FAILURE');
    await kb.adapter.moveClock({ days: 14 });
    await waitFor(has(c.accountId, 'INVOICE_PAYMENT_FAILED', 'PAYMENT_FAILED'), 10_000, 'payment failure');
    expect((await kb.adapter.overdue(c.accountId))!.isClearState).toBe(true);

    const blocking = () =>
      of(c.accountId)
        .filter((r) => r.body.eventType === 'BLOCKING_STATE')
        .map((r) => JSON.parse(r.body.metaData!));
    await kb.adapter.moveClock({ days: 9 });
    expect((await kb.adapter.overdue(c.accountId))!.name).not.toBe('WARNING');
    await kb.adapter.moveClock({ days: 1 });
    expect((await kb.adapter.overdue(c.accountId))!.name).toBe('WARNING');
    await waitFor(() => blocking().some((m) => m.stateName === 'WARNING') && types(of(c.accountId)).includes('OVERDUE_CHANGE'), 10_000, 'WARNING');
    expect(blocking()[0]).toMatchObject({ service: 'overdue-service', blockingType: 'ACCOUNT', transitionedToBlockedEntitlement: false });

    await kb.adapter.moveClock({ days: 4 });
    expect((await kb.adapter.overdue(c.accountId))!.name).toBe('BLOCKED');
    await waitFor(() => blocking().some((m) => m.stateName === 'BLOCKED' && m.transitionedToBlockedEntitlement === true), 10_000, 'BLOCKED');
    expect((await kb.adapter.subscription(c.sub.subscriptionId!))!.state).toBe('BLOCKED');
    expect((await kb.adapter.overdueBlockingStates(c.accountId)).map((b) => b.stateName)).toEqual(['WARNING', 'BLOCKED']);

    await kb.adapter.moveClock({ days: 7 });
    expect((await kb.adapter.overdue(c.accountId))!.name).toBe('CANCELLATION');
    // Kill Bill's overdue cancellation ends the service that day and the billing at end of term.
    await waitFor(has(c.accountId, 'SUBSCRIPTION_CANCEL:REQUESTED', 'ENTITLEMENT_CANCEL'), 10_000, 'cancelled on the day');
    const cancelled = await kb.adapter.subscription(c.sub.subscriptionId!);
    expect(cancelled!.state).toBe('CANCELLED');
    expect(Date.parse(cancelled!.cancelledDate!)).toBe((await kb.adapter.now()).getTime());
    expect(Date.parse(cancelled!.billingEndDate!)).toBeGreaterThan(Date.parse(cancelled!.cancelledDate!));
  });

  it('overdue is re-evaluated only on its schedule: without initialReevaluationInterval an unpaid account never turns WARNING by time', async () => {
    const without = localOverdueXml().replace(/<initialReevaluationInterval>[\s\S]*?<\/initialReevaluationInterval>/, '');
    expect(parseOverdueConfig(without).initialReevaluationDays).toBeUndefined();
    expect(await kb.adapter.syncConfig(undefined, without)).toEqual({ catalog: false, overdue: true });
    try {
      const c = await customerWithSubscription('basic-immediate', false, 'FAILURE');
      await waitFor(has(c.accountId, 'INVOICE_PAYMENT_FAILED'), 10_000, 'payment failure');
      for (const days of [10, 4, 7]) await kb.adapter.moveClock({ days });
      expect((await kb.adapter.overdue(c.accountId))!.isClearState).toBe(true);
    } finally {
      await kb.adapter.syncConfig();
    }
  });

  it('cards through the killbill-stripe plugin: 4242 saved, 0002 declined on the page, 0341 saved but declined when charged (201 all the same)', async () => {
    const customerId = randomUUID();
    const account = await kb.adapter.ensureAccount({ customerId });
    await kb.adapter.setPaymentOutcome(account.accountId!, 'FAILURE');
    await kb.adapter.createSubscription({ accountId: account.accountId!, plan: 'basic-immediate', trial: false, instanceId: randomUUID(), productName: 'Basic' });
    expect((await kb.adapter.invoices(account.accountId!)).filter((i) => (i.balance ?? 0) > 0)).toHaveLength(1);
    const cardPage = async (number: string) => {
      const sessionId = await kb.adapter.stripeCheckoutSession(account.accountId!, 'http://portal.test/billing/card?session={CHECKOUT_SESSION_ID}', 'http://portal.test/billing');
      const session = await new Stripe('sk_test_saasodoo_simulator', {
        host: new URL(kb.sim.stripeUrl).hostname,
        port: Number(new URL(kb.sim.stripeUrl).port),
        protocol: 'http',
      }).checkout.sessions.retrieve(sessionId);
      expect(session.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/pay\/cs_test_/);
      const res = await fetch(session.url!, { method: 'POST', redirect: 'manual', body: new URLSearchParams({ number, expiry: '12 / 34', cvc: '123' }) });
      return { sessionId, res };
    };
    const declined = await cardPage('4000 0000 0000 0002');
    expect(declined.res.status).toBe(200);
    expect(await declined.res.text()).toContain('Your card was declined');
    await expect(kb.adapter.addStripeCard(account.accountId!, declined.sessionId)).rejects.toThrow(/saved no card/);

    const failing = await cardPage('4000 0000 0000 0341');
    expect(failing.res.headers.get('location')).toBe(`http://portal.test/billing/card?session=${failing.sessionId}`);
    await kb.adapter.addStripeCard(account.accountId!, failing.sessionId); // 201, though the charge of the unpaid invoice was declined
    expect((await kb.adapter.invoices(account.accountId!)).filter((i) => (i.balance ?? 0) > 0)).toHaveLength(1);

    const good = await cardPage('4242424242424242');
    await kb.adapter.addStripeCard(account.accountId!, good.sessionId);
    const methods = await kb.adapter.paymentMethods(account.accountId!);
    const def = methods.find((m) => m.isDefault)!;
    expect(def.pluginName).toBe('killbill-stripe');
    expect(def.pluginInfo?.properties?.find((p) => p.key === 'card_last4')?.value).toBe('4242');
    expect((await kb.adapter.invoices(account.accountId!)).filter((i) => (i.balance ?? 0) > 0)).toHaveLength(0);
  });

  it('removing the default method: 400 without a flag, then forced; hidden unless includedDeleted; the account is not given one again', async () => {
    const customerId = randomUUID();
    const account = await kb.adapter.ensureAccount({ customerId });
    const pmId = account.paymentMethodId!;
    const del = (query: string) => fetch(`${kb.url}/1.0/kb/paymentMethods/${pmId}${query}`, { method: 'DELETE', headers: { ...kbHeaders(), 'x-killbill-createdby': 'test' } });
    const refused = await del('');
    expect(refused.status).toBe(400);
    expect(await refused.text()).toContain('Cannot delete default payment method');
    await kb.adapter.removePaymentMethod(pmId);
    expect((await del('?forceDefaultPmDeletion=true')).status).toBe(404);
    expect(await kb.adapter.paymentMethods(account.accountId!)).toEqual([]);
    expect((await kb.adapter.paymentMethods(account.accountId!, { includeDeleted: true })).map((m) => m.paymentMethodId)).toEqual([pmId]);
    const again = await kb.adapter.ensureAccount({ customerId });
    expect(again.paymentMethodId ?? null).toBeNull();
    // With no method, Kill Bill's charge of a new invoice fails (and overdue follows).
    await kb.adapter.createSubscription({ accountId: account.accountId!, plan: 'basic-immediate', trial: false, instanceId: randomUUID(), productName: 'Basic' });
    await waitFor(has(account.accountId!, 'INVOICE_PAYMENT_FAILED'));
    expect((await kb.adapter.invoices(account.accountId!)).filter((i) => (i.balance ?? 0) > 0)).toHaveLength(1);
  });

  it('paying clears overdue: BLOCKING_STATE back to the clear state', async () => {
    const c = await customerWithSubscription('basic-immediate', false, 'SUCCESS');
    await kb.adapter.setPaymentOutcome(c.accountId, 'FAILURE');
    await kb.adapter.moveClock({ days: 31 }); // next month's invoice fails
    await kb.adapter.moveClock({ days: 14 });
    expect((await kb.adapter.overdue(c.accountId))!.name).toBe('BLOCKED');
    await kb.adapter.setPaymentOutcome(c.accountId, 'SUCCESS');
    expect((await kb.adapter.overdue(c.accountId))!.isClearState).toBe(true);
    await waitFor(() => of(c.accountId).some((r) => r.body.eventType === 'BLOCKING_STATE' && JSON.parse(r.body.metaData!).stateName === '__KILLBILL__CLEAR__OVERDUE_STATE__'), 10_000, 'clear');
    expect((await kb.adapter.subscription(c.sub.subscriptionId!))!.state).toBe('ACTIVE');
  });

  it('cancel end of term: REQUESTED now, EFFECTIVE at the charged-through date', async () => {
    const c = await customerWithSubscription('basic-immediate', false);
    expect(c.sub.phaseType).toBe('EVERGREEN');
    await waitFor(has(c.accountId, 'INVOICE_PAYMENT_SUCCESS'), 10_000, 'first payment');
    await kb.adapter.cancel(c.sub.subscriptionId!, 'end_of_term');
    await waitFor(has(c.accountId, 'SUBSCRIPTION_CANCEL:REQUESTED'), 10_000, 'cancel requested');
    expect((await kb.adapter.subscription(c.sub.subscriptionId!))!.state).toBe('ACTIVE');
    await kb.adapter.moveClock({ days: 32 });
    await waitFor(has(c.accountId, 'SUBSCRIPTION_CANCEL:EFFECTIVE'), 10_000, 'cancel effective');
    expect((await kb.adapter.subscription(c.sub.subscriptionId!))!.state).toBe('CANCELLED');
  });

  it("an ADD_ON (staging): not available on Basic; on Standard in the base's bundle, its trial ending with the base's, cancelled with the base", async () => {
    const basic = await customerWithSubscription('basic-monthly', true);
    const addOnOf = (c: typeof basic) => kb.adapter.createAddOn({ accountId: c.accountId, bundleId: c.sub.bundleId!, plan: 'staging-monthly', productName: 'Staging', externalKey: randomUUID() });
    await expect(addOnOf(basic)).rejects.toThrow();
    expect((await kb.adapter.bundlesOfInstance(basic.instanceId))[0].subscriptions?.map((s) => s.productCategory)).toEqual(['BASE']);

    const std = await customerWithSubscription('standard-monthly', true);
    await kb.adapter.moveClock({ days: 3 });
    const addOn = await addOnOf(std);
    expect(addOn).toMatchObject({ productCategory: 'ADD_ON', planName: 'staging-monthly', bundleId: std.sub.bundleId, phaseType: 'TRIAL', state: 'ACTIVE' });
    // Aligned with the bundle's start: the add-on's trial ends when the base's does.
    const phaseAt = (s: typeof addOn) => s.events?.find((e) => e.eventType === 'PHASE')?.effectiveDate;
    expect(phaseAt(addOn)).toBe(phaseAt(std.sub));
    expect((await kb.adapter.bundlesOfInstance(std.instanceId))[0].subscriptions?.map((s) => [s.productCategory, s.subscriptionId])).toEqual([
      ['BASE', std.sub.subscriptionId],
      ['ADD_ON', addOn.subscriptionId],
    ]);
    await kb.adapter.cancel(std.sub.subscriptionId!, 'now');
    await waitFor(() => of(std.accountId).some((r) => r.body.eventType === 'ENTITLEMENT_CANCEL' && r.body.objectId === addOn.subscriptionId), 10_000, 'the add-on cancelled');
    expect((await kb.adapter.subscription(addOn.subscriptionId!))!.state).toBe('CANCELLED');
  });

  it('retries a notification the receiver refused until it is accepted', async () => {
    rx.fail = true;
    const account = await kb.adapter.ensureAccount({ customerId: randomUUID() });
    await waitFor(async () => (await kb.sim.db.one('SELECT max(attempt) AS a FROM kb_notifications')).a >= 1, 10_000, 'a failed attempt');
    rx.fail = false;
    await waitFor(has(account.accountId!, 'ACCOUNT_CREATION'), 10_000, 'the retry');
  });

  it('every answer the tests triggered validates against kbswagger.yaml', () => {
    expect(kb.records.length).toBeGreaterThan(20);
    expect(kb.contractViolations()).toEqual([]);
  });
});
