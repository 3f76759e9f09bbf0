/**
 * Staging copies (platform/src/instances/README.md 6): an instance of its
 * own (database, filestore, address `<sub>-staging`), restored from a fresh
 * backup of the original and neutralised the way Odoo does it, billed as the
 * Kill Bill add-on `staging-monthly` in the original's bundle, and ended with
 * the original. The copy is provisioned by `provision` like any instance; only
 * its data step differs (staging-copy.ts copyOriginal instead of Odoo's
 * init) and its configure step (Odoo's own copy reset and its address,
 * instead of the customer's login: the copy keeps the original's users, as
 * Odoo.sh does).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { db, type Tx } from '../db/index.ts';
import { HttpError } from '../errors.ts';
import type { Caller } from '../fn.ts';
import { enqueue, transact } from '../outbox.ts';
import { findPlan } from '../plans.ts';
import { startStagingAddOn } from './billing-client.ts';
import { recordHistory, transition, type Cause } from './history.ts';
import { getInstance, updateInstance, type InstanceRow } from './repository.ts';

/** Where an original must be for a copy to be taken from it (a fresh backup needs its database there and quiet). */
export const COPYABLE: ReadonlySet<string> = new Set(['running', 'stopped']);
/** Where a copy may be refreshed from. */
const REFRESHABLE = new Set(['running', 'stopped', 'error']);
const SUFFIX = '-staging';

/** `<sub>-staging`, cut to the 50 characters a subdomain may have; `salt` makes another when that one is taken. */
function stagingSubdomain(original: string, salt?: string): string {
  const tail = salt ? `${SUFFIX}-${salt}` : SUFFIX;
  return `${original.slice(0, 50 - tail.length).replace(/-+$/, '')}${tail}`;
}

/** The live staging copy of an instance, if any. */
async function stagingCopyOf(q: Tx | ReturnType<typeof db>, originalId: string): Promise<InstanceRow | undefined> {
  return (await q.oneOrNone<InstanceRow>(`SELECT * FROM instances WHERE staging_of = $1 AND status <> 'terminated'`, [originalId])) ?? undefined;
}

type Ctx = { requestId: string; traceparent?: string };

/**
 * POST /api/staging {action: create}: checks the original may have a copy
 * (not itself a copy, a plan with staging, running or stopped, no live
 * copy), writes the copy's row, opens its add-on through billing (the row
 * goes again when billing refuses or does not answer), then hands it to
 * `provision`, in one transaction with its history.
 */
export async function createStagingCopy(original: InstanceRow, caller: Caller, authorization: string, ctx: Ctx): Promise<InstanceRow> {
  if (original.staging_of) throw HttpError.badRequest('A staging copy has no staging copy of its own', { id: 'is a staging copy: copy its original instead' });
  const plan = findPlan(original.plan, true);
  if (!plan?.staging) throw HttpError.badRequest('This plan has no staging copies', { plan: `the ${plan?.name ?? original.plan} plan has no staging copies` });
  if (!COPYABLE.has(original.status)) {
    throw new HttpError(409, 'invalid_state', `Cannot copy an instance that is ${original.status}`, { status: `must be running or stopped, is ${original.status}` });
  }
  if (await stagingCopyOf(db('instance'), original.id)) throw HttpError.conflict('This instance already has a staging copy', { id: 'already has a staging copy' });
  const id = randomUUID();
  const cause: Cause = {
    eventId: ctx.requestId,
    eventType: 'http:staging',
    actor: `${caller.role === 'admin' && caller.userId !== original.customer_id ? 'admin' : 'customer'}:${caller.userId}`,
    reason: 'staging copy requested',
    traceparent: ctx.traceparent,
  };
  let row: InstanceRow | undefined;
  for (const salt of [undefined, randomBytes(2).toString('hex')]) {
    try {
      row = await transact('instance', async (t) => {
        const r = await t.one<InstanceRow>(
          `INSERT INTO instances (id, customer_id, name, subdomain, plan, odoo_version, demo_data, trial, status, billing_status,
             resources, odoo_login, odoo_user_name, staging_of)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending_payment', $9, $10, $11, $12, $13) RETURNING *`,
          [
            id,
            original.customer_id,
            `${original.name.slice(0, 90)} (staging)`,
            stagingSubdomain(original.subdomain, salt),
            original.plan,
            original.odoo_version,
            original.demo_data,
            original.trial,
            original.billing_status,
            JSON.stringify(original.resources),
            original.odoo_login,
            original.odoo_user_name,
            original.id,
          ],
        );
        await recordHistory(t, r.id, null, r.status, cause);
        return r;
      });
      break;
    } catch (err) {
      const e = err as { code?: string; constraint?: string };
      if (e.code !== '23505') throw err;
      if (e.constraint === 'instances_staging_live') throw HttpError.conflict('This instance already has a staging copy', { id: 'already has a staging copy' });
    }
  }
  if (!row) throw HttpError.conflict('No free address for the staging copy', { subdomain: 'taken' });
  let subscriptionId: string;
  try {
    subscriptionId = await startStagingAddOn(authorization, { instanceId: original.id, stagingId: id });
  } catch (err) {
    // A refusal opened nothing. No answer (503) may have opened the add-on all the same: as for a failed
    // create, `instance.create_failed` has billing void whatever Kill Bill holds for the copy's id.
    const unsure = !(err instanceof HttpError) || err.status >= 500;
    await transact('instance', async (t) => {
      await t.none('DELETE FROM instances WHERE id = $1', [id]);
      if (unsure) await enqueue(t, 'instance.create_failed', { instanceId: id, customerId: row!.customer_id }, { subject: id, traceparent: ctx.traceparent });
    });
    throw err;
  }
  return transact('instance', async (t) => {
    const next = await updateInstance(t, id, { subscription_id: subscriptionId });
    await enqueue(t, 'instance.status_changed', { instanceId: id, customerId: next.customer_id, from: null, to: 'pending_payment' }, { subject: id, traceparent: ctx.traceparent });
    await enqueue(t, 'instance.provision', { instanceId: id, customerId: next.customer_id }, { subject: id, traceparent: ctx.traceparent });
    return next;
  });
}

/**
 * POST /api/staging {action: refresh}: the copy's data replaced by a new
 * neutralised copy of the original. The copy goes to `provisioning` and
 * provisioning runs again from its data step (fresh backup, restore,
 * neutralise, address, start), in one transaction with the command.
 */
export async function refreshStagingCopy(copy: InstanceRow, caller: Caller, ctx: Ctx): Promise<InstanceRow> {
  if (!copy.staging_of) throw HttpError.badRequest('Only a staging copy is refreshed from production', { id: 'is not a staging copy' });
  const original = await getInstance(db('instance'), copy.staging_of);
  if (!original || !COPYABLE.has(original.status)) {
    throw new HttpError(409, 'invalid_state', 'The original instance must be running or stopped to copy it', { status: `the original is ${original?.status ?? 'gone'}` });
  }
  const cause: Cause = {
    eventId: ctx.requestId,
    eventType: 'http:staging',
    actor: `${caller.role === 'admin' && caller.userId !== copy.customer_id ? 'admin' : 'customer'}:${caller.userId}`,
    reason: 'refresh from production requested',
    traceparent: ctx.traceparent,
  };
  return transact('instance', async (t) => {
    const cur = (await getInstance(t, copy.id, true))!;
    if (!REFRESHABLE.has(cur.status)) throw new HttpError(409, 'invalid_state', `Cannot refresh a copy that is ${cur.status}`, { status: `must be running, stopped or in error, is ${cur.status}` });
    const next = await transition(t, cur, 'provisioning', cause, { error_step: null, error_reason: null, previous_status: null });
    await enqueue(t, 'instance.provision', { instanceId: cur.id, customerId: cur.customer_id, fromStep: 'odoo_init' }, { subject: cur.id, traceparent: ctx.traceparent });
    return next;
  });
}

/**
 * Billing's decisions on the original reach its copy (its add-on shares the
 * base's account, so Kill Bill blocks both): `instance.suspend` or
 * `instance.resume` for each live copy, in the original's transaction.
 */
export async function followOriginal(t: Tx, original: InstanceRow, type: 'instance.suspend' | 'instance.resume', reason: string, traceparent?: string): Promise<void> {
  const copies = await t.manyOrNone<InstanceRow>(`SELECT * FROM instances WHERE staging_of = $1 AND status NOT IN ('terminated', 'terminating')`, [original.id]);
  for (const c of copies) {
    const data = { instanceId: c.id, customerId: c.customer_id };
    if (type === 'instance.suspend') await enqueue(t, type, { ...data, reason: `its original instance was suspended: ${reason}`.slice(0, 500) }, { subject: c.id, traceparent });
    else await enqueue(t, type, data, { subject: c.id, traceparent });
  }
}

/** The original's termination ends its copy (its add-on was cancelled with the base by Kill Bill): `instance.terminate` for it. */
export async function terminateCopiesOf(t: Tx, original: InstanceRow, traceparent?: string): Promise<void> {
  const copies = await t.manyOrNone<InstanceRow>(`SELECT * FROM instances WHERE staging_of = $1 AND status NOT IN ('terminated', 'terminating')`, [original.id]);
  for (const c of copies) {
    await enqueue(t, 'instance.terminate', { instanceId: c.id, customerId: c.customer_id, reason: 'its original instance was terminated' }, { subject: c.id, traceparent });
  }
}
