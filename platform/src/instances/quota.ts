/**
 * quota-set (`instance.quota`, sent on a plan change): the plan's resources
 * and storage quota applied to the instance, usage measured against it, and
 * `instance.quota_exceeded` when over.
 */
import { config } from '../config.ts';
import { db } from '../db/index.ts';
import { HttpError } from '../errors.ts';
import { enqueue, transact } from '../outbox.ts';
import { findPlan } from '../plans.ts';
import { runtime, type QuotaUsage } from '../runtime/index.ts';
import { causeOf, loadOwned, type Command } from './command.ts';
import { recordHistory } from './history.ts';
import { withInstanceLock } from './locks.ts';
import { mapBounded } from './bounded.ts';
import { moveIfNeeded } from './move.ts';
import { getInstance, updateInstance } from './repository.ts';
import { quotaBytes, specOf } from './runtime-spec.ts';

/** Applies `plan` to the instance; returns the usage measured after, or undefined when it has no runtime yet. */
export async function applyQuota(cmd: Command<{ instanceId: string; customerId: string; plan: string }>): Promise<QuotaUsage | undefined> {
  const plan = findPlan(cmd.data.plan, true) ?? undefined;
  if (!plan || (plan.testOnly && !config().TEST_PLANS)) throw HttpError.badRequest('Unknown plan', { plan: 'not a plan on sale' });
  const row0 = await loadOwned(cmd);
  if (row0.status === 'terminated' || row0.status === 'terminating') return undefined;
  return withInstanceLock(row0.id, async () => {
    let row = (await getInstance(db('instance'), row0.id))!;
    if (row.plan !== plan.id || JSON.stringify(row.resources) !== JSON.stringify(plan.resources)) {
      row = await transact('instance', async (t) => {
        const next = await updateInstance(t, row.id, { plan: plan.id, resources: plan.resources });
        await recordHistory(t, row.id, row.status, row.status, causeOf(cmd, 'quota-set', `plan ${row.plan} → ${plan.id}`));
        return next;
      });
    }
    // A change between a shared and a dedicated plan moves the database (move.ts); a failed move leaves it where it was.
    row = await moveIfNeeded(cmd, row);
    const rt = await runtime();
    const st = await rt.status(row.id);
    if (st.state === 'missing') return undefined;
    await rt.setQuota(row.id, quotaBytes(row));
    // Re-apply with the same run state so CPU and memory follow the plan.
    const serving = row.status === 'running' || row.status === 'starting' || row.status === 'restarting';
    await rt.apply(specOf(row), row.status === 'suspended' ? { replicas: 0, suspended: true } : { replicas: serving ? 1 : 0 });
    // A new CPU/memory limit may restart the process: the instance is back before this answers.
    if (serving) await rt.waitReady(row.id, config().PROVISION_READY_TIMEOUT * 1000);
    return reportUsage(cmd, row.id, row.customer_id);
  });
}

/**
 * Measures storage usage and keeps it on the instance row (the API's
 * `storage`). `instance.quota_exceeded` is sent when a measurement crosses
 * the quota upwards, not on every measurement while it stays over, so a
 * sweep every few minutes does not flood the customer's mailbox.
 */
export async function reportUsage(cmd: Command<unknown>, instanceId: string, customerId: string): Promise<QuotaUsage> {
  const usage = await (await runtime()).usage(instanceId);
  await recordUsage(cmd, instanceId, customerId, usage);
  return usage;
}

/** How far back the storage chart goes. */
export const SAMPLE_DAYS = 30;

/** Stores one measurement (and the hour's chart sample); sends `instance.quota_exceeded` on an upward crossing. Returns whether it was sent. */
export async function recordUsage(cmd: Pick<Command<unknown>, 'log' | 'traceparent'>, instanceId: string, customerId: string, usage: QuotaUsage): Promise<boolean> {
  cmd.log.info({ instanceId, usedBytes: usage.usedBytes, limitBytes: usage.limitBytes }, 'storage usage');
  const crossed = await transact('instance', async (t) => {
    const before = await t.oneOrNone<{ storage_exceeded: boolean }>('SELECT storage_exceeded FROM instances WHERE id = $1 FOR UPDATE', [instanceId]);
    if (!before) return false;
    await t.none(
      `UPDATE instances SET storage_used_bytes = $2, storage_limit_bytes = $3, storage_exceeded = $4, storage_measured_at = now(), storage_checked_at = now()
       WHERE id = $1`,
      [instanceId, Math.round(usage.usedBytes), Math.round(usage.limitBytes), usage.exceeded],
    );
    // The chart's sample for this hour (the last measurement wins), and what fell out of its 30 days.
    await t.none(
      `INSERT INTO storage_samples (instance_id, hour, used_bytes, limit_bytes) VALUES ($1, date_trunc('hour', now()), $2, $3)
       ON CONFLICT (instance_id, hour) DO UPDATE SET used_bytes = EXCLUDED.used_bytes, limit_bytes = EXCLUDED.limit_bytes`,
      [instanceId, Math.round(usage.usedBytes), Math.round(usage.limitBytes)],
    );
    await t.none(`DELETE FROM storage_samples WHERE instance_id = $1 AND hour < now() - interval '${SAMPLE_DAYS} days'`, [instanceId]);
    if (!usage.exceeded || before.storage_exceeded) return false;
    await enqueue(t, 'instance.quota_exceeded', { instanceId, customerId, usedBytes: usage.usedBytes, limitBytes: usage.limitBytes }, { subject: instanceId, traceparent: cmd.traceparent });
    return true;
  });
  return crossed;
}

/** Instances whose storage exists (their usage means something). */
const MEASURED_STATUSES = ['running', 'stopped', 'suspended'];

export type UsageRefresh = { measured: number; failed: number; exceeded: number };

/**
 * The periodic refresh health-probe runs on its tick: instances not checked
 * for `everyMinutes` are claimed (at most `batch` per call, oldest first,
 * SKIP LOCKED so overlapping ticks never measure one twice) and measured
 * with at most `concurrency` runtime usage() calls in flight: on Kubernetes
 * each is a Job, so a tick must not start hundreds.
 */
export async function refreshUsage(cmd: Command<unknown>, opts: { everyMinutes: number; batch?: number; concurrency?: number }): Promise<UsageRefresh> {
  const due = await db('instance').manyOrNone<{ id: string; customer_id: string }>(
    `UPDATE instances SET storage_checked_at = now() WHERE id IN (
       SELECT id FROM instances WHERE status IN ($1:csv)
          AND (storage_checked_at IS NULL OR storage_checked_at <= now() - make_interval(mins => $2))
        ORDER BY storage_checked_at NULLS FIRST LIMIT $3 FOR UPDATE SKIP LOCKED)
     RETURNING id, customer_id`,
    [MEASURED_STATUSES, opts.everyMinutes, opts.batch ?? 200],
  );
  const out: UsageRefresh = { measured: 0, failed: 0, exceeded: 0 };
  if (!due.length) return out;
  const rt = await runtime();
  await mapBounded(due, opts.concurrency ?? 4, async (r) => {
    try {
      const usage = await rt.usage(r.id);
      out.measured++;
      if (await recordUsage(cmd, r.id, r.customer_id, usage)) out.exceeded++;
    } catch (err) {
      out.failed++;
      cmd.log.warn({ instanceId: r.id, reason: (err as Error).message }, 'storage usage not measured');
    }
  });
  return out;
}
