/**
 * /api/domains: an instance's custom domains (platform/src/instances/domains.ts).
 * GET ?instanceId → {items: [{domain, verified, primary, problem, records}], limit}.
 * POST {action: 'add' | 'verify' | 'remove', instanceId, domain} → the claim
 * (add, verify) or 204 (remove). `verify` resolves the records now; the
 * owner (or an operator) only.
 */
import { z } from 'zod';
import { db } from '@saasodoo/platform/db/index';
import { httpFunction, route } from '@saasodoo/platform/fn';
import { addDomain, checkDomain, domainSchema, listDomains, removeDomain, toApi } from '@saasodoo/platform/instances/domains';
import { findForCaller, getInstance } from '@saasodoo/platform/instances/repository';
import { findPlan } from '@saasodoo/platform/plans';

const instanceId = z.uuid('must be an instance id');
const body = z.object({ action: z.enum(['add', 'verify', 'remove'], { message: 'one of add, verify, remove' }), instanceId, domain: domainSchema }).strict();

export default httpFunction({
  name: 'domains',
  GET: route<{ instanceId: string }, undefined, 'customer'>({
    auth: 'customer',
    query: z.object({ instanceId }).strict(),
    handle: async ({ query, caller }) => {
      const row = await findForCaller(db('instance'), query.instanceId, caller);
      const claims = await listDomains(row.id);
      return { body: { items: claims.map((d) => toApi(d, row)), limit: findPlan(row.plan, true)?.customDomains ?? 1 } };
    },
  }),
  POST: route<undefined, z.infer<typeof body>, 'customer'>({
    auth: 'customer',
    body,
    handle: async ({ body: b, caller }) => {
      const row = await findForCaller(db('instance'), b.instanceId, caller);
      const audit = { customerId: row.customer_id, instanceId: row.id };
      if (b.action === 'remove') {
        await removeDomain(row, b.domain);
        return { status: 204, audit };
      }
      const claim = b.action === 'add' ? await addDomain(row, b.domain) : await checkDomain(row, b.domain);
      const now = (await getInstance(db('instance'), row.id))!;
      return { status: b.action === 'add' ? 201 : 200, body: toApi(claim, now), audit };
    },
  }),
  outbox: 'instance',
});
