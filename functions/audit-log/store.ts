/**
 * The audit log's reads, beside the one function that makes them
 * (audit-log/index.ts reads as: schema, authorize, read, answer).
 */
import { db } from '@saasodoo/platform/db/index';

export type Row = {
  id: string;
  at: Date;
  actor: string;
  actor_id: string | null;
  customer_id: string | null;
  instance_id: string | null;
  action: string;
  outcome: string;
  status: number | null;
  request_id: string | null;
  detail: string | null;
};

/** The filters of GET /api/audit-log; `customerId` is already forced to the caller's own for customers. */
export type Filter = { customerId?: string; instanceId?: string; actor?: string; action?: string; from?: string; to?: string; before?: string };

/** WHERE clause and values for the filters; `customerId` is already forced to the caller's own for customers. */
function where(q: Filter): { sql: string; values: unknown[] } {
  const parts: string[] = [];
  const values: unknown[] = [];
  const add = (cond: string, ...vs: unknown[]) => {
    parts.push(
      cond.replace(/\?/g, () => {
        values.push(vs.shift());
        return `$${values.length}`;
      }),
    );
  };
  if (q.customerId) add('customer_id = ?', q.customerId);
  if (q.instanceId) add('instance_id = ?', q.instanceId);
  if (q.actor) add('actor = ?', q.actor);
  // `instance-action` also finds `instance-action.stop` and the other operations.
  if (q.action) add('(action = ? OR starts_with(action, ?))', q.action, `${q.action}.`);
  if (q.from) add('at >= ?', q.from);
  if (q.to) add('at < ?', q.to);
  if (q.before) add('at < ?', q.before);
  return { sql: parts.length ? `WHERE ${parts.join(' AND ')}` : '', values };
}

/** Entries matching `f`, newest first, at most `limit`. */
export function findEntries(f: Filter, limit: number): Promise<Row[]> {
  const w = where(f);
  return db('audit').manyOrNone<Row>(`SELECT * FROM audit_log ${w.sql} ORDER BY at DESC, id LIMIT $${w.values.length + 1}`, [...w.values, limit]);
}
