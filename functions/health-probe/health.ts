/**
 * health-probe (platform/src/instances/README.md 5): on every `health.tick`, probe `/web/health` of each
 * running instance with bounded concurrency. Three failures in a row →
 * `unhealthy` + `instance.unhealthy`; a success → `healthy` (+
 * `instance.recovered` when it was unhealthy). A runtime that is stopped or
 * missing while the status says running is drift: recorded in the history
 * and reported as `instance.drift_detected` once per episode. So is a
 * runtime that started Odoo again by itself after it stopped outside the
 * platform (status().restartedAt, docker), once per restart.
 */
import { db } from '@saasodoo/platform/db/index';
import { enqueue, transact } from '@saasodoo/platform/outbox';
import { runtime, type RuntimeStatus } from '@saasodoo/platform/runtime/index';
import { probeAll, type ProbeResult } from '@saasodoo/platform/runtime/health';
import { causeOf, type Command } from '@saasodoo/platform/instances/command';
import { recordHistory } from '@saasodoo/platform/instances/history';
import { mapBounded } from '@saasodoo/platform/instances/bounded';
import type { InstanceRow } from '@saasodoo/platform/instances/repository';

export const UNHEALTHY_AFTER = 3;

export type SweepSummary = { probed: number; healthy: number; unhealthy: number; drift: number };

/** One sweep over every running instance. */
export async function sweep(cmd: Command<{ at: string }>, opts: { concurrency?: number; timeoutMs?: number } = {}): Promise<SweepSummary> {
  const rows = await db('instance').manyOrNone<InstanceRow>(`SELECT * FROM instances WHERE status = 'running'`);
  const rt = await runtime();
  const states = await mapBounded(rows, opts.concurrency ?? 50, (r) => rt.status(r.id).catch((): RuntimeStatus => ({ state: 'missing' })));
  const urls = states.map((s) => s.healthUrl ?? 'http://invalid.invalid/');
  const results = await probeAll(urls, { concurrency: opts.concurrency ?? 50, timeoutMs: opts.timeoutMs ?? 5000 });
  const summary: SweepSummary = { probed: rows.length, healthy: 0, unhealthy: 0, drift: 0 };
  // A runtime's own restart stays in its status for good: only one not yet in the history is news (one read for all).
  const restartReasons = states.flatMap((s) => (s.restartedAt ? [restartedReason(s.restartedAt)] : []));
  const recorded = new Set(
    restartReasons.length ? (await db('instance').manyOrNone<{ reason: string }>('SELECT DISTINCT reason FROM instance_history WHERE reason = ANY($1)', [restartReasons])).map((h) => h.reason) : [],
  );
  for (let i = 0; i < rows.length; i++) {
    // A crashed process (`failed`) is ill, not drift: drift is the runtime not even meant to serve.
    const drifted = ['stopped', 'missing', 'suspended'].includes(states[i].state);
    if (drifted) summary.drift++;
    const ok = !drifted && !!states[i].healthUrl && results[i].ok;
    // Nothing changes for a healthy instance that stays healthy: no write at all.
    const restartedAt = states[i].restartedAt && !recorded.has(restartedReason(states[i].restartedAt!)) ? states[i].restartedAt : undefined;
    const unchanged = ok && rows[i].health === 'healthy' && rows[i].health_failures === 0 && !restartedAt;
    if (!unchanged) await record(cmd, rows[i], ok, drifted ? states[i].state : undefined, results[i], restartedAt);
    if (ok) summary.healthy++;
    else summary.unhealthy++;
  }
  return summary;
}

/** The history reason of a restart the runtime made by itself; its time makes it one row per restart. */
export function restartedReason(at: string): string {
  return `drift: runtime restarted Odoo, which had stopped outside the platform at ${at}`;
}

async function record(cmd: Command<unknown>, row: InstanceRow, ok: boolean, driftState: string | undefined, probe: ProbeResult, restartedAt?: string): Promise<void> {
  await transact('instance', async (t) => {
    const cur = await t.oneOrNone<InstanceRow>(`SELECT * FROM instances WHERE id = $1 AND status = 'running' FOR UPDATE`, [row.id]);
    if (!cur) return; // changed status meanwhile: not ours to judge
    const ids = { instanceId: cur.id, customerId: cur.customer_id };
    const o = { subject: cur.id, traceparent: cmd.traceparent };
    if (restartedAt) {
      const reason = restartedReason(restartedAt);
      if (!(await t.oneOrNone(`SELECT 1 FROM instance_history WHERE instance_id = $1 AND reason = $2`, [cur.id, reason]))) {
        await recordHistory(t, cur.id, 'running', 'running', causeOf(cmd, 'health-probe', reason));
        await enqueue(t, 'instance.drift_detected', { ...ids, runtimeState: 'restarted' }, o);
        cmd.log.warn({ instanceId: cur.id, restartedAt }, 'drift: the runtime restarted Odoo, stopped outside the platform');
      }
    }
    if (ok) {
      if (cur.health !== 'healthy' || cur.health_failures !== 0) {
        await t.none(`UPDATE instances SET health = 'healthy', health_failures = 0, updated_at = now() WHERE id = $1`, [cur.id]);
      }
      if (cur.health === 'unhealthy') await enqueue(t, 'instance.recovered', ids, o);
      return;
    }
    const failures = cur.health_failures + 1;
    const becomesUnhealthy = failures >= UNHEALTHY_AFTER && cur.health !== 'unhealthy';
    await t.none(`UPDATE instances SET health_failures = $2, health = $3, updated_at = now() WHERE id = $1`, [cur.id, failures, failures >= UNHEALTHY_AFTER ? 'unhealthy' : cur.health]);
    if (becomesUnhealthy) await enqueue(t, 'instance.unhealthy', { ...ids, failures }, o);
    if (driftState && failures === 1) {
      await recordHistory(t, cur.id, 'running', 'running', causeOf(cmd, 'health-probe', `drift: runtime is ${driftState} while status is running`));
      await enqueue(t, 'instance.drift_detected', { ...ids, runtimeState: driftState }, o);
      cmd.log.warn({ instanceId: cur.id, runtimeState: driftState }, 'drift: runtime not serving while status is running');
    } else if (!driftState && becomesUnhealthy) {
      cmd.log.warn({ instanceId: cur.id, error: probe.error }, 'instance unhealthy');
    }
  });
}
