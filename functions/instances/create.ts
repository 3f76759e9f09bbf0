/**
 * Creating an instance (platform/src/instances/README.md 3; functions/README.md, HTTP API): validate, check the trial, write the
 * row (the unique subdomain index settles races: one 202, one 409), then
 * open the Kill Bill subscription through billing. If billing refuses or is
 * down, the row is removed again so the subdomain is free and nothing was
 * announced. Resources come from the plan, whatever the client sent.
 *
 * Without a clear answer from billing (no answer, a timeout, a 5xx) Kill
 * Bill may have opened the subscription anyway: the row goes and, in the
 * same transaction, `instance.create_failed` is queued; lifecycle then voids
 * any subscription of that id and billing refuses to open one later. So the
 * customer, who got a 503, is billed for nothing, and their retry is a new
 * create with its own, single subscription. A trial retry arriving before
 * lifecycle has settled the failed one is a 503 with Retry-After, not a 409
 * (noTrial): the trial comes back within seconds.
 *
 * Initial status: `pending_payment` for every new instance (trial or not):
 * nothing runs until billing says so. `lifecycle` sends `instance.provision`
 * on SUBSCRIPTION_CREATION in TRIAL (billingStatus `trial`) or on the first
 * payment (billingStatus `payment_required` until then); a pending instance
 * can be deleted.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { text } from '@saasodoo/events';
import { config } from '@saasodoo/platform/config';
import { HttpError } from '@saasodoo/platform/errors';
import type { Caller } from '@saasodoo/platform/fn';
import { db } from '@saasodoo/platform/db/index';
import { enqueue, transact } from '@saasodoo/platform/outbox';
import { findPlan, odooVersions } from '@saasodoo/platform/plans';
import { startSubscription, trialEligible } from '@saasodoo/platform/instances/billing-client';
import { recordHistory } from '@saasodoo/platform/instances/history';
import { subdomainProblem } from '@saasodoo/platform/instances/names';
import type { InstanceRow } from '@saasodoo/platform/instances/repository';
import { customerProfile } from './account-client.ts';
import { newOdooPassword } from '@saasodoo/platform/instances/secrets';

export const createBody = z
  .object({
    name: text().trim().min(1, 'required').max(100, 'at most 100 characters'),
    subdomain: z
      .string()
      .max(100)
      .superRefine((s, ctx) => {
        const p = subdomainProblem(s);
        if (p) ctx.addIssue({ code: 'custom', message: p });
      }),
    plan: z.string().min(1).max(100),
    // The ODOO_VERSIONS setting, read when a request is checked (the plans API lists the same).
    odooVersion: z
      .string()
      .max(10)
      .superRefine((v, ctx) => {
        if (!odooVersions().includes(v)) ctx.addIssue({ code: 'custom', message: `one of ${odooVersions().join(', ')}` });
      }),
    demoData: z.boolean().default(false),
    trial: z.boolean().default(false),
    /** Accepted and ignored: resources come from the plan. */
    resources: z.unknown().optional(),
  })
  .strict();

type Ctx = { requestId: string; traceparent?: string };

export async function createInstance(body: z.infer<typeof createBody>, caller: Caller, authorization: string, ctx: Ctx) {
  const plan = findPlan(body.plan, config().TEST_PLANS);
  if (!plan) throw HttpError.badRequest('Unknown plan', { plan: 'not a plan on sale' });
  if (body.trial && !plan.trial) throw HttpError.badRequest('This plan has no trial', { trial: 'the plan has no trial' });
  if (body.trial && !(await trialEligible(authorization))) throw await noTrial(caller.userId);
  // The customer's email becomes their Odoo login (odoo_configure writes it into Odoo).
  const profile = await customerProfile(authorization);
  const id = randomUUID();
  const admin = newOdooPassword();
  const cause = { eventId: ctx.requestId, eventType: 'http:instances', actor: `customer:${caller.userId}`, reason: 'created', traceparent: ctx.traceparent };
  try {
    await transact('instance', async (t) => {
      const row = await t.one<InstanceRow>(
        `INSERT INTO instances (id, customer_id, name, subdomain, plan, odoo_version, demo_data, trial, status, billing_status,
           resources, admin_password_sealed, odoo_login, odoo_user_name)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending_payment', $9, $10, $11, $12, $13) RETURNING *`,
        [
          id,
          caller.userId,
          body.name,
          body.subdomain,
          plan.id,
          body.odooVersion,
          body.demoData,
          body.trial,
          body.trial ? 'trial' : 'payment_required',
          JSON.stringify(plan.resources),
          admin.sealed,
          profile.email,
          profile.name,
        ],
      );
      await recordHistory(t, row.id, null, row.status, cause);
    });
  } catch (err) {
    if ((err as { code?: string }).code === '23505') throw HttpError.conflict('This subdomain is taken', { subdomain: 'is taken' });
    throw err;
  }
  let started;
  try {
    started = await startSubscription(authorization, { instanceId: id, plan: plan.id, trial: body.trial });
  } catch (err) {
    await forget(id, { customerId: caller.userId, traceparent: ctx.traceparent });
    throw err;
  }
  if (!started.ok) {
    await forget(id);
    if (started.code === 'trial_unavailable') throw await noTrial(caller.userId, id);
    // A paid plan without a trial needs a card on file first (billing's rule); the message points at "Add card".
    if (started.code === 'card_required') throw new HttpError(402, 'card_required', started.message, { card: 'no card on file' });
    throw HttpError.unavailable('Billing');
  }
  await transact('instance', async (t) => {
    await t.none('UPDATE instances SET subscription_id = $2, updated_at = now() WHERE id = $1', [id, started.subscriptionId]);
    await enqueue(t, 'instance.status_changed', { instanceId: id, customerId: caller.userId, from: null, to: 'pending_payment' }, { subject: id, traceparent: ctx.traceparent });
    await enqueue(
      t,
      'instance.requested',
      {
        instanceId: id,
        customerId: caller.userId,
        plan: plan.id,
        trial: body.trial,
        subdomain: body.subdomain,
        name: body.name,
      },
      { subject: id, traceparent: ctx.traceparent },
    );
  });
  return { status: 202, body: { id, status: 'pending_payment' }, audit: { instanceId: id } };
}

/**
 * The answer to a trial billing will not give. Rows are kept for good (a
 * terminated instance included; only a failed create's row is removed), so
 * when none of the customer's instances, other than `creating`, had a trial or
 * is still live, nothing the customer ever had holds the trial: a create of
 * theirs that failed half-way does, until lifecycle settles it
 * (`instance.create_failed`, seconds). That is a 503 with Retry-After, so the
 * retry gets the trial; it never gives a trial back itself (the one-trial
 * fence stays lifecycle's settlement and billing's). Otherwise 409.
 */
async function noTrial(customerId: string, creating?: string): Promise<HttpError> {
  const holder = await db('instance').oneOrNone(`SELECT 1 FROM instances WHERE customer_id = $1 AND id IS DISTINCT FROM $2::uuid AND (trial OR status <> 'terminated') LIMIT 1`, [
    customerId,
    creating ?? null,
  ]);
  if (holder) return new HttpError(409, 'trial_unavailable', 'No trial is available for this account', { trial: 'not eligible' });
  return new HttpError(
    503,
    'unavailable',
    'Your previous attempt to create an instance is still being undone, try again in a few seconds',
    { trial: 'held by your previous attempt' },
    {
      'retry-after': '5',
    },
  );
}

/**
 * Removes a row whose subscription was not opened (its history goes with it;
 * no event was sent yet). `unsure`: billing gave no clear answer, so the
 * subscription may exist: `instance.create_failed` leaves with the delete.
 */
async function forget(id: string, unsure?: { customerId: string; traceparent?: string }): Promise<void> {
  await transact('instance', async (t) => {
    await t.none('DELETE FROM instances WHERE id = $1', [id]);
    if (unsure) await enqueue(t, 'instance.create_failed', { instanceId: id, customerId: unsure.customerId }, { subject: id, traceparent: unsure.traceparent });
  });
}
