/**
 * What every instance command handler shares: the command as received, the
 * ownership check (the event's customer must own the instance, otherwise
 * 400: never retried), and `settle`, the transactional end of an operation.
 */
import { db, type Tx } from '../db/index.ts';
import { transact } from '../outbox.ts';
import { HttpError } from '../errors.ts';
import type { Command } from '../fn.ts';
import { transition, type Cause } from './history.ts';
import { getInstance, type InstancePatch, type InstanceRow } from './repository.ts';
import type { Status } from './states.ts';

export type { Command } from '../fn.ts';

/** The cause to record for changes made while handling `cmd`. */
export function causeOf(cmd: Command<unknown>, actor: string, reason?: string): Cause {
  return { eventId: cmd.eventId, eventType: cmd.eventType, actor, reason, traceparent: cmd.traceparent };
}

/** The instance a command names, checked against the command's customer. */
export async function loadOwned(cmd: Command<{ instanceId: string; customerId: string }>): Promise<InstanceRow> {
  const row = await getInstance(db('instance'), cmd.data.instanceId);
  if (!row) throw new HttpError(400, 'unknown_instance', 'No such instance', { instanceId: 'unknown' });
  if (row.customer_id !== cmd.data.customerId) {
    cmd.log.warn({ instanceId: row.id }, 'command refused: customer does not own the instance');
    throw new HttpError(400, 'customer_mismatch', 'The instance belongs to another customer', { customerId: 'does not own the instance' });
  }
  return row;
}

/**
 * In one transaction: lock the row, move it to `to` (history + status
 * event), and run `extra` for the events the change causes. Then publish.
 */
export async function settle(id: string, to: Status, cause: Cause, patch: InstancePatch = {}, extra?: (t: Tx, row: InstanceRow) => Promise<void>): Promise<InstanceRow> {
  const row = await transact('instance', async (t) => {
    const cur = (await getInstance(t, id, true))!;
    const next = await transition(t, cur, to, cause, patch);
    if (extra) await extra(t, next);
    return next;
  });
  return row;
}

/** Moves the instance into the working status `to` unless it is already there; undefined if `from` does not allow it. */
export async function enter(id: string, accept: readonly Status[], to: Status, cause: Cause, patch: InstancePatch = {}): Promise<InstanceRow | undefined> {
  const row = await transact('instance', async (t) => {
    const cur = (await getInstance(t, id, true))!;
    if (cur.status === to) return cur;
    if (!accept.includes(cur.status)) return undefined;
    return transition(t, cur, to, cause, patch);
  });
  return row;
}
