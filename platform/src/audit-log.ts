/**
 * The audit log's one way in: a row per entry, keyed by the id of what caused
 * it (an event id), so a redelivery is stored once. The `audit` function
 * stores what the platform's events say happened; the operator CLI stores its
 * own actions here directly, because they bypass HTTP and the function kit.
 */
import { randomUUID } from 'node:crypto';
import { db } from './db/index.ts';

export type AuditEntry = {
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

/** Stores one entry (the audit role may insert, never update or delete); a second store of `id` is a no-op. */
export async function storeAuditEntry(id: string, x: AuditEntry, at?: string): Promise<void> {
  await db('audit').none(
    `INSERT INTO audit_log (id, at, actor, actor_id, customer_id, instance_id, action, outcome, status, request_id, detail)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO NOTHING`,
    [
      id,
      x.at ?? at ?? new Date().toISOString(),
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
export async function pruneAuditLog(retentionDays: number): Promise<number> {
  return (await db('audit').one<{ n: number }>('SELECT audit_prune($1) AS n', [retentionDays])).n;
}

/**
 * Records an operator's command-line action (admin grants, dead-letter replays). The command line has no
 * account, so the entry names the machine user who ran it. Answers a warning for the operator when the
 * audit database could not take the entry.
 */
export async function recordOperatorCommand(action: string, o: { customerId?: string; detail: string }): Promise<string | undefined> {
  const user = process.env.SUDO_USER ?? process.env.USER ?? 'unknown';
  try {
    await storeAuditEntry(randomUUID(), { actor: 'operator', action, customerId: o.customerId, requestId: 'command-line', detail: `${o.detail} (command line, user ${user})` });
    return undefined;
  } catch (err) {
    // The action is done either way: say so, and that the audit log missed it, rather than fail a done action.
    return `not recorded in the audit log: ${(err as Error).message}`;
  }
}
