/**
 * The audit log's writer (platform/src/audit-trail.ts explains the trail).
 * Stores every `audit.action` (what people asked for, recorded by the
 * function kit) and the decisions the system and billing made on their own:
 * an account created, a billing status change, provisioning done or failed,
 * suspension, resumption, termination, scheduled backups. The event id is
 * the row's key, so a redelivered event is stored once. Its role can insert
 * and read, never update or delete; `schedule.daily` prunes past the retention.
 */
import { config } from '@saasodoo/platform/config';
import { pruneAuditLog, storeAuditEntry, type AuditEntry as Entry } from '@saasodoo/platform/audit-log';
import { db } from '@saasodoo/platform/db/index';
import { eventFunction, type ReceivedEvent } from '@saasodoo/platform/fn';
import type { EventData } from '@saasodoo/events';

/** A handler storing the entry `f` makes of each event of `type` (none when it answers undefined). */
function entry<
  T extends
    | 'audit.action'
    | 'user.registered'
    | 'billing.status_changed'
    | 'instance.ready'
    | 'instance.failed'
    | 'instance.suspend'
    | 'instance.resume'
    | 'instance.terminate'
    | 'instance.backup_completed'
    | 'instance.backup_failed',
>(type: T, f: (d: EventData<T>) => Entry | undefined) {
  return [
    `com.saasodoo.${type}`,
    async (e: ReceivedEvent<EventData<T>>) => {
      const x = f(e.data);
      if (x) await storeAuditEntry(e.id, x, e.time);
    },
  ] as const;
}

const scheduled = (kind: string | undefined) => kind !== undefined && kind !== 'manual';

export default eventFunction({
  name: 'audit',
  on: Object.fromEntries([
    entry('audit.action', (d) => ({ ...d })),
    entry('user.registered', (d) => ({ actor: 'customer', actorId: d.customerId, customerId: d.customerId, action: 'signup' })),
    entry('billing.status_changed', (d) => ({
      actor: 'billing',
      customerId: d.customerId,
      instanceId: d.instanceId,
      action: `billing.${d.status}`,
      detail: d.reason,
    })),
    entry('instance.ready', (d) => ({ actor: 'system', customerId: d.customerId, instanceId: d.instanceId, action: 'instance.provisioned' })),
    entry('instance.failed', (d) => ({
      actor: 'system',
      customerId: d.customerId,
      instanceId: d.instanceId,
      action: 'instance.provisioning',
      outcome: 'failed',
      detail: d.step,
    })),
    entry('instance.suspend', (d) => ({ actor: 'billing', customerId: d.customerId, instanceId: d.instanceId, action: 'instance.suspend', detail: d.reason })),
    entry('instance.resume', (d) => ({ actor: 'billing', customerId: d.customerId, instanceId: d.instanceId, action: 'instance.resume' })),
    entry('instance.terminate', (d) => ({ actor: 'billing', customerId: d.customerId, instanceId: d.instanceId, action: 'instance.terminate', detail: d.reason })),
    // A manual backup is the customer's action, already recorded; these are the platform's own.
    entry('instance.backup_completed', (d) => (scheduled(d.kind) ? { actor: 'system', customerId: d.customerId, instanceId: d.instanceId, action: `instance.backup.${d.kind}` } : undefined)),
    entry('instance.backup_failed', (d) =>
      scheduled(d.kind) ? { actor: 'system', customerId: d.customerId, instanceId: d.instanceId, action: `instance.backup.${d.kind}`, outcome: 'failed' } : undefined,
    ),
    [
      'com.saasodoo.schedule.daily',
      async (e: ReceivedEvent<unknown>) => {
        e.log.info({ pruned: await pruneAuditLog(config().AUDIT_RETENTION_DAYS) }, 'audit log pruned');
      },
    ],
  ]),
  checks: [
    function auditDatabase() {
      return db('audit').one('SELECT 1');
    },
  ],
});
