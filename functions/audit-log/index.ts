/**
 * GET /api/audit-log: the audit log (functions/audit writes it).
 * A customer reads their own account's entries, whatever filter they pass
 * for another; an operator searches everything by customer, instance, actor,
 * action and date. `format=jsonl` exports every match (up to 10,000) as JSON
 * lines; otherwise a page of `limit` entries, newest first, and `before` for
 * the next page.
 */
import { z } from 'zod';
import { db } from '@saasodoo/platform/db/index';
import { HttpError } from '@saasodoo/platform/errors';
import { httpFunction, route, type HttpResult } from '@saasodoo/platform/fn';
import { findEntries, type Row } from './store.ts';

const EXPORT_MAX = 10_000;

/**
 * A date-time, handed to PostgreSQL in UTC: ISO 8601 allows offsets up to ±23:59, PostgreSQL's
 * timestamptz only to ±15:59, so `…-21:16` passed as written was a 500 (found by the fuzzer).
 */
const instant = z.iso
  .datetime({ offset: true, message: 'an ISO 8601 date-time' })
  .refine((s) => !Number.isNaN(Date.parse(s)), 'an ISO 8601 date-time')
  .transform((s) => new Date(s).toISOString());

const query = z
  .object({
    customerId: z.uuid('must be a customer id').optional(),
    instanceId: z.uuid('must be an instance id').optional(),
    actor: z.enum(['customer', 'operator', 'anonymous', 'billing', 'system'], { message: 'one of customer, operator, anonymous, billing, system' }).optional(),
    action: z
      .string()
      .regex(/^[a-z][a-z0-9_.-]{0,99}$/, 'an action name such as instance-action.stop')
      .optional(),
    from: instant.optional(),
    to: instant.optional(),
    before: instant.optional(),
    limit: z.coerce.number().int().min(1).max(200).default(50),
    format: z.enum(['json', 'jsonl'], { message: 'json or jsonl' }).default('json'),
  })
  .strict();
type Query = z.infer<typeof query>;

const toApi = (r: Row) => ({
  id: r.id,
  at: r.at.toISOString(),
  actor: r.actor,
  actorId: r.actor_id,
  customerId: r.customer_id,
  instanceId: r.instance_id,
  action: r.action,
  outcome: r.outcome,
  status: r.status,
  requestId: r.request_id,
  detail: r.detail,
});

export default httpFunction({
  name: 'audit-log',
  GET: route<Query, undefined, 'customer'>({
    auth: 'customer',
    query,
    handle: async ({ query: q, caller }): Promise<HttpResult> => {
      if (caller.role !== 'admin') {
        if (q.customerId && q.customerId !== caller.userId) throw HttpError.forbidden("You can read your own account's activity only");
        q = { ...q, customerId: caller.userId };
      }
      if (q.format === 'jsonl') {
        const rows = await findEntries(q, EXPORT_MAX);
        return {
          body: rows.map((r) => JSON.stringify(toApi(r))).join('\n') + (rows.length ? '\n' : ''),
          headers: {
            'content-type': 'application/x-ndjson; charset=utf-8',
            'content-disposition': 'attachment; filename="audit-log.jsonl"',
            'cache-control': 'no-store',
          },
        };
      }
      const rows = await findEntries(q, q.limit + 1);
      const page = rows.slice(0, q.limit);
      return {
        body: { items: page.map(toApi), next: rows.length > q.limit ? page[page.length - 1]!.at.toISOString() : null },
        headers: { 'cache-control': 'no-store' },
      };
    },
  }),
  checks: [
    function auditDatabase() {
      return db('audit').one('SELECT 1');
    },
  ],
});
