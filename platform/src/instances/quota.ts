/**
 * quota-set (`instance.quota`, sent on a plan change): the plan's resources
 * and storage quota applied to the instance, usage measured against it, and
 * `instance.quota_exceeded` when over.
 */
import { config } from '../config.ts';
import { db } from '../db/index.ts';
import { HttpError } from '../errors.ts';
import { enqueue } from '../outbox.ts';
import { findPlan } from '../plans.ts';
import { runtime, type QuotaUsage } from '../runtime/index.ts';
import { causeOf, loadOwned, type Command } from './command.ts';
import { recordHistory } from './history.ts';
import { withInstanceLock } from './locks.ts';
import { kickOutbox } from './relay.ts';
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
      row = await db('instance').tx(async (t) => {
        const next = await updateInstance(t, row.id, { plan: plan.id, resources: plan.resources });
        await recordHistory(t, row.id, row.status, row.status, causeOf(cmd, 'quota-set', `plan ${row.plan} → ${plan.id}`));
        return next;
      });
    }
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

/** Measures storage usage; over the quota → `instance.quota_exceeded`. */
export async function reportUsage(cmd: Command<unknown>, instanceId: string, customerId: string): Promise<QuotaUsage> {
  const usage = await (await runtime()).usage(instanceId);
  cmd.log.info({ instanceId, usedBytes: usage.usedBytes, limitBytes: usage.limitBytes }, 'storage usage');
  if (usage.exceeded) {
    await db('instance').tx((t) => enqueue(t, 'instance.quota_exceeded', {
      instanceId, customerId, usedBytes: usage.usedBytes, limitBytes: usage.limitBytes,
    }, { subject: instanceId, traceparent: cmd.traceparent }));
    kickOutbox();
  }
  return usage;
}
