/**
 * The audit database's writes, beside the one function that makes them
 * (audit/index.ts reads as: which events, which entry, store).
 */
import { db } from '@saasodoo/platform/db/index';

export type Entry = {
  actor: 'customer' | 'operator' | 'anonymous' | 'billing' | 'system';
  actorId?: string;
  customerId?: string;
  instanceId?: string;
  action: string;
  outcome?: 'succeeded' | 'refused' | 'denied' | 'failed';
  status?: number;
  requestId?: string;
  detail?: string;
  at?: string;
};

/** Stores one entry keyed by its event id: a redelivered event is stored once. */
export async function store(e: { id: string; time?: string }, x: Entry): Promise<void> {
  await db('audit').none(
    `INSERT INTO audit_log (id, at, actor, actor_id, customer_id, instance_id, action, outcome, status, request_id, detail)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO NOTHING`,
    [
      e.id,
      x.at ?? e.time ?? new Date().toISOString(),
      x.actor,
      x.actorId ?? null,
      x.customerId ?? null,
      x.instanceId ?? null,
      x.action,
      x.outcome ?? 'succeeded',
      x.status ?? null,
      x.requestId ?? null,
      x.detail ?? null,
    ],
  );
}

/** Deletes entries past the retention (the database function keeps the role insert-only otherwise); answers how many. */
export async function prune(retentionDays: number): Promise<number> {
  return (await db('audit').one<{ n: number }>('SELECT audit_prune($1) AS n', [retentionDays])).n;
}
