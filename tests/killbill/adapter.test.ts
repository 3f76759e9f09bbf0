/**
 * The Kill Bill adapter (platform/src/billing/killbill.ts) against the Kill
 * Bill named by KILLBILL_URL, with KILLBILL_API_KEY / _SECRET (the tenant,
 * created when missing) and KILLBILL_USERNAME / _PASSWORD:
 *
 *   KILLBILL_URL=http://killbill:8080 KILLBILL_API_KEY=... KILLBILL_API_SECRET=... npm run test:killbill
 *
 * Use a Kill Bill (or at least a tenant) kept for tests: the suite uploads
 * the catalogue and overdue config when they differ, creates accounts and
 * subscriptions under random keys, briefly registers a test callback (then
 * puts the previous one back), and, when the server runs in test mode
 * (org.killbill.server.test.mode=true), moves its global clock 15 days.
 * Without KILLBILL_URL every test is skipped (a plain `npm test` on a
 * machine without Kill Bill).
 */
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { beforeAll, describe, expect, it } from 'vitest';
import { HttpError } from '@saasodoo/platform/errors';
import { parseCatalog } from '@saasodoo/platform/billing/catalog';
import { isSimulated, KillBill } from '@saasodoo/platform/billing/killbill';

const url = process.env.KILLBILL_URL;
if (!url) console.warn('tests/killbill: KILLBILL_URL is unset, skipping the Kill Bill adapter tests (KILLBILL_URL=http://host:8080 npm run test:killbill)');

const run = randomUUID().slice(0, 8);

describe.skipIf(!url)(`Kill Bill adapter against ${url}`, () => {
  let kb: KillBill;
  let testMode = false;

  beforeAll(async () => {
    kb = new KillBill();
    await kb.ensureTenant();
    testMode = await kb.http.get('/1.0/kb/test/clock').then(
      () => true,
      () => false,
    );
  });

  it('uploads the catalogue and overdue config only when they changed; the plans of SPEC 3 are on sale', async () => {
    await kb.syncConfig(); // may upload (a fresh tenant, or changed files)
    expect(await kb.syncConfig()).toEqual({ catalog: false, overdue: false });
    const plans = parseCatalog(await kb.catalogXml());
    const byName = Object.fromEntries(plans.map((p) => [p.name, p]));
    expect(byName['basic-immediate']).toMatchObject({ product: 'Basic', price: 5, currency: 'USD' });
    expect(byName['basic-immediate'].trialDays).toBeUndefined();
    expect(byName['basic-monthly']).toMatchObject({ trialDays: 14, price: 5 });
    expect(byName['standard-monthly']).toMatchObject({ trialDays: 14, price: 8 });
    expect(byName['premium-monthly']).toMatchObject({ trialDays: 14, price: 10 });
  });

  it('held-back shapes: a create answers 201 with only a Location; tenant headers are needed everywhere but /1.0/kb/tenants', async () => {
    const res = await kb.http.post('/1.0/kb/accounts', { externalKey: `shape-${run}`, currency: 'USD' }, { headers: { 'X-Killbill-CreatedBy': 'saasodoo-test' }, responseType: 'text' });
    expect(res.status).toBe(201);
    expect(String(res.headers.location)).toMatch(/\/1\.0\/kb\/accounts\/[0-9a-f-]{36}$/);
    expect(res.data).toBe('');
    const noTenant = { headers: { 'X-Killbill-ApiKey': '', 'X-Killbill-ApiSecret': '' }, validateStatus: () => true };
    expect((await kb.http.get(`/1.0/kb/accounts?externalKey=shape-${run}`, noTenant)).status).toBe(401);
    expect((await kb.http.get(`/1.0/kb/tenants?apiKey=${encodeURIComponent(String(kb.http.defaults.headers['X-Killbill-ApiKey']))}`, noTenant)).status).toBe(200);
    if (testMode) expect((await kb.http.get('/1.0/kb/test/queues', { params: { timeoutSec: 5 }, validateStatus: () => true })).status).toBe(200);
  });

  it('registers the callback only when it is not already registered; twice leaves one', async () => {
    const previous = await kb.callbacks();
    const testUrl = `http://127.0.0.1:9/saasodoo-adapter-test?run=${run}`;
    try {
      expect(await kb.registerCallback(testUrl)).toBe(true);
      expect(await kb.registerCallback(testUrl)).toBe(false);
      expect(await kb.callbacks()).toEqual([testUrl]);
    } finally {
      if (previous[0]) await kb.registerCallback(previous[0]);
      else await kb.http.delete('/1.0/kb/tenants/registerNotificationCallback', { headers: { 'X-Killbill-CreatedBy': 'saasodoo-test' } });
    }
    expect(await kb.callbacks()).toEqual(previous.slice(0, 1));
  });

  it('ensures an account by external key: concurrent calls give one account', async () => {
    const customerId = randomUUID();
    const accounts = await Promise.all(Array.from({ length: 5 }, () => kb.ensureAccount({ customerId, email: `${run}@example.com`, name: 'Adapter Test' })));
    expect(new Set(accounts.map((a) => a.accountId)).size).toBe(1);
    expect(accounts[0]).toMatchObject({ externalKey: customerId, currency: 'USD', email: `${run}@example.com` });
    expect((await kb.accountByCustomer(customerId))?.accountId).toBe(accounts[0].accountId);
    expect((await kb.account(accounts[0].accountId!, true))?.accountBalance).toBe(0);
    const methods = await kb.paymentMethods(accounts[0].accountId!);
    // Only the simulator adds a payment method; on a real Kill Bill the operator's payment plugin does (README).
    if (!isSimulated()) expect(methods).toEqual([]);
    expect(await kb.accountByCustomer(randomUUID())).toBeNull();
  });

  it('opens subscriptions linked to their instance (bundle external key), reads, changes plan and cancels them', async () => {
    const account = await kb.ensureAccount({ customerId: randomUUID() });
    const trialInstance = randomUUID();
    const trial = await kb.createSubscription({ accountId: account.accountId!, plan: 'basic-monthly', trial: true, instanceId: trialInstance, productName: 'Basic' });
    expect(trial).toMatchObject({ planName: 'basic-monthly', phaseType: 'TRIAL', state: 'ACTIVE', bundleExternalKey: trialInstance });
    expect((await kb.bundlesOfInstance(trialInstance)).flatMap((b) => b.subscriptions ?? []).map((s) => s.subscriptionId)).toEqual([trial.subscriptionId]);

    const paidInstance = randomUUID();
    const paid = await kb.createSubscription({ accountId: account.accountId!, plan: 'basic-immediate', trial: false, instanceId: paidInstance, productName: 'Basic' });
    expect(paid).toMatchObject({ planName: 'basic-immediate', phaseType: 'EVERGREEN', bundleExternalKey: paidInstance });
    expect((await kb.bundlesOfAccount(account.accountId!)).map((b) => b.externalKey).sort()).toEqual([trialInstance, paidInstance].sort());
    const bundle = await kb.bundle(paid.bundleId!);
    expect(bundle?.externalKey).toBe(paidInstance);

    await kb.changePlan(paid.subscriptionId!, { name: 'standard-monthly', productName: 'Standard' });
    expect((await kb.subscription(paid.subscriptionId!))?.planName).toBe('standard-monthly');

    await kb.cancel(paid.subscriptionId!, 'end_of_term');
    const pending = await kb.subscription(paid.subscriptionId!);
    expect(pending?.state).toBe('ACTIVE');
    expect(pending?.cancelledDate).toMatch(/^\d{4}-\d{2}-\d{2}/);

    await kb.cancel(trial.subscriptionId!, 'now');
    expect((await kb.subscription(trial.subscriptionId!))?.state).toBe('CANCELLED');

    const invoices = await kb.invoices(account.accountId!);
    expect(invoices.length).toBeGreaterThan(0);
    expect(invoices.some((i) => (i.items ?? []).some((it) => it.subscriptionId === paid.subscriptionId))).toBe(true);
    expect(Array.isArray(await kb.payments(account.accountId!))).toBe(true);
    expect((await kb.overdue(account.accountId!))?.isClearState).toBe(true);
    expect(Array.isArray(await kb.overdueBlockingStates(account.accountId!))).toBe(true);
  });

  it('the test clock: 15 days after a trial starts it is EVERGREEN and invoiced (test-mode servers only)', async (ctx) => {
    if (!testMode) ctx.skip(); // not a test-mode Kill Bill: its clock cannot move
    const account = await kb.ensureAccount({ customerId: randomUUID() });
    const instanceId = randomUUID();
    const sub = await kb.createSubscription({ accountId: account.accountId!, plan: 'basic-monthly', trial: true, instanceId, productName: 'Basic' });
    const before = await kb.now();
    const after = await kb.moveClock({ days: 15 });
    expect(after.getTime() - before.getTime()).toBeGreaterThanOrEqual(15 * 86_400_000 - 60_000);
    const now = await kb.subscription(sub.subscriptionId!);
    expect(now?.phaseType).toBe('EVERGREEN');
    const invoice = (await kb.invoices(account.accountId!)).find((i) => (i.amount ?? 0) > 0 && (i.items ?? []).some((it) => it.subscriptionId === sub.subscriptionId));
    expect(invoice?.amount).toBe(5);
    // Without a payment method Kill Bill cannot collect: the invoice stays unpaid (INVOICE_PAYMENT_FAILED).
    if ((await kb.paymentMethods(account.accountId!)).length === 0) expect(invoice?.balance).toBe(5);
  });

  it('Kill Bill unreachable → 503 with Retry-After for callers', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const down = new KillBill({ url: `http://127.0.0.1:${port}`, readRetries: 1, timeoutMs: 2000 });
    const err = await down.accountByCustomer(randomUUID()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HttpError);
    expect((err as HttpError).status).toBe(503);
    expect((err as HttpError).headers['retry-after']).toMatch(/^[1-9]\d*$/);
  });
});
