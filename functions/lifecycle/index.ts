/**
 * lifecycle (CloudEvents): Kill Bill notifications → instance commands and
 * billing.status_changed (platform/src/billing/README.md 5), decided on state re-read from Kill Bill;
 * `user.registered` / `billing.account.ensure` → the customer's Kill Bill
 * account; `instance.create_failed` → no subscription stays open for that
 * instance (and its notifications drive nothing); `schedule.daily` →
 * trial-ending warnings 7, 3 and 1 days ahead.
 * Idempotent per event id (processed_events) and per effect (reconcile.ts).
 */
import { KILLBILL_PREFIX, type KillbillNotification } from '@saasodoo/events';
import { db } from '@saasodoo/platform/db/index';
import { eventFunction, type ReceivedEvent } from '@saasodoo/platform/fn';
import { HttpError } from '@saasodoo/platform/errors';
import { firstDelivery, handledBefore } from '@saasodoo/platform/idempotency';
import { enqueue, transact } from '@saasodoo/platform/outbox';
import { killbill, type Subscription } from '@saasodoo/platform/billing/killbill';
import { failedCreates, settleFailedCreate, voidSubscriptions } from '@saasodoo/platform/billing/service';
import { reconcile, type KbState } from './reconcile.ts';
import { accountVersion, bumpAccountVersion, markTrialWarned, trialsEnding } from './store.ts';

const CONSUMER = 'lifecycle';

/** The Kill Bill event types lifecycle subscribes to (events/triggers.yaml has one row each). */
export const KILLBILL_TYPES = [
  'SUBSCRIPTION_CREATION',
  'SUBSCRIPTION_PHASE',
  'SUBSCRIPTION_CHANGE',
  'SUBSCRIPTION_CANCEL',
  'SUBSCRIPTION_UNCANCEL',
  'ENTITLEMENT_CANCEL',
  'INVOICE_CREATION',
  'INVOICE_PAYMENT_SUCCESS',
  'INVOICE_PAYMENT_FAILED',
  'BLOCKING_STATE',
  'OVERDUE_CHANGE',
];

/** Re-reads from Kill Bill everything a decision needs, for the subscriptions a notification concerns. */
async function readStates(n: KillbillNotification): Promise<KbState[]> {
  const kb = killbill();
  let subs: Subscription[] = [];
  let accountId = n.accountId;
  if (n.objectType === 'SUBSCRIPTION' && n.objectId) {
    const sub = await kb.subscription(n.objectId);
    if (!sub) return []; // forged or unknown: nothing to act on
    subs = [sub];
    accountId = sub.accountId!;
  }
  if (!accountId) return [];
  const account = await kb.account(accountId, true);
  if (!account?.externalKey) return [];
  if (!subs.length) subs = (await kb.bundlesOfAccount(accountId)).flatMap((b) => (b.subscriptions ?? []).map((s) => ({ ...s, bundleExternalKey: s.bundleExternalKey ?? b.externalKey })));
  if (!subs.length) return [];
  const [invoices, payments, overdue] = await Promise.all([kb.invoices(accountId, true), kb.payments(accountId), kb.overdue(accountId)]);
  return (
    subs
      // An add-on (a staging copy) follows its base: the instance service ends the copy with the original.
      .filter((s) => s.productCategory !== 'ADD_ON')
      .filter((s) => /^[0-9a-f-]{36}$/i.test(s.bundleExternalKey ?? s.externalKey ?? '') && /^[0-9a-f-]{36}$/i.test(account.externalKey!))
      .map((sub) => ({ account, sub, invoices, payments, overdue }))
  );
}

const instanceOf = (s: KbState) => s.sub.bundleExternalKey ?? s.sub.externalKey ?? '';

class StaleRead extends Error {}

/**
 * Decides on Kill Bill's state read after every earlier decision on the
 * account committed: the read happens outside the transaction (no connection
 * held while Kill Bill answers), and the commit checks the account's counter
 * did not move meanwhile, else reads again. Without this, a decision taken on
 * a state read before a newer one committed undoes it (a suspend sent after
 * the resume of a customer who just paid).
 */
async function onKillbill(ev: ReceivedEvent<KillbillNotification>): Promise<void> {
  // A redelivery (Kill Bill's retries, the broker's) needs no Kill Bill reads.
  if (await handledBefore(db('billing'), ev.id, CONSUMER)) return;
  const key = ev.data.accountId ?? ev.data.objectId ?? '';
  for (let attempt = 1; ; attempt++) {
    const version = await accountVersion(key);
    const all = await readStates(ev.data);
    // A failed create's subscription (a start that slipped past settleFailedCreate included) is voided, never acted on.
    const failed = await failedCreates(all.map(instanceOf));
    const ofFailedCreate = (s: KbState) => failed.get(instanceOf(s)) === s.account.externalKey;
    await voidSubscriptions(all.filter(ofFailedCreate).map((s) => s.sub));
    try {
      await transact('billing', async (t) => {
        if ((await bumpAccountVersion(t, key)) !== version + 1) throw new StaleRead();
        if (!(await firstDelivery(t, ev.id, CONSUMER))) return;
        for (const s of all.filter((x) => !ofFailedCreate(x))) await reconcile(t, s, ev.data);
      });
      break;
    } catch (err) {
      if (!(err instanceof StaleRead)) throw err;
      if (attempt >= 5) throw HttpError.unavailable('A consistent view of the Kill Bill account', 1);
    }
  }
}

async function ensureAccount(ev: ReceivedEvent<{ customerId: string; email: string; firstName?: string; lastName?: string }>): Promise<void> {
  const name = [ev.data.firstName, ev.data.lastName].filter(Boolean).join(' ') || undefined;
  await killbill().ensureAccount({ customerId: ev.data.customerId, email: ev.data.email, name });
}

const DAY = 86_400_000;

/** Trial-ending warnings: once per trial and day (7, 3, 1 days before the end), only while Kill Bill still shows the trial. */
export async function trialWarnings(): Promise<number> {
  const kb = killbill();
  const now = await kb.now();
  const trials = await trialsEnding(now, new Date(now.getTime() + 7 * DAY));
  let sent = 0;
  for (const tr of trials) {
    const daysLeft = Math.ceil((tr.ends_at.getTime() - now.getTime()) / DAY);
    if (daysLeft !== 7 && daysLeft !== 3 && daysLeft !== 1) continue;
    const sub = await kb.subscription(tr.subscription_id);
    if (!sub || sub.phaseType !== 'TRIAL' || sub.state !== 'ACTIVE') continue;
    await transact('billing', async (t) => {
      if (!(await markTrialWarned(t, tr.subscription_id, daysLeft))) return;
      await enqueue(
        t,
        'billing.trial_ending',
        { customerId: tr.customer_id, subscriptionId: tr.subscription_id, daysLeft: daysLeft as 7 | 3 | 1, trialEndsAt: tr.ends_at.toISOString() },
        { subject: tr.customer_id },
      );
      sent++;
    });
  }
  return sent;
}

export default eventFunction({
  name: 'lifecycle',
  on: {
    ...Object.fromEntries(KILLBILL_TYPES.map((t) => [`${KILLBILL_PREFIX}${t.toLowerCase()}`, onKillbill])),
    'com.saasodoo.user.registered': ensureAccount,
    'com.saasodoo.billing.account.ensure': ensureAccount,
    'com.saasodoo.instance.create_failed': (ev: ReceivedEvent<{ instanceId: string; customerId: string }>) => settleFailedCreate(ev.data.customerId, ev.data.instanceId),
    'com.saasodoo.schedule.daily': async () => {
      await trialWarnings();
    },
  },
  outbox: 'billing',
});
