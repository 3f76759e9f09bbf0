/**
 * What the simulated Kill Bill does to its objects: subscriptions with trial
 * and evergreen phases, invoices, payments with a test payment method that
 * succeeds or fails, overdue states, cancellations, and the push
 * notifications each of these fires (reference/killbill.md 1.6, 1.7). Moving
 * the test clock replays everything due in time order.
 */
import { randomUUID } from 'node:crypto';
import type { Tx } from '../db/index.ts';
import { CLEAR_OVERDUE_STATE, OVERDUE_SERVICE, parseCatalog, parseOverdueConfig, type CatalogPlan } from '../billing/catalog.ts';
import { clockNow, find, findAll, get, put, setClock, type Doc, type Tenant } from './store.ts';
import { savedCard, sessionRowId } from './stripe.ts';

export class SimError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export type Notification = { eventType: string; accountId: string | null; objectType: string; objectId: string | null; metaData: string | null };

/** Extra behaviour for tests: the probability that a notification is queued twice. */
export type EngineOptions = { duplicateRate: number };

const DAY = 86_400_000;
const iso = (d: Date) => d.toISOString();
const day = (d: Date) => d.toISOString().slice(0, 10);
const addMonths = (d: Date, n: number) => {
  const r = new Date(d);
  r.setUTCMonth(r.getUTCMonth() + n);
  return r;
};
const money = (n: number) => Math.round(n * 100) / 100;
export const TEST_PAYMENT_PLUGIN = '__SIMULATOR_TEST_PAYMENT__';
export const STRIPE_PLUGIN = 'killbill-stripe';

/** A tenant's plans: none until a catalogue is uploaded (a fresh Kill Bill tenant has no catalogue). */
export function catalogOf(tenant: Tenant): CatalogPlan[] {
  return tenant.catalog_xml ? parseCatalog(tenant.catalog_xml) : [];
}

/** A tenant's overdue config: no states until one is uploaded. */
function overdueOf(tenant: Tenant) {
  return tenant.overdue_xml ? parseOverdueConfig(tenant.overdue_xml) : { initialReevaluationDays: undefined, states: [] };
}

function planOf(tenant: Tenant, name: string): CatalogPlan {
  const plan = catalogOf(tenant).find((p) => p.name === name);
  if (!plan) throw new SimError(400, `Could not find a plan matching spec: (plan: '${name}', priceList: 'DEFAULT')`);
  return plan;
}

export class Engine {
  constructor(private readonly opts: EngineOptions) {}

  setDuplicateRate(rate: number): void {
    this.opts.duplicateRate = rate;
  }

  /** Queues a push notification to the tenant's registered callback (none registered: nothing sent, as Kill Bill). */
  async notify(t: Tx, tenant: Tenant, n: Notification): Promise<void> {
    const url = (await t.oneOrNone<{ callback_url: string | null }>('SELECT callback_url FROM kb_tenants WHERE id = $1', [tenant.id]))?.callback_url;
    if (!url) return;
    const body = JSON.stringify({ eventType: n.eventType, accountId: n.accountId, objectType: n.objectType, objectId: n.objectId, metaData: n.metaData });
    const copies = Math.random() < this.opts.duplicateRate ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      await t.none('INSERT INTO kb_notifications (tenant_id, url, body) VALUES ($1, $2, $3)', [tenant.id, url, body]);
    }
  }

  private async subscriptionEvent(t: Tx, tenant: Tenant, type: string, sub: Doc, actions: ('REQUESTED' | 'EFFECTIVE')[]) {
    for (const actionType of actions) {
      await this.notify(t, tenant, {
        eventType: type,
        accountId: sub.accountId,
        objectType: 'SUBSCRIPTION',
        objectId: sub.subscriptionId,
        metaData: JSON.stringify({ actionType, bundleExternalKey: sub.bundleExternalKey, subscriptionChangeUndo: false }),
      });
    }
  }

  // ---- accounts and payment methods ----

  async createAccount(t: Tx, tenant: Tenant, body: Doc): Promise<Doc> {
    const accountId = randomUUID();
    const externalKey = typeof body.externalKey === 'string' && body.externalKey ? body.externalKey : accountId;
    if ((await find(t, 'account', tenant.id, { externalKey })).length) {
      throw new SimError(409, `Account already exists for key ${externalKey}`);
    }
    const now = await clockNow(t);
    const account: Doc = {
      accountId,
      externalKey,
      currency: body.currency ?? 'USD',
      billCycleDayLocal: 0,
      timeZone: 'UTC',
      referenceTime: iso(now),
      isMigrated: false,
      isPaymentDelegatedToParent: false,
      _overdueState: CLEAR_OVERDUE_STATE,
    };
    if (typeof body.name === 'string') Object.assign(account, { name: body.name, firstNameLength: body.name.split(' ')[0].length });
    if (typeof body.email === 'string') account.email = body.email;
    await put(t, 'account', tenant.id, accountId, account, { accountId, externalKey });
    await this.notify(t, tenant, { eventType: 'ACCOUNT_CREATION', accountId, objectType: 'ACCOUNT', objectId: accountId, metaData: null });
    return account;
  }

  async account(t: Tx, tenant: Tenant, id: string): Promise<Doc> {
    const a = await get(t, 'account', tenant.id, id);
    if (!a) throw new SimError(404, `Object id=${id} type=ACCOUNT doesn't exist!`);
    return a;
  }

  async withBalance(t: Tx, tenant: Tenant, account: Doc): Promise<Doc> {
    const invoices = await find(t, 'invoice', tenant.id, { accountId: account.accountId });
    return { ...account, accountBalance: money(invoices.reduce((s, i) => s + i.balance, 0)), accountCBA: 0 };
  }

  async addPaymentMethod(t: Tx, tenant: Tenant, accountId: string, body: Doc, isDefault: boolean, payAll: boolean, pluginProperties: { key: string; value: string }[] = []): Promise<Doc> {
    const account = await this.account(t, tenant, accountId);
    const id = randomUUID();
    if (typeof body.externalKey === 'string' && (await find(t, 'paymentMethod', tenant.id)).some((m) => m.externalKey === body.externalKey)) {
      throw new SimError(409, `Payment method already exists for key ${body.externalKey}`);
    }
    const pluginName = typeof body.pluginName === 'string' ? body.pluginName : TEST_PAYMENT_PLUGIN;
    const pm: Doc = {
      paymentMethodId: id,
      externalKey: body.externalKey ?? id,
      accountId,
      isDefault,
      pluginName,
      pluginInfo: { externalPaymentMethodId: id, isDefaultPaymentMethod: isDefault, properties: [] },
      _outcome: 'SUCCESS',
    };
    if (pluginName === STRIPE_PLUGIN) {
      // The plugin turns a completed Checkout setup session (plugin property sessionId) into the card it saved.
      const props: Doc[] = [...(Array.isArray(body.pluginInfo?.properties) ? body.pluginInfo.properties : []), ...pluginProperties];
      const sessionId = props.find((p) => p?.key === 'sessionId')?.value;
      if (typeof sessionId !== 'string') throw new SimError(400, 'PaymentMethodPlugin#getExternalPaymentMethodId or sessionId plugin property must be passed');
      const rowId = sessionRowId(sessionId);
      const session = rowId ? await get(t, 'checkoutSession', tenant.id, rowId) : null;
      if (!session || session.metadata?.kb_account_id !== accountId) throw new SimError(400, `Unable to add payment method: missing StripeHppRequestsRecord for sessionId ${sessionId}`);
      const card = await savedCard(t, sessionId);
      if (!card) throw new SimError(400, `Unable to add payment method: the session ${sessionId} saved no card`);
      const prop = (key: string, value: unknown) => ({ key, value: String(value), isUpdatable: false });
      Object.assign(pm, {
        externalKey: card.id,
        pluginInfo: {
          externalPaymentMethodId: card.id,
          isDefaultPaymentMethod: isDefault,
          properties: [prop('card_brand', card.brand), prop('card_last4', card.last4), prop('card_exp_month', card.expMonth), prop('card_exp_year', card.expYear)],
        },
        _outcome: card.chargeFails ? 'FAILURE' : 'SUCCESS',
      });
    }
    if (isDefault) {
      for (const other of await find(t, 'paymentMethod', tenant.id, { accountId })) {
        other.isDefault = false;
        other.pluginInfo.isDefaultPaymentMethod = false;
        await put(t, 'paymentMethod', tenant.id, other.paymentMethodId, other, { accountId });
      }
      account.paymentMethodId = id;
      await put(t, 'account', tenant.id, accountId, account, { accountId, externalKey: account.externalKey });
    }
    await put(t, 'paymentMethod', tenant.id, id, pm, { accountId });
    if (payAll) await this.payUnpaid(t, tenant, account);
    return pm;
  }

  /**
   * DELETE /paymentMethods/{id} as Kill Bill's PaymentMethodProcessor does: the account's default needs
   * `deleteDefaultPmWithAutoPayOff` (also tags the account AUTO_PAY_OFF) or `forceDefaultPmDeletion`, else 400.
   * The method is kept, marked deleted (listed only with `includedDeleted`).
   */
  async deletePaymentMethod(t: Tx, tenant: Tenant, id: string, o: { autoPayOff: boolean; force: boolean }): Promise<void> {
    const pm = await get(t, 'paymentMethod', tenant.id, id);
    if (!pm || pm._deleted) throw new SimError(404, `Object id=${id} type=PAYMENT_METHOD doesn't exist!`);
    const account = await this.account(t, tenant, pm.accountId);
    if (account.paymentMethodId === id) {
      if (!o.autoPayOff && !o.force) throw new SimError(400, `Cannot delete default payment method for account ${account.accountId}`);
      delete account.paymentMethodId; // Kill Bill leaves the field out rather than answering null
      if (o.autoPayOff) account._autoPayOff = true;
      await put(t, 'account', tenant.id, account.accountId, account, { accountId: account.accountId, externalKey: account.externalKey });
    }
    Object.assign(pm, { _deleted: true, isDefault: false });
    pm.pluginInfo.isDefaultPaymentMethod = false;
    await put(t, 'paymentMethod', tenant.id, id, pm, { accountId: pm.accountId });
  }

  /**
   * Simulator-only: tells the account's test payment method to succeed or
   * fail from now on. Switching to success pays the unpaid invoices at once
   * (as a customer fixing their card would), which clears overdue, unless
   * `payUnpaid` is false (then the customer's "Pay now" does it).
   */
  async setPaymentOutcome(t: Tx, tenant: Tenant, accountId: string, outcome: 'SUCCESS' | 'FAILURE', payUnpaid = true): Promise<Doc> {
    const account = await this.account(t, tenant, accountId);
    let pm = account.paymentMethodId ? await get(t, 'paymentMethod', tenant.id, account.paymentMethodId) : null;
    if (!pm) pm = await this.addPaymentMethod(t, tenant, accountId, { pluginName: TEST_PAYMENT_PLUGIN }, true, false);
    pm._outcome = outcome;
    await put(t, 'paymentMethod', tenant.id, pm.paymentMethodId, pm, { accountId });
    if (outcome === 'SUCCESS' && payUnpaid) await this.payUnpaid(t, tenant, await this.account(t, tenant, accountId));
    return pm;
  }

  // ---- subscriptions ----

  async createSubscription(t: Tx, tenant: Tenant, body: Doc): Promise<Doc> {
    if (typeof body.accountId !== 'string') throw new SimError(400, 'SubscriptionJson accountId needs to be set');
    const account = await this.account(t, tenant, body.accountId);
    const planName = body.planName as string | undefined;
    if (!planName) throw new SimError(400, 'SubscriptionJson planName needs to be set');
    const plan = planOf(tenant, planName);
    const now = await clockNow(t);
    if (plan.category === 'ADD_ON') return this.createAddOn(t, tenant, account, plan, body, now);
    const key = typeof body.externalKey === 'string' && body.externalKey ? body.externalKey : typeof body.bundleExternalKey === 'string' ? body.bundleExternalKey : undefined;
    let bundle = key ? (await find(t, 'bundle', tenant.id, { externalKey: key }))[0] : undefined;
    if (bundle) {
      const subs = await find(t, 'subscription', tenant.id, { externalKey: key });
      if (subs.some((s) => s.state !== 'CANCELLED' && s.state !== 'EXPIRED')) {
        throw new SimError(409, `Non-cancelled bundle with externalKey ${key} already exists`);
      }
      if (bundle.accountId !== account.accountId) throw new SimError(409, `Bundle ${key} belongs to another account`);
    } else {
      const bundleId = randomUUID();
      bundle = { accountId: account.accountId, bundleId, externalKey: key ?? bundleId, subscriptions: [], timeline: null };
      await put(t, 'bundle', tenant.id, bundleId, bundle, { accountId: account.accountId, externalKey: bundle.externalKey });
    }
    const skipTrial = body.phaseType === 'EVERGREEN';
    const inTrial = plan.trialDays !== undefined && !skipTrial;
    const subscriptionId = randomUUID();
    const sub: Doc = {
      accountId: account.accountId,
      bundleId: bundle.bundleId,
      bundleExternalKey: bundle.externalKey,
      subscriptionId,
      externalKey: bundle.externalKey,
      startDate: iso(now),
      productName: plan.product,
      productCategory: 'BASE',
      billingPeriod: plan.billingPeriod,
      phaseType: inTrial ? 'TRIAL' : 'EVERGREEN',
      priceList: 'DEFAULT',
      planName,
      state: 'ACTIVE',
      sourceType: 'NATIVE',
      billingStartDate: iso(now),
      billCycleDayLocal: now.getUTCDate(),
      quantity: 1,
      events: [],
      priceOverrides: [],
      prices: [],
      _trialEnd: inTrial ? iso(new Date(now.getTime() + (plan.trialDays ?? 0) * DAY)) : null,
      _nextBillingAt: inTrial ? null : iso(now),
    };
    const ev = (eventType: string, at: Date, phase: string) => ({
      eventId: randomUUID(),
      billingPeriod: inTrial && eventType !== 'PHASE' ? 'NO_BILLING_PERIOD' : plan.billingPeriod,
      effectiveDate: iso(at),
      catalogEffectiveDate: '2026-01-01T00:00:00.000Z',
      plan: planName,
      product: plan.product,
      priceList: 'DEFAULT',
      eventType,
      isBlockedBilling: false,
      isBlockedEntitlement: false,
      serviceName: 'entitlement+billing-service',
      serviceStateName: eventType === 'PHASE' ? 'PHASE' : eventType === 'START_ENTITLEMENT' ? 'ENT_STARTED' : 'START_BILLING',
      phase: `${planName}-${phase}`,
    });
    const firstPhase = inTrial ? 'trial' : 'evergreen';
    sub.events.push(ev('START_ENTITLEMENT', now, firstPhase), ev('START_BILLING', now, firstPhase));
    if (inTrial) sub.events.push(ev('PHASE', new Date(sub._trialEnd), 'evergreen'));
    await put(t, 'subscription', tenant.id, subscriptionId, sub, { accountId: account.accountId, externalKey: bundle.externalKey });
    if (!account.billCycleDayLocal) {
      account.billCycleDayLocal = now.getUTCDate();
      await put(t, 'account', tenant.id, account.accountId, account, { accountId: account.accountId, externalKey: account.externalKey });
      await this.notify(t, tenant, { eventType: 'ACCOUNT_CHANGE', accountId: account.accountId, objectType: 'ACCOUNT', objectId: account.accountId, metaData: null });
    }
    await this.notify(t, tenant, { eventType: 'ENTITLEMENT_CREATION', accountId: account.accountId, objectType: 'SUBSCRIPTION', objectId: subscriptionId, metaData: null });
    await this.subscriptionEvent(t, tenant, 'SUBSCRIPTION_CREATION', sub, ['REQUESTED', 'EFFECTIVE']);
    if (inTrial) {
      await this.invoice(t, tenant, account, [{ sub, type: 'FIXED', amount: 0, start: now, end: null, phase: 'trial' }], now);
    } else {
      await this.billDue(t, now, tenant);
    }
    return (await get(t, 'subscription', tenant.id, subscriptionId))!;
  }

  /**
   * An ADD_ON subscription in an existing bundle (POST /subscriptions with
   * `bundleId`, or `bundleExternalKey`), as Kill Bill checks it: the bundle
   * is the account's and has a live BASE subscription whose product lists the
   * add-on's product as available. Its phases are aligned with the bundle's
   * start (the catalogue's default START_OF_BUNDLE): a trial counted from the
   * base's start date, so an add-on bought in the base's trial is free until
   * the base's trial ends, and billed at once when that is past.
   */
  private async createAddOn(t: Tx, tenant: Tenant, account: Doc, plan: CatalogPlan, body: Doc, now: Date): Promise<Doc> {
    const bundle =
      typeof body.bundleId === 'string'
        ? await get(t, 'bundle', tenant.id, body.bundleId)
        : typeof body.bundleExternalKey === 'string'
          ? (await find(t, 'bundle', tenant.id, { externalKey: body.bundleExternalKey }))[0]
          : undefined;
    if (!bundle) throw new SimError(400, `SubscriptionJson bundleId or bundleExternalKey needs to be set for ADD_ON plan ${plan.name}`);
    if (bundle.accountId !== account.accountId) throw new SimError(400, `Bundle ${bundle.bundleId} does not belong to account ${account.accountId}`);
    const inBundle = (await find(t, 'subscription', tenant.id, { externalKey: bundle.externalKey })).filter((s) => s.bundleId === bundle.bundleId);
    const base = inBundle.find((s) => s.productCategory === 'BASE' && s.state !== 'CANCELLED' && s.state !== 'EXPIRED' && !s._cancelAt);
    if (!base) throw new SimError(400, `Can't create AddOn ${plan.name} for bundle ${bundle.bundleId}: no active base subscription`);
    if (!planOf(tenant, base.planName).addOns.includes(plan.product)) {
      throw new SimError(400, `Can't create AddOn ${plan.product} for BasePlan ${base.planName} (Not available)`);
    }
    const trialEnd = plan.trialDays !== undefined ? new Date(Date.parse(base.startDate) + plan.trialDays * DAY) : undefined;
    const inTrial = !!trialEnd && trialEnd > now;
    const subscriptionId = randomUUID();
    const ev = (eventType: string, at: Date, phase: string) => ({
      eventId: randomUUID(),
      billingPeriod: inTrial && eventType !== 'PHASE' ? 'NO_BILLING_PERIOD' : plan.billingPeriod,
      effectiveDate: iso(at),
      catalogEffectiveDate: '2026-01-01T00:00:00.000Z',
      plan: plan.name,
      product: plan.product,
      priceList: 'DEFAULT',
      eventType,
      isBlockedBilling: false,
      isBlockedEntitlement: false,
      serviceName: 'entitlement+billing-service',
      serviceStateName: eventType === 'PHASE' ? 'PHASE' : eventType === 'START_ENTITLEMENT' ? 'ENT_STARTED' : 'START_BILLING',
      phase: `${plan.name}-${phase}`,
    });
    const sub: Doc = {
      accountId: account.accountId,
      bundleId: bundle.bundleId,
      bundleExternalKey: bundle.externalKey,
      subscriptionId,
      // A subscription's own key is unique in Kill Bill; the bundle's key stays the base's.
      externalKey: typeof body.externalKey === 'string' && body.externalKey ? body.externalKey : subscriptionId,
      startDate: iso(now),
      productName: plan.product,
      productCategory: 'ADD_ON',
      billingPeriod: plan.billingPeriod,
      phaseType: inTrial ? 'TRIAL' : 'EVERGREEN',
      priceList: 'DEFAULT',
      planName: plan.name,
      state: base.state === 'BLOCKED' ? 'BLOCKED' : 'ACTIVE',
      sourceType: 'NATIVE',
      billingStartDate: iso(now),
      billCycleDayLocal: base.billCycleDayLocal,
      quantity: 1,
      events: [],
      priceOverrides: [],
      prices: [],
      _billingBlocked: base._billingBlocked ?? false,
      _trialEnd: inTrial ? iso(trialEnd) : null,
      _nextBillingAt: inTrial ? null : iso(now),
    };
    const first = inTrial ? 'trial' : 'evergreen';
    sub.events.push(ev('START_ENTITLEMENT', now, first), ev('START_BILLING', now, first));
    if (inTrial) sub.events.push(ev('PHASE', trialEnd, 'evergreen'));
    await put(t, 'subscription', tenant.id, subscriptionId, sub, { accountId: account.accountId, externalKey: bundle.externalKey });
    await this.notify(t, tenant, { eventType: 'ENTITLEMENT_CREATION', accountId: account.accountId, objectType: 'SUBSCRIPTION', objectId: subscriptionId, metaData: null });
    await this.subscriptionEvent(t, tenant, 'SUBSCRIPTION_CREATION', sub, ['REQUESTED', 'EFFECTIVE']);
    if (inTrial) await this.invoice(t, tenant, account, [{ sub, type: 'FIXED', amount: 0, start: now, end: null, phase: 'trial' }], now);
    else await this.billDue(t, now, tenant);
    return (await get(t, 'subscription', tenant.id, subscriptionId))!;
  }

  async subscription(t: Tx, tenant: Tenant, id: string): Promise<Doc> {
    const s = await get(t, 'subscription', tenant.id, id);
    if (!s) throw new SimError(404, `Object id=${id} type=SUBSCRIPTION doesn't exist!`);
    return s;
  }

  /** DELETE /subscriptions/{id}: END_OF_TERM keeps the service to the charged-through date; IMMEDIATE ends it now. */
  async cancel(t: Tx, tenant: Tenant, id: string, entitlementPolicy: string | undefined, billingPolicy: string | undefined, runDue = true): Promise<void> {
    const sub = await this.subscription(t, tenant, id);
    if (sub.state === 'CANCELLED' || sub.state === 'EXPIRED') throw new SimError(400, `Subscription ${id} is already cancelled`);
    const now = await clockNow(t);
    const ctd = sub._nextBillingAt && new Date(sub._nextBillingAt) > now ? new Date(sub._nextBillingAt) : now;
    const entitlementEnd = entitlementPolicy === 'END_OF_TERM' ? ctd : now;
    const billingEnd = billingPolicy === 'END_OF_TERM' || (!billingPolicy && entitlementPolicy === 'END_OF_TERM') ? ctd : now;
    sub.cancelledDate = iso(entitlementEnd);
    sub.billingEndDate = iso(billingEnd);
    sub._cancelAt = iso(entitlementEnd);
    sub._billingEndAt = iso(billingEnd);
    await put(t, 'subscription', tenant.id, id, sub, { accountId: sub.accountId, externalKey: sub.bundleExternalKey });
    await this.subscriptionEvent(t, tenant, 'SUBSCRIPTION_CANCEL', sub, ['REQUESTED']);
    if (sub.productCategory === 'BASE') {
      // Kill Bill cancels a bundle's add-ons with its base, on the same dates (entitlement and billing).
      for (const addOn of await find(t, 'subscription', tenant.id, { externalKey: sub.bundleExternalKey })) {
        if (addOn.bundleId !== sub.bundleId || addOn.productCategory !== 'ADD_ON' || addOn.state === 'CANCELLED' || addOn.state === 'EXPIRED') continue;
        if (addOn._cancelAt && Date.parse(addOn._cancelAt) <= entitlementEnd.getTime()) continue;
        addOn.cancelledDate = iso(entitlementEnd);
        addOn.billingEndDate = iso(billingEnd);
        addOn._cancelAt = iso(entitlementEnd);
        addOn._billingEndAt = iso(billingEnd);
        await put(t, 'subscription', tenant.id, addOn.subscriptionId, addOn, { accountId: addOn.accountId, externalKey: addOn.bundleExternalKey });
        await this.subscriptionEvent(t, tenant, 'SUBSCRIPTION_CANCEL', addOn, ['REQUESTED']);
        if (!runDue) await this.endEntitlementIfDue(t, tenant, addOn, now);
      }
    }
    if (runDue) await this.runDue(t, now);
    else await this.endEntitlementIfDue(t, tenant, sub, now);
  }

  async uncancel(t: Tx, tenant: Tenant, id: string): Promise<void> {
    const sub = await this.subscription(t, tenant, id);
    if (sub.state !== 'ACTIVE' || !sub._cancelAt) throw new SimError(400, `Subscription ${id} has no pending cancellation`);
    delete sub.cancelledDate;
    delete sub.billingEndDate;
    sub._cancelAt = null;
    sub._billingEndAt = null;
    await put(t, 'subscription', tenant.id, id, sub, { accountId: sub.accountId, externalKey: sub.bundleExternalKey });
    await this.subscriptionEvent(t, tenant, 'SUBSCRIPTION_UNCANCEL', sub, ['EFFECTIVE']);
  }

  /** PUT /subscriptions/{id}: immediate plan change (our catalogue's change policy), prorated on the rest of the term. */
  async changePlan(t: Tx, tenant: Tenant, id: string, body: Doc): Promise<void> {
    const sub = await this.subscription(t, tenant, id);
    if (sub.state !== 'ACTIVE') throw new SimError(400, `Subscription ${id} is not active`);
    const plan = planOf(tenant, String(body.planName ?? ''));
    const old = planOf(tenant, sub.planName);
    const now = await clockNow(t);
    sub.planName = plan.name;
    sub.productName = plan.product;
    sub.events.push({
      ...sub.events[0],
      eventId: randomUUID(),
      eventType: 'CHANGE',
      effectiveDate: iso(now),
      plan: plan.name,
      product: plan.product,
      serviceStateName: 'CHANGE',
      phase: `${plan.name}-${sub.phaseType === 'TRIAL' ? 'trial' : 'evergreen'}`,
    });
    await put(t, 'subscription', tenant.id, id, sub, { accountId: sub.accountId, externalKey: sub.bundleExternalKey });
    await this.subscriptionEvent(t, tenant, 'SUBSCRIPTION_CHANGE', sub, ['REQUESTED', 'EFFECTIVE']);
    if (sub.phaseType === 'EVERGREEN' && sub._nextBillingAt) {
      const end = new Date(sub._nextBillingAt);
      const start = addMonths(end, -1);
      const share = Math.max(0, (end.getTime() - now.getTime()) / (end.getTime() - start.getTime()));
      const amount = money((plan.price - old.price) * share);
      if (amount > 0) {
        const account = await this.account(t, tenant, sub.accountId);
        await this.invoice(t, tenant, account, [{ sub, type: 'RECURRING', amount, start: now, end, phase: 'evergreen' }], now);
      }
    }
  }

  // ---- invoices and payments ----

  private async invoice(
    t: Tx,
    tenant: Tenant,
    account: Doc,
    lines: { sub: Doc; type: 'FIXED' | 'RECURRING'; amount: number; start: Date; end: Date | null; phase: string }[],
    now: Date,
  ): Promise<Doc> {
    const invoiceId = randomUUID();
    const number = await t.one<{ n: number }>("SELECT count(*) + 1 AS n FROM kb_objects WHERE kind = 'invoice'");
    const amount = money(lines.reduce((s, l) => s + l.amount, 0));
    const inv: Doc = {
      amount,
      currency: 'USD',
      status: 'COMMITTED',
      creditAdj: 0,
      refundAdj: 0,
      invoiceId,
      invoiceDate: day(now),
      targetDate: day(now),
      invoiceNumber: String(number.n),
      balance: amount,
      accountId: account.accountId,
      bundleKeys: [...new Set(lines.map((l) => l.sub.bundleExternalKey))].join(','),
      credits: [],
      trackingIds: [],
      isParentInvoice: false,
      items: lines.map((l) => ({
        invoiceItemId: randomUUID(),
        invoiceId,
        accountId: account.accountId,
        bundleId: l.sub.bundleId,
        subscriptionId: l.sub.subscriptionId,
        productName: l.sub.productName,
        planName: l.sub.planName,
        phaseName: `${l.sub.planName}-${l.phase}`,
        itemType: l.type,
        description: `${l.sub.planName}-${l.phase}`,
        startDate: day(l.start),
        ...(l.end ? { endDate: day(l.end) } : {}),
        amount: l.amount,
        rate: l.amount,
        currency: 'USD',
        quantity: 1,
      })),
      _createdAt: iso(now),
    };
    await put(t, 'invoice', tenant.id, invoiceId, inv, { accountId: account.accountId });
    await this.notify(t, tenant, { eventType: 'INVOICE_CREATION', accountId: account.accountId, objectType: 'INVOICE', objectId: invoiceId, metaData: null });
    // AUTO_PAY_OFF: Kill Bill invoices but makes no automatic payment attempt.
    if (amount > 0 && !account._autoPayOff) await this.pay(t, tenant, account, inv, now);
    return inv;
  }

  /** Pays an invoice with the account's default payment method; no method means INVOICE_PAYMENT_FAILED only. */
  private async pay(t: Tx, tenant: Tenant, account: Doc, inv: Doc, now: Date, paymentMethodId = account.paymentMethodId): Promise<string | null> {
    const pm = paymentMethodId ? await get(t, 'paymentMethod', tenant.id, paymentMethodId) : null;
    const invoicePaymentMeta = (paymentId: string | null, amount: number) =>
      JSON.stringify({
        invoicePaymentType: 'ATTEMPT',
        paymentId,
        paymentAttemptId: null,
        paymentDate: iso(now),
        amount,
        currency: 'USD',
        linkedInvoicePaymentId: null,
        paymentCookieId: null,
        processedCurrency: 'USD',
      });
    if (!pm) {
      await this.notify(t, tenant, {
        eventType: 'INVOICE_PAYMENT_FAILED',
        accountId: account.accountId,
        objectType: 'INVOICE',
        objectId: inv.invoiceId,
        metaData: invoicePaymentMeta(null, inv.balance),
      });
      await this.evaluateOverdue(t, tenant, await this.account(t, tenant, account.accountId), now);
      return null;
    }
    const ok = pm.pluginName === '__EXTERNAL_PAYMENT__' || pm._outcome !== 'FAILURE';
    const paymentId = randomUUID();
    const transactionId = randomUUID();
    const amount = inv.balance;
    const status = ok ? 'SUCCESS' : 'PAYMENT_FAILURE';
    const count = await t.one<{ n: number }>("SELECT count(*) + 1 AS n FROM kb_objects WHERE kind = 'payment'");
    const payment: Doc = {
      accountId: account.accountId,
      paymentId,
      paymentNumber: String(count.n),
      paymentExternalKey: paymentId,
      authAmount: 0,
      capturedAmount: 0,
      purchasedAmount: ok ? amount : 0,
      refundedAmount: 0,
      creditedAmount: 0,
      currency: 'USD',
      paymentMethodId: pm.paymentMethodId,
      paymentAttempts: [],
      transactions: [
        {
          transactionId,
          transactionExternalKey: transactionId,
          paymentId,
          paymentExternalKey: paymentId,
          transactionType: 'PURCHASE',
          amount,
          currency: 'USD',
          effectiveDate: iso(now),
          processedAmount: ok ? amount : 0,
          processedCurrency: 'USD',
          status,
          ...(ok ? {} : { gatewayErrorCode: 'DECLINED', gatewayErrorMsg: 'Simulated payment failure' }),
          properties: [],
        },
      ],
      _invoiceId: inv.invoiceId,
    };
    await put(t, 'payment', tenant.id, paymentId, payment, { accountId: account.accountId });
    if (ok) {
      inv.balance = 0;
      await put(t, 'invoice', tenant.id, inv.invoiceId, inv, { accountId: account.accountId });
    }
    await this.notify(t, tenant, {
      eventType: ok ? 'INVOICE_PAYMENT_SUCCESS' : 'INVOICE_PAYMENT_FAILED',
      accountId: account.accountId,
      objectType: 'INVOICE',
      objectId: inv.invoiceId,
      metaData: invoicePaymentMeta(paymentId, amount),
    });
    await this.notify(t, tenant, {
      eventType: ok ? 'PAYMENT_SUCCESS' : 'PAYMENT_FAILED',
      accountId: account.accountId,
      objectType: 'PAYMENT',
      objectId: paymentId,
      metaData: JSON.stringify({ paymentTransactionId: transactionId, amount, currency: 'USD', status, transactionType: 'PURCHASE', effectiveDate: iso(now) }),
    });
    // Kill Bill's overdue listener re-evaluates the account on every invoice payment (success or error).
    await this.evaluateOverdue(t, tenant, await this.account(t, tenant, account.accountId), now);
    return paymentId;
  }

  /**
   * POST /invoices/{id}/payments: pays the invoice's balance with the given or default
   * method. Null when there is nothing to pay (Kill Bill answers 204); a declined charge still makes a
   * payment (201), whose transaction status says PAYMENT_FAILURE.
   */
  async payInvoice(t: Tx, tenant: Tenant, invoiceId: string, body: Doc): Promise<string | null> {
    const inv = await get(t, 'invoice', tenant.id, invoiceId);
    if (!inv) throw new SimError(404, `Object id=${invoiceId} type=INVOICE doesn't exist!`);
    if (typeof body.accountId === 'string' && body.accountId !== inv.accountId) throw new SimError(400, 'InvoicePaymentJson accountId does not match the invoice');
    if (inv.balance <= 0) return null;
    const account = await this.account(t, tenant, inv.accountId);
    const methodId = typeof body.paymentMethodId === 'string' ? body.paymentMethodId : account.paymentMethodId;
    if (!methodId) throw new SimError(400, `No default payment method for account ${account.accountId}`);
    return this.pay(t, tenant, account, inv, await clockNow(t), methodId);
  }

  private async payUnpaid(t: Tx, tenant: Tenant, account: Doc): Promise<void> {
    const now = await clockNow(t);
    for (const inv of await find(t, 'invoice', tenant.id, { accountId: account.accountId })) {
      if (inv.balance > 0) await this.pay(t, tenant, account, inv, now);
    }
  }

  // ---- the clock ----

  /** Moves the clock to `target`, firing everything due on the way, in time order. */
  async advanceTo(t: Tx, target: Date): Promise<void> {
    let now = await clockNow(t);
    if (target < now) {
      await setClock(t, target); // Kill Bill allows moving back; nothing fires
      return;
    }
    for (let guard = 0; guard < 10_000; guard++) {
      const next = await this.nextDue(t, now);
      if (!next || next > target) break;
      now = next;
      await setClock(t, now);
      await this.runDue(t, now);
    }
    await setClock(t, target);
    await this.runDue(t, target);
  }

  /** The earliest time strictly after `after` at which something is due, or null. */
  private async nextDue(t: Tx, after: Date): Promise<Date | null> {
    const times: number[] = [];
    for (const { doc: s } of await findAll(t, 'subscription')) {
      if (s.state === 'CANCELLED' || s.state === 'EXPIRED') continue;
      if (s.phaseType === 'TRIAL' && s._trialEnd) times.push(Date.parse(s._trialEnd));
      if (s.phaseType === 'EVERGREEN' && s._nextBillingAt && !s._billingBlocked) times.push(Date.parse(s._nextBillingAt));
      if (s._cancelAt) times.push(Date.parse(s._cancelAt));
    }
    // Overdue is looked at only when a re-check Kill Bill scheduled falls due (OverdueStateApplicator), never by invoice age alone.
    for (const { doc: a } of await findAll(t, 'account')) if (a._overdueCheckAt) times.push(Date.parse(a._overdueCheckAt));
    const future = times.filter((x) => x > after.getTime());
    return future.length ? new Date(Math.min(...future)) : null;
  }

  /** Everything due at `now`: cancellations, phase changes, billing, overdue. */
  async runDue(t: Tx, now: Date): Promise<void> {
    const tenants = await t.manyOrNone<Tenant>('SELECT * FROM kb_tenants');
    for (const tenant of tenants) {
      for (const sub of await find(t, 'subscription', tenant.id)) {
        if (sub.state === 'CANCELLED' || sub.state === 'EXPIRED') continue;
        if (await this.endEntitlementIfDue(t, tenant, sub, now)) continue;
        if (sub.phaseType === 'TRIAL' && sub._trialEnd && Date.parse(sub._trialEnd) <= now.getTime()) {
          sub.phaseType = 'EVERGREEN';
          sub._nextBillingAt = sub._trialEnd;
          sub._trialEnd = null;
          await put(t, 'subscription', tenant.id, sub.subscriptionId, sub, { accountId: sub.accountId, externalKey: sub.bundleExternalKey });
          await this.subscriptionEvent(t, tenant, 'SUBSCRIPTION_PHASE', sub, ['EFFECTIVE']);
        }
      }
      await this.billDue(t, now, tenant);
      for (const account of await find(t, 'account', tenant.id)) {
        if (!account._overdueCheckAt || Date.parse(account._overdueCheckAt) > now.getTime()) continue;
        account._overdueCheckAt = null; // the notification is consumed; evaluating schedules the next one
        await put(t, 'account', tenant.id, account.accountId, account, { accountId: account.accountId, externalKey: account.externalKey });
        await this.evaluateOverdue(t, tenant, account, now);
      }
    }
  }

  /** Ends a subscription whose cancellation date has come (ENTITLEMENT_CANCEL, effective SUBSCRIPTION_CANCEL); true when it did. */
  private async endEntitlementIfDue(t: Tx, tenant: Tenant, sub: Doc, now: Date): Promise<boolean> {
    if (!sub._cancelAt || Date.parse(sub._cancelAt) > now.getTime()) return false;
    sub.state = 'CANCELLED';
    sub._nextBillingAt = null;
    sub._trialEnd = null;
    sub.events.push({ ...sub.events[0], eventId: randomUUID(), eventType: 'STOP_ENTITLEMENT', effectiveDate: sub.cancelledDate, serviceStateName: 'ENT_CANCELLED' });
    await put(t, 'subscription', tenant.id, sub.subscriptionId, sub, { accountId: sub.accountId, externalKey: sub.bundleExternalKey });
    await this.notify(t, tenant, { eventType: 'ENTITLEMENT_CANCEL', accountId: sub.accountId, objectType: 'SUBSCRIPTION', objectId: sub.subscriptionId, metaData: null });
    await this.subscriptionEvent(t, tenant, 'SUBSCRIPTION_CANCEL', sub, ['EFFECTIVE']);
    return true;
  }

  /** Invoices every evergreen subscription whose period starts at or before `now`, one invoice per account. */
  async billDue(t: Tx, now: Date, only?: Tenant): Promise<void> {
    const tenants = only ? [only] : await t.manyOrNone<Tenant>('SELECT * FROM kb_tenants');
    for (const tenant of tenants) {
      const byAccount = new Map<string, Parameters<Engine['invoice']>[3]>();
      for (const sub of await find(t, 'subscription', tenant.id)) {
        if (sub.state !== 'ACTIVE' || sub.phaseType !== 'EVERGREEN' || !sub._nextBillingAt || sub._billingBlocked) continue;
        let start = new Date(sub._nextBillingAt);
        const plan = planOf(tenant, sub.planName);
        while (start <= now) {
          if (sub._billingEndAt && start >= new Date(sub._billingEndAt)) break;
          const end = addMonths(start, 1);
          const lines = byAccount.get(sub.accountId) ?? [];
          lines.push({ sub, type: 'RECURRING', amount: plan.price, start, end, phase: 'evergreen' });
          byAccount.set(sub.accountId, lines);
          start = end;
        }
        sub._nextBillingAt = iso(start);
        sub.chargedThroughDate = day(start);
        await put(t, 'subscription', tenant.id, sub.subscriptionId, sub, { accountId: sub.accountId, externalKey: sub.bundleExternalKey });
      }
      for (const [accountId, lines] of byAccount) {
        if (lines.length) await this.invoice(t, tenant, await this.account(t, tenant, accountId), lines, now);
      }
    }
  }

  /**
   * Moves an account to the overdue state its oldest unpaid invoice calls for; fires BLOCKING_STATE then
   * OVERDUE_CHANGE. Then schedules the next re-check as Kill Bill 0.24's OverdueStateApplicator does: from a
   * non-clear state after its autoReevaluationInterval, from the clear state with an unpaid invoice after the
   * config's initialReevaluationInterval, none when the interval is absent; the earliest pending re-check wins.
   */
  private async evaluateOverdue(t: Tx, tenant: Tenant, account: Doc, now: Date): Promise<void> {
    const config = overdueOf(tenant);
    const states = config.states;
    const unpaid = (await find(t, 'invoice', tenant.id, { accountId: account.accountId })).filter((i) => i.balance > 0);
    const oldest = unpaid.reduce<number | undefined>((m, i) => Math.min(m ?? Infinity, Date.parse(i._createdAt)), undefined);
    const days = oldest === undefined ? -1 : Math.floor((now.getTime() - oldest) / DAY);
    const next = states.find((s) => days >= s.days);
    const nextName = next?.name ?? CLEAR_OVERDUE_STATE;
    const previous = states.find((s) => s.name === account._overdueState);
    if (next || (states.length && oldest !== undefined)) {
      const interval = next ? next.reevaluationDays : config.initialReevaluationDays;
      if (interval !== undefined) {
        const at = now.getTime() + interval * DAY;
        const pending = account._overdueCheckAt ? Date.parse(account._overdueCheckAt) : Infinity;
        account._overdueCheckAt = iso(new Date(Math.min(pending, at)));
      }
    } else {
      account._overdueCheckAt = null;
    }
    const changed = nextName !== (account._overdueState ?? CLEAR_OVERDUE_STATE);
    account._overdueState = nextName;
    await put(t, 'account', tenant.id, account.accountId, account, { accountId: account.accountId, externalKey: account.externalKey });
    if (!changed) return;
    const blockEnt = next?.blockEntitlement ?? false;
    const wasBlocked = previous?.blockEntitlement ?? false;
    const bsId = randomUUID();
    await put(
      t,
      'blocking',
      tenant.id,
      bsId,
      {
        blockedId: account.accountId,
        stateName: nextName,
        service: OVERDUE_SERVICE,
        isBlockChange: next?.blockChanges ?? false,
        isBlockEntitlement: blockEnt,
        isBlockBilling: blockEnt,
        effectiveDate: iso(now),
        type: 'ACCOUNT',
      },
      { accountId: account.accountId },
    );
    for (const sub of await find(t, 'subscription', tenant.id, { accountId: account.accountId })) {
      if (sub.state === 'CANCELLED' || sub.state === 'EXPIRED') continue;
      sub.state = blockEnt ? 'BLOCKED' : 'ACTIVE';
      sub._billingBlocked = blockEnt;
      if (!blockEnt && sub._nextBillingAt && Date.parse(sub._nextBillingAt) < now.getTime()) sub._nextBillingAt = iso(now);
      await put(t, 'subscription', tenant.id, sub.subscriptionId, sub, { accountId: sub.accountId, externalKey: sub.bundleExternalKey });
    }
    await this.notify(t, tenant, {
      eventType: 'BLOCKING_STATE',
      accountId: account.accountId,
      objectType: 'ACCOUNT',
      objectId: account.accountId,
      metaData: JSON.stringify({
        blockableId: account.accountId,
        service: OVERDUE_SERVICE,
        stateName: nextName,
        blockingType: 'ACCOUNT',
        effectiveDate: iso(now),
        transitionedToBlockedBilling: blockEnt && !wasBlocked,
        transitionedToUnblockedBilling: !blockEnt && wasBlocked,
        transitionedToBlockedEntitlement: blockEnt && !wasBlocked,
        transitionedToUnblockedEntitlement: !blockEnt && wasBlocked,
      }),
    });
    await this.notify(t, tenant, { eventType: 'OVERDUE_CHANGE', accountId: account.accountId, objectType: 'ACCOUNT', objectId: account.accountId, metaData: null });
    if (next?.cancellation) {
      // OverdueStateApplicator cancels with the entitlement ending on the day and the state's policy for billing only.
      for (const sub of await find(t, 'subscription', tenant.id, { accountId: account.accountId })) {
        if (sub.state === 'CANCELLED' || sub.state === 'EXPIRED' || sub._cancelAt) continue;
        await this.cancel(t, tenant, sub.subscriptionId, 'IMMEDIATE', next.cancellation, false);
      }
    }
  }

  /** OverdueState answer of GET /accounts/{id}/overdue. */
  overdueState(tenant: Tenant, account: Doc): Doc {
    const def = overdueOf(tenant).states.find((s) => s.name === account._overdueState);
    if (!def) return { name: CLEAR_OVERDUE_STATE, externalMessage: '', isDisableEntitlementAndChangesBlocked: false, isBlockChanges: false, isClearState: true, reevaluationIntervalDays: 0 };
    return {
      name: def.name,
      externalMessage: '',
      isDisableEntitlementAndChangesBlocked: def.blockEntitlement,
      isBlockChanges: def.blockChanges,
      isClearState: false,
      reevaluationIntervalDays: def.reevaluationDays ?? 0,
    };
  }
}
