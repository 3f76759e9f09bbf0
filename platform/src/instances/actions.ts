/**
 * Customer actions on an instance (README.md 2, the action table), applied as
 * one transaction: the status change, its history row and the command to
 * instance-ops (or provision, for an admin retry) commit together (outbox).
 * Moved out of functions/instance-action so the entry file reads schema,
 * authorize, act, emit, and the transitions live with the slice's other rules.
 */
import { randomUUID } from 'node:crypto';
import type { Caller } from '../auth/verify.ts';
import { HttpError } from '../errors.ts';
import { enqueue, transact } from '../outbox.ts';
import { transition, type Cause } from './history.ts';
import { isProvisionStep } from './provisioning.ts';
import { findForCaller, getBackup, insertBackup, type InstanceRow } from './repository.ts';
import { ACTION_STATUS, allowedActions, type Action } from './states.ts';

/**
 * The 409 for an action the status does not allow; it names the current
 * status so the portal can say why, rather than a bare conflict.
 */
export function refuse(row: InstanceRow, action: string): never {
  throw new HttpError(409, 'invalid_state', `Cannot ${action} an instance that is ${row.status}`, {
    action: `not allowed while ${row.status}`,
    status: row.status,
  });
}

/**
 * Locks the row, re-checks the action against its current status (it may
 * have changed since the caller's read), and applies it. Why in one
 * transaction: a status without its command (or the reverse) would leave
 * the instance stuck in a transient status.
 */
export async function applyAction(id: string, action: Action, caller: Caller, cause: Cause, backupId?: string): Promise<InstanceRow> {
  return transact('instance', async (t) => {
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
        await insertBackup(t, newBackup, cur.id, 'manual');
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
}
