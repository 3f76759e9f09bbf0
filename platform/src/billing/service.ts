/**
 * Billing's business rules over the Kill Bill adapter (platform/src/billing/README.md 1-2): the plans
 * on sale with their entitlements, trial eligibility (fail closed), starting
 * a subscription for an instance (one trial per customer, for life, under a
 * per-customer lock), settling creates that failed half-way (no subscription
 * may stay open for them), and a customer's own billing view.
 */
import { cardOf } from './cards.ts';
import { randomUUID } from 'node:crypto';
import { config } from '../config.ts';
import { db } from '../db/index.ts';
import { HttpError } from '../errors.ts';
import { log } from '../log.ts';
import { findPlan, STAGING_ADDON, type Plan } from '../plans.ts';
import { redis } from '../redis.ts';
import { parseCatalog, type CatalogPlan } from './catalog.ts';
import { killbill, KillBillError, subscriptionEnded, type Subscription } from './killbill.ts';

// ---- plans ----

type Entitlement = { plan_id: string; cpu: string; memory_mib: number; storage_gib: number; database: 'shared' | 'dedicated' };
let catalogCache: { at: number; plans: CatalogPlan[] } | undefined;

/** The catalogue Kill Bill is using, cached for a minute (it changes with a deploy, not per request). */
export async function catalogPlans(): Promise<CatalogPlan[]> {
  if (catalogCache && Date.now() - catalogCache.at < 60_000) return catalogCache.plans;
  const plans = parseCatalog(await killbill().catalogXml());
  catalogCache = { at: Date.now(), plans };
  return plans;
}

/** Plans on sale (platform/src/billing/README.md 1): Kill Bill's catalogue joined with the entitlements in force; `withTrial` decides whether trial fields appear. */
export async function plansOnSale(withTrial: boolean): Promise<Plan[]> {
  const [catalog, rows] = await Promise.all([
    catalogPlans(),
    db('billing').manyOrNone<Entitlement>(
      `SELECT DISTINCT ON (plan_id) plan_id, cpu, memory_mib, storage_gib, database FROM plan_entitlements
       WHERE effective_from <= now() ORDER BY plan_id, effective_from DESC`,
    ),
  ]);
  const names: Record<string, string> = { 'basic-test-trial': 'Basic (test trial)' };
  return catalog
    .filter((p) => config().TEST_PLANS || p.name !== 'basic-test-trial')
    .flatMap((p) => {
      const e = rows.find((r) => r.plan_id === p.name);
      if (!e) return []; // not sellable without entitlements
      const plan: Plan = {
        id: p.name,
        name: names[p.name] ?? p.product,
        price: { amount: p.price, currency: 'USD', period: 'month' },
        resources: { cpu: Number(e.cpu), memoryMiB: e.memory_mib, storageGiB: e.storage_gib },
        database: e.database,
        customDomains: findPlan(p.name, true)?.customDomains ?? 1,
        staging: findPlan(p.name, true)?.staging ?? false,
      };
      if (withTrial && p.trialDays) plan.trial = { days: p.trialDays };
      return [plan];
    });
}

// ---- trial eligibility ----

export type Eligibility = { eligible: boolean; reason: 'eligible' | 'had_trial' | 'active_subscription' | 'unavailable'; trialDays?: number };

const hadTrial = (s: Subscription) => s.phaseType === 'TRIAL' || (s.events ?? []).some((e) => /-trial$/.test(e.phase ?? ''));

/**
 * The single source of truth for trials (platform/src/billing/README.md 2). Not eligible when the
 * billing database has a trial row, Kill Bill shows any subscription that
 * had a TRIAL phase, or an active paid subscription; and not eligible on any
 * error (Redis, Kill Bill, database): fail closed.
 */
export async function trialEligibility(customerId: string): Promise<Eligibility> {
  try {
    const cacheKey = `trial-eligibility:${customerId}`;
    const cached = await redis().get(cacheKey);
    if (cached) return JSON.parse(cached) as Eligibility;
    const result = await computeEligibility(customerId);
    await redis().set(cacheKey, JSON.stringify(result), 'EX', 10);
    return result;
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'trial eligibility unavailable: answering not eligible');
    return { eligible: false, reason: 'unavailable' };
  }
}

async function computeEligibility(customerId: string): Promise<Eligibility> {
  const row = await db('billing').oneOrNone('SELECT 1 FROM trials WHERE customer_id = $1', [customerId]);
  if (row) return { eligible: false, reason: 'had_trial' };
  const kb = killbill();
  const account = await kb.accountByCustomer(customerId);
  if (account) {
    const bundles = await kb.bundlesOfAccount(account.accountId!);
    // A failed create's subscription was never the customer's: it neither used up the trial nor is active.
    const failed = await failedCreates(bundles.map((b) => b.externalKey ?? ''));
    const subs = bundles.filter((b) => !failed.has(b.externalKey ?? '')).flatMap((b) => b.subscriptions ?? []);
    if (subs.some(hadTrial)) return { eligible: false, reason: 'had_trial' };
    if (subs.some((s) => s.state === 'ACTIVE' || s.state === 'BLOCKED')) return { eligible: false, reason: 'active_subscription' };
  }
  const days = (await catalogPlans()).find((p) => p.trialDays && p.name !== 'basic-test-trial')?.trialDays ?? 14;
  return { eligible: true, reason: 'eligible', trialDays: days };
}

// ---- starting a subscription ----

const LOCK_TTL_MS = 30_000;

async function withCustomerLock<T>(customerId: string, fn: () => Promise<T>): Promise<T> {
  const key = `billing-lock:${customerId}`;
  const token = randomUUID();
  const deadline = Date.now() + 20_000;
  for (;;) {
    let got: string | null;
    try {
      got = await redis().set(key, token, 'PX', LOCK_TTL_MS, 'NX');
    } catch {
      throw HttpError.unavailable('Billing');
    }
    if (got) break;
    if (Date.now() > deadline) throw HttpError.unavailable('Billing');
    await new Promise((r) => setTimeout(r, 25 + Math.random() * 50));
  }
  try {
    return await fn();
  } finally {
    await redis()
      .eval("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end", 1, key, token)
      .catch(() => {});
  }
}

export class TrialUnavailable extends HttpError {
  constructor() {
    super(409, 'trial_unavailable', 'No trial available for this account');
  }
}

/**
 * Opens the Kill Bill subscription of an instance for a customer (platform/src/billing/README.md 2).
 * A per-customer Redis lock is held until the subscription exists and the
 * trial row is written; the trial table's primary key is the last guard.
 * Calling again for the same instance returns the same subscription; an
 * instance whose create already failed (settleFailedCreate) gets none.
 */
export async function startSubscription(
  customer: { customerId: string; email?: string },
  o: { instanceId: string; plan: string; trial: boolean },
): Promise<{ subscriptionId: string; created: boolean }> {
  const plan = (await catalogPlans()).find((p) => p.name === o.plan && p.category === 'BASE' && (config().TEST_PLANS || p.name !== 'basic-test-trial'));
  if (!plan) throw HttpError.badRequest('Unknown plan', { plan: 'not a plan on sale' });
  if (o.trial && !plan.trialDays) throw HttpError.badRequest('This plan has no trial', { trial: 'the plan has no trial' });
  const kb = killbill();
  return withCustomerLock(customer.customerId, async () => {
    if ((await failedCreates([o.instanceId])).size) {
      throw new HttpError(409, 'create_failed', 'This instance could not be created; create it again', { instanceId: 'create failed' });
    }
    const existing = (await kb.bundlesOfInstance(o.instanceId)).flatMap((b) => b.subscriptions ?? []);
    const account = await kb.ensureAccount({ customerId: customer.customerId, email: customer.email });
    if (existing.length) {
      if (existing[0].accountId !== account.accountId) throw HttpError.conflict('Instance id already used', { instanceId: 'already used' });
      return { subscriptionId: existing[0].subscriptionId!, created: false };
    }
    await redis()
      .del(`trial-eligibility:${customer.customerId}`)
      .catch(() => {});
    if (o.trial) {
      // Nothing is decided on a failed read: Kill Bill or the database unreachable is a 503 to retry, not
      // "no trial" (the trial-eligibility function, which only shows or hides the offer, fails closed instead).
      const e = await computeEligibility(customer.customerId).catch((err) => {
        throw err instanceof HttpError ? err : HttpError.unavailable('Billing');
      });
      if (!e.eligible) throw new TrialUnavailable();
      return db('billing').tx(async (t) => {
        const inserted = await t.oneOrNone('INSERT INTO trials (customer_id, instance_id, plan_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING 1', [
          customer.customerId,
          o.instanceId,
          o.plan,
        ]);
        if (!inserted) throw new TrialUnavailable();
        const sub = await kb.createSubscription({ accountId: account.accountId!, plan: o.plan, trial: true, instanceId: o.instanceId, productName: plan.product });
        const trialEnd = sub.events?.find((e) => e.eventType === 'PHASE')?.effectiveDate ?? null;
        await t.none('UPDATE trials SET subscription_id = $2, ends_at = $3 WHERE customer_id = $1', [customer.customerId, sub.subscriptionId, trialEnd]);
        return { subscriptionId: sub.subscriptionId!, created: true };
      });
    }
    // No charge against a card the customer never gave: a paid plan without a trial needs one on file first.
    if (plan.price > 0 && !account.paymentMethodId) {
      throw new HttpError(402, 'card_required', 'Add a card first: on the Billing page choose "Add card", then create the instance again.', { card: 'no card on file' });
    }
    const sub = await kb.createSubscription({ accountId: account.accountId!, plan: o.plan, trial: false, instanceId: o.instanceId, productName: plan.product });
    return { subscriptionId: sub.subscriptionId!, created: true };
  });
}

/**
 * Opens the staging copy add-on (plans.ts STAGING_ADDON, platform/src/instances/README.md 6)
 * in the bundle of instance `instanceId`, keyed by the copy's id; calling
 * again for the same copy returns the same subscription. The base must be
 * live and its plan must offer the add-on (else 400 naming `plan`); the
 * bundle must be the caller's account's unless `asAdmin`.
 */
export async function startStagingAddOn(customerId: string, o: { instanceId: string; stagingId: string }, asAdmin = false): Promise<{ subscriptionId: string; created: boolean }> {
  const kb = killbill();
  const catalog = await catalogPlans();
  const addOn = catalog.find((p) => p.name === STAGING_ADDON.plan && p.category === 'ADD_ON');
  if (!addOn) throw HttpError.unavailable('The staging add-on in the catalogue');
  return withCustomerLock(customerId, async () => {
    const account = asAdmin ? undefined : await kb.accountByCustomer(customerId);
    const bundle = (await kb.bundlesOfInstance(o.instanceId)).find((b) => (asAdmin || b.accountId === account?.accountId) && (b.subscriptions ?? []).some((s) => s.productCategory === 'BASE'));
    if (!bundle) throw HttpError.notFound('No subscription for this instance');
    const subs = bundle.subscriptions ?? [];
    const existing = subs.find((s) => s.productCategory === 'ADD_ON' && s.externalKey === o.stagingId && s.state !== 'CANCELLED' && s.state !== 'EXPIRED');
    if (existing) return { subscriptionId: existing.subscriptionId!, created: false };
    const base = subs.find((s) => s.productCategory === 'BASE' && (s.state === 'ACTIVE' || s.state === 'BLOCKED') && !s.cancelledDate);
    if (!base) throw HttpError.conflict("The instance's subscription is not active", { instanceId: 'subscription not active' });
    if (!catalog.find((p) => p.name === base.planName)?.addOns.includes(addOn.product)) {
      throw HttpError.badRequest('This plan has no staging copies', { plan: `${base.planName} does not offer staging copies` });
    }
    const sub = await kb.createAddOn({ accountId: base.accountId!, bundleId: bundle.bundleId!, plan: addOn.name, productName: addOn.product, externalKey: o.stagingId });
    return { subscriptionId: sub.subscriptionId!, created: true };
  });
}

// ---- creates that failed half-way ----

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Which of these instance ids belong to a failed create, with the customer it was for. */
export async function failedCreates(instanceIds: string[]): Promise<Map<string, string>> {
  const ids = instanceIds.filter((id) => UUID_RE.test(id));
  if (!ids.length) return new Map();
  const rows = await db('billing').manyOrNone<{ instance_id: string; customer_id: string }>('SELECT instance_id, customer_id FROM failed_creates WHERE instance_id = ANY($1::uuid[])', [ids]);
  return new Map(rows.map((r) => [r.instance_id, r.customer_id]));
}

/**
 * Cancels the still-open subscriptions among `subs` with service and billing
 * ending now, so Kill Bill credits anything already billed: they belong to a
 * failed create, an instance the customer never got.
 */
export async function voidSubscriptions(subs: Subscription[]): Promise<void> {
  for (const s of subs) {
    if (subscriptionEnded(s)) continue;
    try {
      await killbill().cancel(s.subscriptionId!, 'void');
    } catch (err) {
      // Kill Bill answers 400 when another caller (settleFailedCreate, a concurrent event) cancelled it after our read: already done.
      const now = err instanceof KillBillError && err.status === 400 ? await killbill().subscription(s.subscriptionId!) : null;
      if (!subscriptionEnded(now)) throw err;
      continue;
    }
    log.info({ subscriptionId: s.subscriptionId, instanceId: s.bundleExternalKey }, 'voided the subscription of a failed create');
  }
}

/**
 * The billing side of `instance.create_failed`: the instances function gave
 * up on a create without a clear answer from startSubscription, so Kill Bill
 * may hold (or be about to hold) a subscription for an instance that does not
 * exist. Under the customer's lock, the one startSubscription holds, the id is
 * recorded first, so a start still in flight or arriving later is refused;
 * then whatever Kill Bill already opened for it on the customer's account is
 * voided and the trial it took, if any, is given back. Idempotent.
 */
export async function settleFailedCreate(customerId: string, instanceId: string): Promise<void> {
  const kb = killbill();
  await withCustomerLock(customerId, async () => {
    await db('billing').tx(async (t) => {
      await t.none('INSERT INTO failed_creates (instance_id, customer_id) VALUES ($1, $2) ON CONFLICT DO NOTHING', [instanceId, customerId]);
      await t.none('DELETE FROM trials WHERE customer_id = $1 AND instance_id = $2', [customerId, instanceId]);
    });
    const account = await kb.accountByCustomer(customerId);
    if (account) {
      // The instance's own bundle, or, for a staging copy, its add-on (keyed by the copy's id) in the original's bundle.
      const bundles = await kb.bundlesOfAccount(account.accountId!);
      await voidSubscriptions(
        bundles.flatMap((b) => (b.externalKey === instanceId ? (b.subscriptions ?? []) : (b.subscriptions ?? []).filter((s) => s.productCategory === 'ADD_ON' && s.externalKey === instanceId))),
      );
    }
    await redis()
      .del(`trial-eligibility:${customerId}`)
      .catch(() => {});
  });
}

// ---- the customer's own billing ----

/** Subscriptions, invoices, balance and default payment method of a customer (empty when no account yet). */
export async function billingSummary(customerId: string) {
  const kb = killbill();
  const account = await kb.accountByCustomer(customerId, true);
  if (!account) return { subscriptions: [], invoices: [], balance: { amount: 0, currency: 'USD' }, paymentMethod: null };
  const [bundles, invoices, methods, payments] = await Promise.all([
    kb.bundlesOfAccount(account.accountId!),
    kb.invoices(account.accountId!, true),
    kb.paymentMethods(account.accountId!),
    kb.payments(account.accountId!),
  ]);
  const pm = methods.find((m) => m.isDefault);
  // The failed-card warning: the last charge against the default method was declined.
  const lastCharge = payments
    .filter((p) => p.paymentMethodId === pm?.paymentMethodId)
    .at(-1)
    ?.transactions?.at(-1);
  return {
    subscriptions: bundles.flatMap((b) =>
      (b.subscriptions ?? []).map((s) => ({
        id: s.subscriptionId,
        // A staging add-on (in the original's bundle) belongs to the copy it pays for: its own key.
        instanceId: s.productCategory === 'ADD_ON' ? (s.externalKey ?? b.externalKey) : b.externalKey,
        addOn: s.productCategory === 'ADD_ON',
        plan: s.planName,
        phase: s.phaseType,
        state: s.state,
        startDate: s.startDate,
        chargedThroughDate: s.chargedThroughDate ?? null,
        cancelledDate: s.cancelledDate ?? null,
        // When the trial phase gives way to the paid one (shown with the days left wherever a trial is shown).
        trialEndDate: s.phaseType === 'TRIAL' ? (s.events?.find((e) => e.eventType === 'PHASE')?.effectiveDate ?? null) : null,
      })),
    ),
    invoices: invoices.map((i) => ({ id: i.invoiceId, number: i.invoiceNumber, date: i.invoiceDate, amount: i.amount, balance: i.balance, currency: i.currency })),
    balance: { amount: account.accountBalance ?? 0, currency: account.currency ?? 'USD' },
    paymentMethod: pm
      ? {
          id: pm.paymentMethodId,
          isDefault: true,
          type: cardOf(pm) ? 'card' : pm.pluginName === '__EXTERNAL_PAYMENT__' ? 'external' : 'test',
          card: cardOf(pm),
          failing: !!lastCharge && lastCharge.status !== 'SUCCESS',
        }
      : null,
  };
}

export type PayNowResult = {
  paid: { number: string; amount: number; currency: string }[];
  declined: { number: string; balance: number; currency: string; reason?: string }[];
};

/**
 * "Pay now": charges every unpaid invoice of the caller to the default payment method
 * (POST /invoices/{id}/payments). Kill Bill answers 201 even for a declined charge and 204 when there
 * was nothing to pay, so the outcome comes from each payment's transaction status and the invoice
 * balances afterwards. A paid-up account leaves overdue through Kill Bill's own notifications, which
 * resume suspended instances (lifecycle), once.
 */
export async function payNow(customerId: string): Promise<PayNowResult> {
  const kb = killbill();
  const account = await kb.accountByCustomer(customerId);
  if (!account) return { paid: [], declined: [] };
  if (!account.paymentMethodId) throw HttpError.conflict('Add a card first: there is no card to charge.', { card: 'no card on file' });
  const before = (await kb.invoices(account.accountId!, true)).filter((i) => (i.balance ?? 0) > 0);
  const reasons = new Map<string, string>();
  for (const inv of before) {
    const paymentId = await kb.payInvoice({ invoiceId: inv.invoiceId!, accountId: account.accountId!, balance: inv.balance! }).catch((err) => {
      if (err instanceof KillBillError) throw HttpError.conflict('The payment could not be made. Please update your card.', { card: err.message });
      throw err;
    });
    const tx = paymentId ? (await kb.invoicePayment(paymentId))?.transactions?.at(-1) : undefined;
    if (tx && tx.status !== 'SUCCESS') reasons.set(inv.invoiceId!, 'declined by the bank');
  }
  const after = new Map((await kb.invoices(account.accountId!, true)).map((i) => [i.invoiceId, i]));
  const result: PayNowResult = { paid: [], declined: [] };
  for (const inv of before) {
    const now = after.get(inv.invoiceId);
    if ((now?.balance ?? 0) > 0) result.declined.push({ number: String(inv.invoiceNumber ?? ''), balance: now!.balance!, currency: inv.currency ?? 'USD', reason: reasons.get(inv.invoiceId!) });
    else result.paid.push({ number: String(inv.invoiceNumber ?? ''), amount: inv.balance ?? 0, currency: inv.currency ?? 'USD' });
  }
  return result;
}

/**
 * One line of an invoice as the portal words it: what it charges for (a plan, or the staging add-on),
 * whether in its trial, the period and the amount; Kill Bill's own line text is its phase name
 * (`standard-monthly-trial`), which a customer must never read.
 */
type InvoiceLine = { kind: 'charge' | 'credit' | 'tax' | 'adjustment'; plan?: string; addOn: boolean; trial: boolean; startDate?: string; endDate?: string; amount: number };

const LINE_KINDS: Record<string, InvoiceLine['kind']> = { RECURRING: 'charge', FIXED: 'charge', USAGE: 'charge', CBA_ADJ: 'credit', TAX: 'tax' };

/** One of the caller's invoices with its lines; another customer's id answers 404 like a missing one. */
export async function ownInvoice(customerId: string, invoiceId: string) {
  const kb = killbill();
  const [inv, account] = await Promise.all([kb.invoice(invoiceId), kb.accountByCustomer(customerId)]);
  if (!inv || !account || inv.accountId !== account.accountId) throw HttpError.notFound('No such invoice');
  const lines = (inv.items ?? []).map((it): InvoiceLine => ({
    kind: LINE_KINDS[it.itemType ?? ''] ?? 'adjustment',
    plan: it.planName ?? undefined,
    addOn: it.productName === STAGING_ADDON.product,
    // Kill Bill names a phase `<plan>-<phase type>` (DefaultPlanPhase).
    trial: (it.phaseName ?? '').endsWith('-trial'),
    startDate: it.startDate ?? undefined,
    endDate: it.endDate ?? undefined,
    amount: it.amount ?? 0,
  }));
  return { id: inv.invoiceId, number: inv.invoiceNumber, date: inv.invoiceDate, amount: inv.amount, balance: inv.balance, currency: inv.currency, lines };
}

/** A subscription of this customer, or 404 (another tenant's id looks like a missing one). */
export async function ownSubscription(customerId: string, subscriptionId: string, asAdmin = false): Promise<Subscription> {
  const kb = killbill();
  if (asAdmin) {
    // Operators act on any tenant's subscription (deleting an instance for a customer).
    const sub = await kb.subscription(subscriptionId);
    if (!sub) throw HttpError.notFound('No such subscription');
    return sub;
  }
  const [sub, account] = await Promise.all([kb.subscription(subscriptionId), kb.accountByCustomer(customerId)]);
  if (!sub || !account || sub.accountId !== account.accountId) throw HttpError.notFound('No such subscription');
  return sub;
}

/** Cancels the caller's subscription: end of term, or `immediate` (entitlement ends now, billing to end of term). */
export async function cancelOwn(customerId: string, subscriptionId: string, immediate: boolean, asAdmin = false): Promise<void> {
  const sub = await ownSubscription(customerId, subscriptionId, asAdmin);
  if (subscriptionEnded(sub)) throw new HttpError(409, 'already_cancelled', 'The subscription is already cancelled');
  if (!immediate && sub.cancelledDate) throw new HttpError(409, 'already_cancelled', 'The subscription is already set to cancel');
  await killbill()
    .cancel(subscriptionId, immediate ? 'now' : 'end_of_term')
    .catch((err) => {
      if (err instanceof KillBillError) throw new HttpError(409, 'already_cancelled', 'The subscription cannot be cancelled');
      throw err;
    });
}

/** Moves the caller's subscription to another plan on sale (immediate, prorated by Kill Bill). */
export async function changeOwnPlan(customerId: string, subscriptionId: string, planId: string): Promise<void> {
  const sub = await ownSubscription(customerId, subscriptionId);
  const plan = (await catalogPlans()).find((p) => p.name === planId && p.category === 'BASE' && (config().TEST_PLANS || p.name !== 'basic-test-trial'));
  if (!plan) throw HttpError.badRequest('Unknown plan', { plan: 'not a plan on sale' });
  if (sub.planName === planId) throw HttpError.conflict('Already on this plan', { plan: 'already the current plan' });
  if (sub.state !== 'ACTIVE') throw HttpError.conflict('Only an active subscription can change plan');
  // Kill Bill would cancel an add-on the new plan does not offer, leaving its staging copy unpaid: refused instead.
  const addOns = sub.bundleId ? ((await killbill().bundle(sub.bundleId))?.subscriptions ?? []).filter((s) => s.productCategory === 'ADD_ON' && s.state !== 'CANCELLED' && s.state !== 'EXPIRED') : [];
  const lost = addOns.find((a) => !plan.addOns.includes(a.productName ?? ''));
  if (lost) throw HttpError.conflict(`The ${plan.product} plan has no staging copies: delete the staging copy first`, { plan: `${plan.name} does not offer ${lost.productName}` });
  await killbill()
    .changePlan(subscriptionId, { name: plan.name, productName: plan.product })
    .catch((err) => {
      if (err instanceof KillBillError) throw HttpError.conflict(err.message);
      throw err;
    });
}
