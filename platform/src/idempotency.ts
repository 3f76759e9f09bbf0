/**
 * Idempotent consumers: delivery is at least once, so a consumer records
 * `(event id, consumer)` in its own database in the same transaction as the
 * effect. A redelivered event finds the row and does nothing.
 */
import type { Tx } from './db/index.ts';

/** True the first time this consumer sees `eventId` (inside `t`); false on a redelivery. */
export async function firstDelivery(t: Tx, eventId: string, consumer: string): Promise<boolean> {
  const row = await t.oneOrNone(
    'INSERT INTO processed_events (event_id, consumer) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1 AS ok',
    [eventId, consumer],
  );
  return row !== null;
}
