/**
 * POST /api/instance-action {id, action, backupId?}: platform/src/instances/README.md 2, the action table.
 * The status change, its history row and the command to instance-ops (or
 * provision, for an admin retry) are written in one transaction (outbox);
 * an action the status does not allow is a 409 naming the current status.
 * `delete` first cancels the subscription through billing with the
 * entitlement ending now (billing down → 503, nothing changed); Kill Bill's
 * CANCEL EFFECTIVE then makes lifecycle send `instance.terminate`.
 *
 * `reset_odoo_password` (the owner only, running or stopped): a new one-time
 * password for the customer's Odoo user, set in Odoo at once (odoo/contract.ts
 * setPasswordStatements) and kept sealed for its single display; no status change.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { db } from '@saasodoo/platform/db/index';
import { HttpError } from '@saasodoo/platform/errors';
import { httpFunction, route, type Caller } from '@saasodoo/platform/fn';
import { enqueue, transact } from '@saasodoo/platform/outbox';
import { cancelSubscriptionNow } from '@saasodoo/platform/instances/billing-client';
import { transition, type Cause } from '@saasodoo/platform/instances/history';
import { isProvisionStep } from '@saasodoo/platform/instances/provisioning';
import { BACKUP_ID_RE, findForCaller, getBackup, type InstanceRow } from '@saasodoo/platform/instances/repository';
import { ACTION_STATUS, ACTIONS, allowedActions, type Action } from '@saasodoo/platform/instances/states';
import { withInstanceLock } from '@saasodoo/platform/instances/locks';
import { setOdooPassword } from '@saasodoo/platform/instances/odoo';
import { specOf } from '@saasodoo/platform/instances/runtime-spec';
import { newOdooPassword } from '@saasodoo/platform/instances/secrets';
import { getInstance, updateInstance } from '@saasodoo/platform/instances/repository';
import { odooPasswordHash } from '@saasodoo/platform/odoo/contract';

const RESET = 'reset_odoo_password';
/** Where Odoo's database is there to take a new password. */
const RESETTABLE = new Set(['running', 'stopped']);

const body = z
  .object({
    id: z.uuid(),
    action: z.enum([...ACTIONS, RESET], { message: `one of ${[...ACTIONS, RESET].join(', ')}` }),
    backupId: z.string().regex(BACKUP_ID_RE, 'not a backup id').optional(),
  })
  .strict()
  .superRefine((b, ctx) => {
    if (b.action === 'restore' && !b.backupId) ctx.addIssue({ code: 'custom', path: ['backupId'], message: 'required for restore' });
  });

function refuse(row: InstanceRow, action: Action): never {
  throw new HttpError(409, 'invalid_state', `Cannot ${action} an instance that is ${row.status}`, {
    action: `not allowed while ${row.status}`,
    status: row.status,
  });
}

/** Locks the row, re-checks the action against its current status, and applies it. */
async function apply(id: string, action: Action, caller: Caller, cause: Cause, backupId?: string): Promise<InstanceRow> {
  const row = await transact('instance', async (t) => {
    const cur = await findForCaller(t, id, caller, true);
    if (!allowedActions(cur.status, caller.role === 'admin').includes(action)) refuse(cur, action);
    const ids = { instanceId: cur.id, customerId: cur.customer_id };
    const o = { subject: cur.id, traceparent: cause.traceparent };
    switch (action) {
      case 'delete': {
        const next = await transition(t, cur, 'terminating', cause);
        // Without a subscription there is no CANCEL EFFECTIVE to wait for, and a staging copy's add-on
        // drives no lifecycle decision (it follows its base): terminate directly.
        if (!cur.subscription_id || cur.staging_of) await enqueue(t, 'instance.terminate', { ...ids, reason: 'deleted by the customer' }, o);
        return next;
      }
      case 'retry': {
        const fromStep = isProvisionStep(cur.error_step) ? cur.error_step : 'claim';
        const next = await transition(t, cur, 'provisioning', cause, { previous_status: null });
        await enqueue(t, 'instance.provision', { ...ids, fromStep }, o);
        return next;
      }
      case 'backup': {
        const newBackup = randomUUID();
        await t.none(`INSERT INTO backups (id, instance_id, kind, status) VALUES ($1, $2, 'manual', 'pending')`, [newBackup, cur.id]);
        const next = await transition(t, cur, ACTION_STATUS.backup, cause);
        await enqueue(t, 'instance.backup', { ...ids, backupId: newBackup, kind: 'manual' }, o);
        return next;
      }
      case 'restore': {
        const b = await getBackup(t, cur.id, backupId!);
        if (!b) throw HttpError.notFound('No such backup');
        if (b.status !== 'completed') throw HttpError.conflict(`That backup is ${b.status}`, { backupId: `backup is ${b.status}` });
        const next = await transition(t, cur, ACTION_STATUS.restore, cause);
        await enqueue(t, 'instance.restore', { ...ids, backupId: b.id }, o);
        return next;
      }
      default: {
        const next = await transition(t, cur, ACTION_STATUS[action], cause);
        await enqueue(t, `instance.${action as 'start' | 'stop' | 'restart'}`, ids, o);
        return next;
      }
    }
  });
  return row;
}

/**
 * A new Odoo password for the owner: hashed as Odoo hashes it, written into
 * Odoo's database under the instance lock (no provisioning or restore runs
 * beside it), then sealed for the one-time display. Odoo ties its session
 * tokens to the password hash, so sessions opened with the old one end.
 */
async function resetOdooPassword(id: string): Promise<InstanceRow> {
  return withInstanceLock(id, async () => {
    const cur = (await getInstance(db('instance'), id))!;
    if (!RESETTABLE.has(cur.status) || !cur.db_password_sealed) {
      throw new HttpError(409, 'invalid_state', `Cannot reset the Odoo password of an instance that is ${cur.status}`, {
        action: `not allowed while ${cur.status}`,
        status: cur.status,
      });
    }
    const fresh = newOdooPassword();
    const hash = await odooPasswordHash(fresh.plain);
    // Odoo's database unreachable: nothing changed, the owner may try again.
    await setOdooPassword(specOf(cur).database, hash).catch(() => {
      throw HttpError.unavailable("The instance's database");
    });
    return updateInstance(db('instance'), id, { admin_password_sealed: fresh.sealed, admin_password_shown: false, admin_password_hash: hash });
  });
}

export default httpFunction({
  name: 'instance-action',
  POST: route<undefined, z.infer<typeof body>, 'customer'>({
    auth: 'customer',
    body,
    async handle({ body: b, caller, headers, requestId, traceparent }) {
      if (b.action === 'retry' && caller.role !== 'admin') throw HttpError.forbidden('Only admins retry provisioning');
      const row = await findForCaller(db('instance'), b.id, caller);
      if (b.action === RESET) {
        // The password is the customer's: an admin may not set (and then be shown) it.
        if (row.customer_id !== caller.userId) throw HttpError.forbidden('Only the owner sets a new Odoo password');
        const next = await resetOdooPassword(row.id);
        return { status: 200, body: { id: next.id, status: next.status }, audit: { customerId: row.customer_id, instanceId: row.id } };
      }
      if (!allowedActions(row.status, caller.role === 'admin').includes(b.action)) refuse(row, b.action);
      const cause: Cause = {
        eventId: requestId,
        eventType: 'http:instance-action',
        traceparent,
        actor: `${caller.role === 'admin' && row.customer_id !== caller.userId ? 'admin' : 'customer'}:${caller.userId}`,
        reason: b.action === 'delete' ? 'deleted: subscription cancelled, entitlement ends now' : `${b.action} requested`,
      };
      if (b.action === 'delete' && row.subscription_id) {
        await cancelSubscriptionNow(String(headers.authorization ?? ''), row.subscription_id);
      }
      const next = await apply(row.id, b.action as Action, caller, cause, b.backupId);
      return { status: 202, body: { id: next.id, status: next.status }, audit: { customerId: row.customer_id, instanceId: row.id } };
    },
  }),
  outbox: 'instance',
});
