/**
 * GET /api/billing: the caller's subscriptions, invoices, balance and payment
 * method. POST /api/billing {action}: `cancel` (end of term, or `immediate`),
 * `changePlan`, and `startSubscription` (called by the instances function
 * with the customer's own Authorization): 201 {subscriptionId} (200 when
 * already open), 409 trial_unavailable, or 409 create_failed for an
 * instance whose create was given up. Another customer's subscription id answers 404.
 * startSubscription opens nothing unless the id is an instance of the caller
 * still waiting for its subscription (billing/instance-check.ts): 404 or 409.
 */
import { z } from 'zod';
import { httpFunction, route } from '@saasodoo/platform/fn';
import { HttpError } from '@saasodoo/platform/errors';
import { requirePendingInstance } from '@saasodoo/platform/billing/instance-check';
import { billingSummary, cancelOwn, changeOwnPlan, startSubscription, stopBillingOutbox } from '@saasodoo/platform/billing/service';

const uuid = z.uuid('must be a UUID');
const body = z.discriminatedUnion('action', [
  z.object({ action: z.literal('cancel'), subscriptionId: uuid, immediate: z.boolean().default(false) }).strict(),
  z.object({ action: z.literal('changePlan'), subscriptionId: uuid, plan: z.string().min(1).max(100) }).strict(),
  z.object({ action: z.literal('startSubscription'), instanceId: uuid, plan: z.string().min(1).max(100), trial: z.boolean() }).strict(),
], { error: 'must be cancel, changePlan or startSubscription' });

export default httpFunction({
  name: 'billing',
  GET: route<{ customerId?: string }, undefined, 'customer'>({
    auth: 'customer',
    // ?customerId= is the operator console's view of one customer (admins only).
    query: z.object({ customerId: uuid.optional() }).strict(),
    handle: async ({ caller, query: q }) => {
      if (q.customerId && caller.role !== 'admin') throw HttpError.forbidden('Only operators see other customers');
      return { body: await billingSummary(q.customerId ?? caller.userId) };
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
      if (b.action === 'cancel') await cancelOwn(caller.userId, b.subscriptionId, b.immediate, caller.role === 'admin');
      else await changeOwnPlan(caller.userId, b.subscriptionId, b.plan);
      return { status: 202, body: { status: 'accepted' } };
    },
  }),
  shutdown: stopBillingOutbox,
});
