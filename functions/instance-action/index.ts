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
import { z } from 'zod';
import { db } from '@saasodoo/platform/db/index';
import { HttpError } from '@saasodoo/platform/errors';
import { httpFunction, route } from '@saasodoo/platform/fn';
import { applyAction, refuse } from '@saasodoo/platform/instances/actions';
import { resetOdooPassword } from '@saasodoo/platform/instances/admin-password';
import { cancelSubscriptionNow } from '@saasodoo/platform/instances/billing-client';
import type { Cause } from '@saasodoo/platform/instances/history';
import { BACKUP_ID_RE, findForCaller } from '@saasodoo/platform/instances/repository';
import { ACTIONS, allowedActions, type Action } from '@saasodoo/platform/instances/states';

const RESET = 'reset_odoo_password';

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
      const next = await applyAction(row.id, b.action as Action, caller, cause, b.backupId);
      return { status: 202, body: { id: next.id, status: next.status }, audit: { customerId: row.customer_id, instanceId: row.id } };
    },
  }),
  outbox: 'instance',
});
