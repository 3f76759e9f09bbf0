/**
 * Lifecycle decisions (platform/src/billing/README.md 5). A Kill Bill notification only says "look
 * again": the state is re-read from Kill Bill and compared with what
 * lifecycle last made true for the subscription (lifecycle_subscriptions),
 * and only the differences become instance commands. So duplicates, any
 * arrival order and forged notifications all end in the same, correct state.
 */
import type { KillbillNotification } from '@saasodoo/events';
import type { Tx } from '@saasodoo/platform/db/index';
import { OVERDUE_SERVICE } from '@saasodoo/platform/billing/catalog';
import { subscriptionEnded, type Account, type Invoice, type OverdueState, type Payment, type Subscription } from '@saasodoo/platform/billing/killbill';
import { enqueue } from '@saasodoo/platform/outbox';

export type BillingStatus = 'trial' | 'payment_required' | 'paid' | 'overdue' | 'suspended';
export type Reason =
  'trial_started' | 'trial_ended' | 'invoice_created' | 'payment_succeeded' | 'payment_failed' | 'overdue_warning' | 'suspended' | 'resumed' | 'cancellation_scheduled' | 'cancelled' | 'plan_changed';

/** What Kill Bill says now about one subscription and its account. */
export type KbState = { account: Account; sub: Subscription; invoices: Invoice[]; payments: Payment[]; overdue: OverdueState | null };

export type Desired = {
  customerId: string;
  instanceId: string;
  terminated: boolean;
  provision: boolean;
  suspended: boolean;
  plan: string;
  billingStatus: BillingStatus;
};

/** The state platform/src/billing/README.md 5 asks for, from Kill Bill's state alone. */
export function desiredState(s: KbState): Desired {
  const subId = s.sub.subscriptionId;
  const ofSub = s.invoices.filter((i) => (i.items ?? []).some((it) => it.subscriptionId === subId));
  const paidForSub = ofSub.some((i) => (i.amount ?? 0) > 0 && (i.balance ?? 0) <= 0);
  const unpaid = s.invoices.some((i) => (i.balance ?? 0) > 0);
  const lastPayment = s.payments
    .flatMap((p) => p.transactions ?? [])
    .sort((a, b) => String(a.effectiveDate).localeCompare(String(b.effectiveDate)))
    .at(-1);
  const suspended = s.overdue?.isDisableEntitlementAndChangesBlocked === true;
  const terminated = subscriptionEnded(s.sub);
  const inTrial = s.sub.phaseType === 'TRIAL';
  let billingStatus: BillingStatus;
  if (suspended) billingStatus = 'suspended';
  else if (unpaid && ((lastPayment?.status !== 'SUCCESS' && lastPayment !== undefined) || (s.overdue && !s.overdue.isClearState))) billingStatus = 'overdue';
  else if (inTrial) billingStatus = 'trial';
  else if (unpaid || !paidForSub) billingStatus = 'payment_required';
  else billingStatus = 'paid';
  return {
    customerId: s.account.externalKey!,
    instanceId: s.sub.bundleExternalKey ?? s.sub.externalKey!,
    terminated,
    provision: !terminated && (inTrial || paidForSub),
    suspended,
    plan: s.sub.planName,
    billingStatus,
  };
}

type Row = {
  subscription_id: string;
  instance_id: string;
  customer_id: string;
  plan_id: string | null;
  billing_status: string | null;
  provisioned: boolean;
  suspended: boolean;
  terminated: boolean;
  suspension_seq: number;
};

/** Enqueues `billing.status_changed` once per key. */
/** What a mail says about an invoice: number, amount, balance and due date (Kill Bill charges on issue). */
function invoiceFacts(i: Invoice | undefined) {
  if (!i?.invoiceNumber || !i.invoiceDate) return undefined;
  return { number: String(i.invoiceNumber), amount: i.amount ?? 0, balance: i.balance ?? 0, currency: i.currency ?? 'USD', dueDate: String(i.invoiceDate) };
}

/** The oldest unpaid invoice of a subscription (what overdue is counted from). */
function oldestUnpaid(s: KbState): Invoice | undefined {
  const subId = s.sub.subscriptionId;
  return s.invoices.filter((i) => (i.balance ?? 0) > 0 && (i.items ?? []).some((it) => it.subscriptionId === subId)).sort((a, b) => String(a.invoiceDate).localeCompare(String(b.invoiceDate)))[0];
}

async function notice(t: Tx, key: string, d: Desired, subscriptionId: string, reason: Reason, effectiveDate?: string, invoice?: Invoice): Promise<boolean> {
  const fresh = await t.oneOrNone('INSERT INTO lifecycle_notices (key) VALUES ($1) ON CONFLICT DO NOTHING RETURNING 1', [key]);
  if (!fresh) return false;
  const facts = invoiceFacts(invoice);
  await enqueue(
    t,
    'billing.status_changed',
    {
      customerId: d.customerId,
      instanceId: d.instanceId,
      subscriptionId,
      status: d.billingStatus,
      reason,
      ...(effectiveDate ? { effectiveDate } : {}),
      ...(facts ? { invoice: facts } : {}),
    },
    { subject: d.instanceId },
  );
  return true;
}

/**
 * Applies the differences between what Kill Bill says and what lifecycle
 * last did, inside the caller's transaction (commands go to the outbox).
 * `n` (the notification being handled) only chooses which mail-worthy
 * notice to send; it never decides an instance command.
 */
export async function reconcile(t: Tx, s: KbState, n: KillbillNotification): Promise<void> {
  const subId = s.sub.subscriptionId!;
  const d = desiredState(s);
  await t.none(`INSERT INTO lifecycle_subscriptions (subscription_id, instance_id, customer_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, [subId, d.instanceId, d.customerId]);
  const row = await t.one<Row>('SELECT * FROM lifecycle_subscriptions WHERE subscription_id = $1 FOR UPDATE', [subId]);
  if (row.terminated) return;
  const ids = { instanceId: d.instanceId, customerId: d.customerId };
  const opts = { subject: d.instanceId };
  const next = { ...row };
  const meta = n.metaData ? (JSON.parse(n.metaData) as Record<string, unknown>) : {};
  let noticed = false;

  if (d.terminated) {
    await enqueue(t, 'instance.terminate', { ...ids, reason: 'subscription_cancelled' }, opts);
    next.terminated = true;
    noticed = await notice(t, `cancelled:${subId}`, d, subId, 'cancelled', s.sub.cancelledDate ?? undefined);
  } else {
    if (!row.provisioned && d.provision && !d.suspended) {
      await enqueue(t, 'instance.provision', ids, opts);
      next.provisioned = true;
      if (s.sub.phaseType === 'TRIAL') noticed = (await notice(t, `trial_started:${subId}`, d, subId, 'trial_started')) || noticed;
    }
    if ((row.provisioned || next.provisioned) && d.suspended && !row.suspended) {
      next.suspension_seq++;
      await enqueue(t, 'instance.suspend', { ...ids, reason: 'overdue', seq: next.suspension_seq }, opts);
      next.suspended = true;
      noticed = (await notice(t, `suspended:${subId}:${n.objectId}:${meta.effectiveDate ?? ''}`, d, subId, 'suspended', undefined, oldestUnpaid(s))) || noticed;
    }
    if (row.suspended && !d.suspended) {
      next.suspension_seq++;
      await enqueue(t, 'instance.resume', { ...ids, seq: next.suspension_seq }, opts);
      next.suspended = false;
      noticed = (await notice(t, `resumed:${subId}:${meta.effectiveDate ?? Date.now()}`, d, subId, 'resumed')) || noticed;
    }
    if (row.plan_id && row.plan_id !== d.plan) {
      await enqueue(t, 'instance.quota', { ...ids, plan: d.plan }, opts);
      noticed = (await notice(t, `plan_changed:${subId}:${d.plan}:${row.plan_id}`, d, subId, 'plan_changed')) || noticed;
    }
    next.plan_id = d.plan;
    if (row.billing_status === 'trial' && d.billingStatus !== 'trial' && s.sub.phaseType === 'EVERGREEN') noticed = (await trialEndNotice(t, s, d)) || noticed;
    else noticed = (await eventNotice(t, s, d, n, meta)) || noticed;
  }
  if (!noticed && row.billing_status !== d.billingStatus && !next.terminated) {
    const fallback: Record<BillingStatus, Reason> = {
      trial: 'trial_started',
      paid: 'payment_succeeded',
      payment_required: s.sub.phaseType === 'EVERGREEN' && row.billing_status === 'trial' ? 'trial_ended' : 'invoice_created',
      overdue: 'payment_failed',
      suspended: 'suspended',
    };
    await notice(t, fallbackKey(s, d, n), d, subId, fallback[d.billingStatus]);
  }
  await t.none(
    `UPDATE lifecycle_subscriptions SET plan_id = $2, billing_status = $3, provisioned = $4, suspended = $5, terminated = $6,
       suspension_seq = $7, updated_at = now()
     WHERE subscription_id = $1`,
    [subId, next.plan_id, d.billingStatus, next.provisioned, next.suspended, next.terminated, next.suspension_seq],
  );
}

/**
 * The exactly-once key of a status change no notification's own notice told.
 * A payment, paid or failed, is told once whichever notification noticed it
 * first: the same key as INVOICE_PAYMENT_SUCCESS's or INVOICE_PAYMENT_FAILED's
 * own notice. (The fault suite's oracle caught a never-paying customer told
 * "payment failed" twice: SUBSCRIPTION_CREATION, handled after the failed
 * payment, saw the account overdue and told it under a key of its own.)
 */
export function fallbackKey(s: KbState, d: Desired, n: KillbillNotification): string {
  const subId = s.sub.subscriptionId!;
  if (d.billingStatus === 'paid') {
    const paidInvoice = invoicesOf(s)
      .filter((i) => (i.amount ?? 0) > 0 && (i.balance ?? 0) <= 0)
      .at(-1);
    if (paidInvoice) return `payment_succeeded:${paidInvoice.invoiceId}`;
  }
  if (d.billingStatus === 'overdue') {
    const failed = s.payments
      .flatMap((p) => (p.transactions ?? []).map((tx) => ({ ...tx, paymentId: tx.paymentId ?? p.paymentId })))
      .sort((a, b) => String(a.effectiveDate).localeCompare(String(b.effectiveDate)))
      .at(-1);
    const unpaid = oldestUnpaid(s);
    if (failed && failed.status !== 'SUCCESS' && failed.paymentId && unpaid) return `payment_failed:${unpaid.invoiceId}:${failed.paymentId}`;
  }
  return `status:${subId}:${d.billingStatus}:${n.eventType}:${n.objectId}:${n.metaData ?? ''}`;
}

const invoicesOf = (s: KbState) => s.invoices.filter((i) => (i.items ?? []).some((it) => it.subscriptionId === s.sub.subscriptionId));

/**
 * The end of a trial is one moment for the customer, though Kill Bill tells
 * it in three notifications within a second, in any order (phase change,
 * first invoice, its first payment attempt). Whichever is handled first sees
 * all three in Kill Bill's state, so it sends one `trial_ended` notice whose
 * status says how the payment went, and marks the invoices it covered as
 * told: their own notifications then send nothing (see eventNotice).
 */
async function trialEndNotice(t: Tx, s: KbState, d: Desired): Promise<boolean> {
  const subId = s.sub.subscriptionId!;
  for (const i of invoicesOf(s)) await t.none('INSERT INTO lifecycle_notices (key) VALUES ($1) ON CONFLICT DO NOTHING', [`told:${i.invoiceId}`]);
  await notice(t, `trial_ended:${subId}`, d, subId, 'trial_ended');
  return true; // told (now or by an earlier delivery): no fallback notice either
}

/** True when the trial-end notice already told this invoice (its creation and its first payment attempt). */
async function toldAtTrialEnd(t: Tx, invoiceId: string): Promise<boolean> {
  return Boolean(await t.oneOrNone('SELECT 1 FROM lifecycle_notices WHERE key = $1', [`told:${invoiceId}`]));
}

/** The mail-worthy notice a notification stands for, when Kill Bill's state confirms it. */
async function eventNotice(t: Tx, s: KbState, d: Desired, n: KillbillNotification, meta: Record<string, unknown>): Promise<boolean> {
  const subId = s.sub.subscriptionId!;
  const invoice = n.objectType === 'INVOICE' ? s.invoices.find((i) => i.invoiceId === n.objectId) : undefined;
  const invoiceOfSub = invoice && (invoice.items ?? []).some((it) => it.subscriptionId === subId);
  switch (n.eventType) {
    case 'SUBSCRIPTION_PHASE':
      if (n.objectId === subId && s.sub.phaseType === 'EVERGREEN') return notice(t, `trial_ended:${subId}`, d, subId, 'trial_ended');
      return false;
    case 'INVOICE_CREATION':
      if (invoiceOfSub && (await toldAtTrialEnd(t, invoice.invoiceId!))) return true;
      if (invoiceOfSub && (invoice.amount ?? 0) > 0) return notice(t, `invoice_created:${invoice.invoiceId}`, d, subId, 'invoice_created', undefined, invoice);
      return false;
    case 'INVOICE_PAYMENT_SUCCESS':
      if (invoiceOfSub && (await toldAtTrialEnd(t, invoice.invoiceId!))) return true;
      if (invoiceOfSub && (invoice.balance ?? 0) <= 0 && (invoice.amount ?? 0) > 0) return notice(t, `payment_succeeded:${invoice.invoiceId}`, d, subId, 'payment_succeeded', undefined, invoice);
      return false;
    case 'INVOICE_PAYMENT_FAILED':
      // The attempt on the invoice's own day was told at trial end; a retry on a later day is news.
      if (invoiceOfSub && String(meta.paymentDate ?? '').slice(0, 10) === String(invoice.invoiceDate ?? '').slice(0, 10) && (await toldAtTrialEnd(t, invoice.invoiceId!))) return true;
      if (invoiceOfSub && (invoice.balance ?? 0) > 0)
        return notice(t, `payment_failed:${invoice.invoiceId}:${meta.paymentId ?? meta.paymentDate ?? ''}`, d, subId, 'payment_failed', undefined, invoice);
      return false;
    case 'BLOCKING_STATE':
      if (meta.service === OVERDUE_SERVICE && meta.stateName === 'WARNING' && s.overdue?.name === 'WARNING') {
        return notice(t, `overdue_warning:${s.account.accountId}:${subId}:${meta.effectiveDate ?? ''}`, d, subId, 'overdue_warning', undefined, oldestUnpaid(s));
      }
      return false;
    case 'SUBSCRIPTION_CANCEL':
    case 'ENTITLEMENT_CANCEL':
      if (n.objectId === subId && s.sub.cancelledDate && (s.sub.state === 'ACTIVE' || s.sub.state === 'BLOCKED')) {
        return notice(t, `cancellation_scheduled:${subId}:${s.sub.cancelledDate}`, d, subId, 'cancellation_scheduled', s.sub.cancelledDate);
      }
      return false;
    default:
      return false;
  }
}
