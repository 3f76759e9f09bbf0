/**
 * The one way an instance changes status: `transition` updates the row,
 * writes the instance_history row naming the event (or request) that caused
 * it, and enqueues `instance.status_changed`, all in the caller's
 * transaction. The portal's audit trail is therefore complete by
 * construction: no code path updates `status` any other way.
 */
import type { Tx } from '../db/index.ts';
import { enqueue } from '../outbox.ts';
import { updateInstance, type InstancePatch, type InstanceRow } from './repository.ts';
import { SETTLED, type Status } from './states.ts';

/** What caused a change: an event (id + type) or an HTTP request (its id, `http:<function>`), and who. */
export type Cause = {
  eventId?: string;
  eventType?: string;
  /** `customer:<id>`, `admin:<id>`, or the function name for automatic work. */
  actor: string;
  reason?: string;
  traceparent?: string;
};

/** Writes one history row (a status change, or a note such as drift with from = to). */
export async function recordHistory(t: Tx, instanceId: string, from: Status | null, to: Status, cause: Cause): Promise<void> {
  await t.none(
    `INSERT INTO instance_history (instance_id, event_id, event_type, from_status, to_status, reason, actor)
     VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [instanceId, cause.eventId ?? null, cause.eventType ?? null, from, to, cause.reason?.slice(0, 1000) ?? null, cause.actor],
  );
}

/**
 * Moves `row` to status `to` (with extra column changes in `patch`),
 * recording history and the status_changed event. Entering a transient
 * status from a settled one remembers the settled one in previous_status,
 * so the operation can return to it.
 */
export async function transition(t: Tx, row: InstanceRow, to: Status, cause: Cause, patch: InstancePatch = {}): Promise<InstanceRow> {
  const from = row.status;
  const extra: InstancePatch = { ...patch };
  if (!SETTLED.has(to) && SETTLED.has(from) && !('previous_status' in patch)) extra.previous_status = from;
  const updated = await updateInstance(t, row.id, { ...extra, status: to });
  if (from !== to) {
    await recordHistory(t, row.id, from, to, cause);
    await enqueue(
      t,
      'instance.status_changed',
      {
        instanceId: row.id,
        customerId: row.customer_id,
        from,
        to,
        ...(cause.reason ? { reason: cause.reason.slice(0, 500) } : {}),
      },
      { subject: row.id, traceparent: cause.traceparent },
    );
  }
  return updated;
}
