/**
 * GET /api/billing: the caller's subscriptions, invoices, balance and payment
 * method. POST /api/billing {action}: `cancel` (end of term, or `immediate`),
 * `changePlan`, and `startSubscription` (called by the instances function
 * with the customer's own Authorization): 201 {subscriptionId} (200 when
 * already open), 409 trial_unavailable, or 409 create_failed for an
 * instance whose create was given up. Another customer's subscription id answers 404.
 * startSubscription opens nothing unless the id is an instance of the caller
 * still waiting for its subscription (billing/instance-check.ts): 404 or 409.
 * `addCard` answers 201 {url} of Stripe's hosted card page; `cardAdded`
 * {sessionId} (on the way back) puts the saved card on file and answers the
 * card and the invoices still unpaid after Kill Bill charged it (billing/cards.ts).
 * `payNow` charges the unpaid invoices to the card on file: 200 {paid, declined}.
 * `removeCard` takes the card off the account: 204, or 409 when there is none.
 * `startStagingAddOn` {instanceId, stagingId} (called by the staging function
 * with the caller's Authorization) opens the staging add-on in that instance's
 * bundle: 201 {subscriptionId} (200 when already open), 400 naming `plan` when
 * the instance's plan offers no staging.
 */
import { z } from 'zod';
import { httpFunction, route } from '@saasodoo/platform/fn';
import { HttpError } from '@saasodoo/platform/errors';
import { requirePendingInstance } from '@saasodoo/platform/billing/instance-check';
import { finishCardSetup, removeCard, startCardSetup } from '@saasodoo/platform/billing/cards';
import { config } from '@saasodoo/platform/config';
import { billingSummary, cancelOwn, changeOwnPlan, ownInvoice, payNow, startStagingAddOn, startSubscription } from '@saasodoo/platform/billing/service';

const uuid = z.uuid('must be a UUID');
const body = z.discriminatedUnion(
  'action',
  [
    z.object({ action: z.literal('cancel'), subscriptionId: uuid, immediate: z.boolean().default(false) }).strict(),
    z.object({ action: z.literal('changePlan'), subscriptionId: uuid, plan: z.string().min(1).max(100) }).strict(),
    z.object({ action: z.literal('startSubscription'), instanceId: uuid, plan: z.string().min(1).max(100), trial: z.boolean() }).strict(),
    z.object({ action: z.literal('startStagingAddOn'), instanceId: uuid, stagingId: uuid }).strict(),
    z.object({ action: z.literal('addCard') }).strict(),
    z.object({ action: z.literal('payNow') }).strict(),
    z.object({ action: z.literal('removeCard') }).strict(),
    z.object({ action: z.literal('cardAdded'), sessionId: z.string().regex(/^cs_(test|live)_[A-Za-z0-9]{1,200}$/, 'must be a Stripe Checkout session id') }).strict(),
  ],
  { error: 'must be cancel, changePlan, startSubscription, startStagingAddOn, addCard, cardAdded, payNow or removeCard' },
);

export default httpFunction({
  name: 'billing',
  GET: route<{ invoice?: string; customerId?: string }, undefined, 'customer'>({
    auth: 'customer',
    // ?invoice=<id>: that invoice with its lines (what each charges for, the period, the amount).
    // ?customerId= is the operator console's view of one customer (admins only).
    query: z.object({ invoice: uuid.optional(), customerId: uuid.optional() }).strict(),
    handle: async ({ caller, query: q }) => {
      if (q.customerId && caller.role !== 'admin') throw HttpError.forbidden('Only operators see other customers');
      return { body: q.invoice ? await ownInvoice(caller.userId, q.invoice) : await billingSummary(q.customerId ?? caller.userId) };
    },
  }),
  POST: route<Record<string, never>, z.infer<typeof body>, 'customer'>({
    auth: 'customer',
    body,
    handle: async ({ caller, body: b, headers }) => {
      if (b.action === 'startSubscription') {
        await requirePendingInstance(String(headers.authorization ?? ''), caller.userId, b);
        const r = await startSubscription({ customerId: caller.userId }, b);
        return { status: r.created ? 201 : 200, body: { subscriptionId: r.subscriptionId } };
      }
      if (b.action === 'startStagingAddOn') {
        const r = await startStagingAddOn(caller.userId, b, caller.role === 'admin');
        return { status: r.created ? 201 : 200, body: { subscriptionId: r.subscriptionId } };
      }
      if (b.action === 'addCard') {
        // Stripe's hosted page sends the customer back to the portal's billing page (it fills in the session id).
        const portal = config().PUBLIC_URL.replace(/\/$/, '');
        const r = await startCardSetup({ customerId: caller.userId }, { success: `${portal}/billing/card?session={CHECKOUT_SESSION_ID}`, cancel: `${portal}/billing?card=cancelled` });
        return { status: 201, body: r };
      }
      if (b.action === 'payNow') return { status: 200, body: await payNow(caller.userId) };
      if (b.action === 'removeCard') {
        await removeCard(caller.userId);
        return { status: 204 };
      }
      if (b.action === 'cardAdded') return { status: 200, body: await finishCardSetup(caller.userId, b.sessionId) };
      if (b.action === 'cancel') await cancelOwn(caller.userId, b.subscriptionId, b.immediate, caller.role === 'admin');
      else await changeOwnPlan(caller.userId, b.subscriptionId, b.plan);
      return { status: 202, body: { status: 'accepted' } };
    },
  }),
});
