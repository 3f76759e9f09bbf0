/**
 * Idempotent consumers: delivery is at least once, so a consumer records
 * `(event id, consumer)` in its own database in the same transaction as the
 * effect. A redelivered event finds the row and does nothing.
 */
import type { Db, Tx } from './db/index.ts';

type Q = Db | Tx;

/** True the first time this consumer sees `eventId` (inside `t`); false on a redelivery. */
export async function firstDelivery(t: Tx, eventId: string, consumer: string): Promise<boolean> {
  const row = await t.oneOrNone('INSERT INTO processed_events (event_id, consumer) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1 AS ok', [eventId, consumer]);
  return row !== null;
}

/**
 * True when this consumer already handled `eventId`: lets a consumer skip
 * expensive reads for a redelivery. Only a hint (a copy may be in flight):
 * firstDelivery inside the effect's transaction stays the guard.
 */
export async function handledBefore(q: Q, eventId: string, consumer: string): Promise<boolean> {
  return (await q.oneOrNone('SELECT 1 FROM processed_events WHERE event_id = $1 AND consumer = $2', [eventId, consumer])) !== null;
}
