/**
 * Backups and restore (platform/src/instances/README.md 4) as the instance service records them: the
 * driver writes the parts and the manifest, this module keeps the `backups`
 * rows, the instance status and the events in step. A backup is `completed`
 * only when the driver returned a manifest; anything else is `failed` with
 * `instance.backup_failed`, never a success.
 */
import { randomUUID } from 'node:crypto';
import { db } from '../db/index.ts';
import { enqueue, transact } from '../outbox.ts';
import { firstDelivery } from '../idempotency.ts';
import { BACKUP_STEPS, RESTORE_STEPS, runtime, type BackupKind, type BackupManifest, type BackupStep, type RestoreStep } from '../runtime/index.ts';
import { causeOf, enter, loadOwned, settle, type Command } from './command.ts';
import { withInstanceLock } from './locks.ts';
import { reportProgress, safeReason } from './progress.ts';
import { getBackup, getInstance, type InstanceRow } from './repository.ts';
import { specOf } from './runtime-spec.ts';

const ACTOR = 'instance-ops';
const DAY = 86_400_000;
/** Final backups outlive their instance by 30 days (platform/src/instances/README.md 1-2). */
export const FINAL_BACKUP_DAYS = 30;

type Ids = { instanceId: string; customerId: string };

/** Size columns and expiry of a finished backup, from its manifest. */
function completedColumns(m: BackupManifest, kind: BackupKind) {
  const dbBytes = m.parts.database.bytes;
  const fsBytes = m.parts.filestore.bytes;
  const expires = m.keepUntil ? new Date(m.keepUntil) : kind === 'final' ? new Date(Date.now() + FINAL_BACKUP_DAYS * DAY) : null;
  return { dbBytes, fsBytes, total: dbBytes + fsBytes, expires };
}

/** Reports each backup step as `instance.progress` (operation 'backup'), kept on the row for the portal. */
function backupProgress(cmd: Command<unknown>, row: InstanceRow) {
  return (step: BackupStep) => reportProgress(row, 'backup', step, BACKUP_STEPS.indexOf(step) + 1, BACKUP_STEPS.length, cmd.traceparent);
}

/** Reports each restore step as `instance.progress` (operation 'restore'). */
function restoreProgress(cmd: Command<unknown>, row: InstanceRow) {
  return (step: RestoreStep) => reportProgress(row, 'restore', step, RESTORE_STEPS.indexOf(step) + 1, RESTORE_STEPS.length, cmd.traceparent);
}

/**
 * Takes one backup of `row` and records it (row + event). Does not touch the
 * instance status: callers decide. Returns whether it succeeded. With
 * `progress`, each step is reported (a customer's backup shows its steps;
 * daily and final backups stay quiet).
 */
export async function takeBackup(
  cmd: Command<unknown>,
  row: InstanceRow,
  backupId: string | undefined,
  kind: BackupKind,
  progress = false,
): Promise<{ ok: true; backupId: string } | { ok: false; backupId: string; reason: string }> {
  const id = backupId ?? randomUUID();
  await db('instance').none(
    `INSERT INTO backups (id, instance_id, kind, status) VALUES ($1, $2, $3, 'running')
     ON CONFLICT (id) DO UPDATE SET status = 'running' WHERE backups.status = 'pending'`,
    [id, row.id, kind],
  );
  try {
    const m = await (await runtime()).backup(specOf(row), id, kind, progress ? backupProgress(cmd, row) : undefined);
    const c = completedColumns(m, kind);
    await transact('instance', async (t) => {
      await t.none(
        `UPDATE backups SET status = 'completed', db_size_bytes = $2, filestore_size_bytes = $3, size_bytes = $4,
           manifest = $5, completed_at = now(), expires_at = $6, error = NULL WHERE id = $1`,
        [id, c.dbBytes, c.fsBytes, c.total, JSON.stringify(m), c.expires],
      );
      await enqueue(t, 'instance.backup_completed', { instanceId: row.id, customerId: row.customer_id, backupId: id, sizeBytes: c.total, kind }, { subject: row.id, traceparent: cmd.traceparent });
    });
    return { ok: true, backupId: id };
  } catch (err) {
    const reason = safeReason(err);
    cmd.log.warn({ instanceId: row.id, backupId: id, reason }, 'backup failed');
    await transact('instance', async (t) => {
      await t.none(`UPDATE backups SET status = 'failed', error = $2, completed_at = now() WHERE id = $1`, [id, reason]);
      await enqueue(t, 'instance.backup_failed', { instanceId: row.id, customerId: row.customer_id, backupId: id, reason, kind }, { subject: row.id, traceparent: cmd.traceparent });
    });
    return { ok: false, backupId: id, reason };
  }
}

/** A backup in one of these states was finished by an earlier delivery: a redelivery does nothing. */
const finished = (b: { status: string } | null | undefined) => Boolean(b && b.status !== 'pending' && b.status !== 'running');

/**
 * `instance.backup`. A manual backup runs with the instance in `backing_up`
 * and returns it to where it was; a daily one leaves the status alone. A
 * redelivered command for a finished backup does nothing; one for a backup
 * still `running` takes it again: under the instance lock (a session lock
 * that dies with its process) `running` means the process taking it was
 * killed mid-way, and skipping it left the instance `backing_up` for good
 * (the fault suite's SIGKILL of instance-ops found it).
 */
export async function backupCommand(cmd: Command<Ids & { backupId: string; kind: BackupKind }>): Promise<void> {
  const row0 = await loadOwned(cmd);
  if (finished(await getBackup(db('instance'), row0.id, cmd.data.backupId))) return;
  await withInstanceLock(row0.id, async () => {
    if (finished(await getBackup(db('instance'), row0.id, cmd.data.backupId))) return;
    const daily = cmd.data.kind === 'daily';
    const row = daily ? await getInstance(db('instance'), row0.id) : await enter(row0.id, ['running', 'stopped'], 'backing_up', causeOf(cmd, ACTOR, `${cmd.data.kind} backup`));
    if (!row) return;
    if (daily && row.status !== 'running') {
      // Stopped since the schedule fired: nothing to back up, nothing taken.
      await db('instance').none(`DELETE FROM backups WHERE id = $1 AND status = 'pending'`, [cmd.data.backupId]);
      return;
    }
    const r = await takeBackup(cmd, row, cmd.data.backupId, cmd.data.kind, !daily);
    if (!daily) {
      await settle(row.id, row.previous_status ?? 'running', causeOf(cmd, ACTOR, r.ok ? 'backup completed' : `backup failed: ${r.reason}`), { previous_status: null });
    }
    if (r.ok && daily) await prune(row);
  });
}

/** Applies the retention policy and marks pruned backups expired. */
export async function prune(row: InstanceRow, now?: Date): Promise<string[]> {
  const removed = await (await runtime()).pruneBackups(row.id, undefined, now);
  if (removed.length) {
    await db('instance').none(`UPDATE backups SET status = 'expired' WHERE instance_id = $1 AND id IN ($2:csv)`, [row.id, removed]);
  }
  return removed;
}

/**
 * `instance.restore`: the driver stops the instance, keeps a safety backup,
 * restores, and on failure puts everything back. The status follows: back
 * to running or stopped on success, to where it was on failure.
 */
export async function restoreCommand(cmd: Command<Ids & { backupId: string }>): Promise<void> {
  const row0 = await loadOwned(cmd);
  await withInstanceLock(row0.id, async () => {
    const row = await enter(row0.id, ['stopped', 'error'], 'restoring', causeOf(cmd, ACTOR, `restore of backup ${cmd.data.backupId}`));
    if (!row) return;
    const back = row.previous_status ?? 'stopped';
    const backup = await getBackup(db('instance'), row.id, cmd.data.backupId);
    const fail = async (reason: string) => {
      await settle(row.id, back, causeOf(cmd, ACTOR, `restore failed: ${reason}`), { previous_status: null }, async (t) => {
        await enqueue(t, 'instance.restore_failed', { instanceId: row.id, customerId: row.customer_id, backupId: cmd.data.backupId, reason }, { subject: row.id, traceparent: cmd.traceparent });
      });
    };
    if (!backup || backup.status !== 'completed') return fail('backup not found or not completed');
    try {
      const rt = await runtime();
      const { safety } = await rt.restore(specOf(row), cmd.data.backupId, restoreProgress(cmd, row));
      const c = completedColumns(safety, 'safety');
      await db('instance').none(
        `INSERT INTO backups (id, instance_id, kind, status, db_size_bytes, filestore_size_bytes, size_bytes, manifest, completed_at, expires_at)
         VALUES ($1, $2, 'safety', 'completed', $3, $4, $5, $6, now(), $7) ON CONFLICT (id) DO NOTHING`,
        [safety.backupId, row.id, c.dbBytes, c.fsBytes, c.total, JSON.stringify(safety), c.expires],
      );
      const state = (await rt.status(row.id)).state;
      const to = state === 'running' || state === 'starting' ? 'running' : 'stopped';
      await settle(
        row.id,
        to,
        causeOf(cmd, ACTOR, `restored backup ${cmd.data.backupId}`),
        {
          previous_status: null,
          error_step: null,
          error_reason: null,
        },
        async (t) => {
          await enqueue(
            t,
            'instance.restore_completed',
            { instanceId: row.id, customerId: row.customer_id, backupId: cmd.data.backupId, status: to },
            { subject: row.id, traceparent: cmd.traceparent },
          );
        },
      );
    } catch (err) {
      cmd.log.warn({ instanceId: row.id, reason: safeReason(err) }, 'restore failed');
      await fail(safeReason(err));
    }
  });
}

/**
 * `schedule.daily`: one `instance.backup` (kind daily) per running paid
 * instance, sent through the outbox so each runs as its own delivery; and
 * final backups of terminated instances past their 30 days are deleted.
 */
export async function dailyBackups(cmd: Command<{ at: string }>): Promise<number> {
  const rows = await transact('instance', async (t) => {
    if (!(await firstDelivery(t, cmd.eventId, 'instance-ops:daily'))) return [];
    const due = await t.manyOrNone<InstanceRow>(`SELECT * FROM instances WHERE status = 'running' AND billing_status = 'paid'`);
    for (const r of due) {
      const backupId = randomUUID();
      await t.none(`INSERT INTO backups (id, instance_id, kind, status) VALUES ($1, $2, 'daily', 'pending')`, [backupId, r.id]);
      await enqueue(t, 'instance.backup', { instanceId: r.id, customerId: r.customer_id, backupId, kind: 'daily' }, { subject: r.id, traceparent: cmd.traceparent });
    }
    return due;
  });
  const expired = await db('instance').manyOrNone<{ id: string; instance_id: string }>(
    `SELECT id, instance_id FROM backups WHERE status = 'completed' AND expires_at IS NOT NULL AND expires_at < now()`,
  );
  const rt = await runtime();
  for (const b of expired) {
    await rt.deleteBackup(b.instance_id, b.id);
    await db('instance').none(`UPDATE backups SET status = 'expired' WHERE id = $1`, [b.id]);
  }
  return rows.length;
}
