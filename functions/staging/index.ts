/**
 * POST /api/staging {action, id}: staging copies (platform/src/instances/staging.ts,
 * README 6). `create` (id: the original) makes a neutralised copy at
 * `<sub>-staging`, billed as the Staging add-on on the original's
 * subscription: 202 {id, status} of the copy; 400 naming `plan` when the plan
 * offers no staging, `id` for a copy of a copy; 409 when the original is not
 * running or stopped, or already has a copy. `refresh` (id: the copy)
 * replaces the copy's data with a new neutralised copy of the original: 202.
 * The owner, or an operator acting for them; anyone else gets 404.
 */
import { z } from 'zod';
import { db } from '@saasodoo/platform/db/index';
import { httpFunction, route } from '@saasodoo/platform/fn';
import { createStagingCopy, refreshStagingCopy } from '@saasodoo/platform/instances/staging';
import { findForCaller } from '@saasodoo/platform/instances/repository';

const body = z.object({ action: z.enum(['create', 'refresh'], { message: 'one of create, refresh' }), id: z.uuid('must be an instance id') }).strict();

export default httpFunction({
  name: 'staging',
  POST: route<undefined, z.infer<typeof body>, 'customer'>({
    auth: 'customer',
    body,
    handle: async ({ body: b, caller, headers, requestId, traceparent }) => {
      const row = await findForCaller(db('instance'), b.id, caller);
      const ctx = { requestId, traceparent };
      const next = b.action === 'create' ? await createStagingCopy(row, caller, String(headers.authorization ?? ''), ctx) : await refreshStagingCopy(row, caller, ctx);
      return { status: 202, body: { id: next.id, status: next.status, subdomain: next.subdomain }, audit: { customerId: row.customer_id, instanceId: next.id } };
    },
  }),
  outbox: 'instance',
});
