/**
 * instance-ops: start, stop, restart, suspend, resume and terminate (platform/src/instances/README.md 1-2).
 * `instance-action` already moved the instance into the working status
 * (starting, stopping...); a command sent directly (lifecycle, `platform
 * invoke`) is accepted from the settled status too. Every handler is safe to
 * receive twice: the status says whether the work is already done.
 */
import { config } from '@saasodoo/platform/config';
import { db } from '@saasodoo/platform/db/index';
import { runtime, RuntimeError } from '@saasodoo/platform/runtime/index';
import { enter, loadOwned, settle, causeOf, type Command } from '@saasodoo/platform/instances/command';
import { dropInstanceDatabase, serverAdmin } from '@saasodoo/platform/instances/database';
import { getPool, poolOf } from '@saasodoo/platform/instances/pools';
import { dedicatedPoolName, removeDedicatedServer } from '@saasodoo/platform/instances/dedicated';
import { recordHistory } from '@saasodoo/platform/instances/history';
import { withInstanceLock } from '@saasodoo/platform/instances/locks';
import { instanceDbNames } from '@saasodoo/platform/instances/names';
import { safeReason } from '@saasodoo/platform/instances/progress';
import { getInstance, updateInstance, type InstanceRow } from '@saasodoo/platform/instances/repository';
import { specOf } from '@saasodoo/platform/instances/runtime-spec';
import { takeBackup } from '@saasodoo/platform/instances/backups';
import { followOriginal, terminateCopiesOf } from '@saasodoo/platform/instances/staging';
import { transact } from '@saasodoo/platform/outbox';

type Ids = { instanceId: string; customerId: string };
const ACTOR = 'instance-ops';

function readyTimeoutMs(): number {
  return config().PROVISION_READY_TIMEOUT * 1000;
}

/** Starts the runtime, re-applying it when it is missing, and waits for health. */
async function bringUp(row: InstanceRow): Promise<void> {
  const rt = await runtime();
  const st = await rt.status(row.id);
  if (st.state === 'missing') await rt.apply(specOf(row), { replicas: 1 });
  else await rt.scale(row.id, 1);
  await rt.waitReady(row.id, readyTimeoutMs());
}

/** Scales to zero; an instance whose runtime was never applied is already down. */
async function bringDown(id: string, suspended = false): Promise<void> {
  try {
    await (await runtime()).scale(id, 0, suspended ? { suspended: true } : undefined);
  } catch (err) {
    if (!(err instanceof RuntimeError && err.code === 'not_found')) throw err;
  }
}

// Health is the probe's to judge: a restart does not reset it, so recovery is reported by the probe.
const RUNNING_PATCH = { error_step: null, error_reason: null, previous_status: null } as const;

/** Runs `work` with the instance in `working`; success → `done`, failure → `error` with `step` and the reason. */
async function operate(cmd: Command<Ids>, accept: InstanceRow['status'][], working: InstanceRow['status'], step: string, work: (row: InstanceRow) => Promise<InstanceRow['status']>): Promise<void> {
  await loadOwned(cmd);
  await withInstanceLock(cmd.data.instanceId, async () => {
    const row = await enter(cmd.data.instanceId, accept, working, causeOf(cmd, ACTOR));
    if (!row) {
      cmd.log.info({ instanceId: cmd.data.instanceId }, `${step}: nothing to do in this status`);
      return;
    }
    let to: InstanceRow['status'];
    try {
      to = await work(row);
    } catch (err) {
      const reason = safeReason(err);
      await settle(row.id, 'error', causeOf(cmd, ACTOR, `${step} failed: ${reason}`), { error_step: step, error_reason: reason });
      return;
    }
    await settle(row.id, to, causeOf(cmd, ACTOR), to === 'running' ? { ...RUNNING_PATCH } : { previous_status: null });
  });
}

export function start(cmd: Command<Ids>) {
  return operate(cmd, ['stopped', 'error'], 'starting', 'start', async (row) => {
    await bringUp(row);
    return 'running';
  });
}

export function stop(cmd: Command<Ids>) {
  return operate(cmd, ['running'], 'stopping', 'stop', async (row) => {
    await bringDown(row.id);
    return 'stopped';
  });
}

export function restart(cmd: Command<Ids>) {
  return operate(cmd, ['running'], 'restarting', 'restart', async (row) => {
    await bringDown(row.id);
    await bringUp(row);
    return 'running';
  });
}

/**
 * Lifecycle numbers its suspend/resume commands per subscription. A broker
 * retry can deliver an older one after a newer one (a suspend held back by a
 * busy instance arriving after the resume): applying it would undo the newer
 * decision, so a command at or below the recorded number is ignored.
 */
function isLate(row: InstanceRow, cmd: Command<{ seq?: number }>): boolean {
  const late = cmd.data.seq !== undefined && cmd.data.seq <= row.suspension_seq;
  if (late) cmd.log.info({ instanceId: row.id, seq: cmd.data.seq, applied: row.suspension_seq }, 'late suspend/resume ignored');
  return late;
}

const seqPatch = (cmd: Command<{ seq?: number }>) => (cmd.data.seq === undefined ? {} : { suspension_seq: cmd.data.seq });

/** Non-payment (platform/src/instances/README.md 1-2): scaled to zero behind the suspended page, data kept; remembers what to go back to. */
export async function suspend(cmd: Command<Ids & { reason: string; seq?: number }>): Promise<void> {
  const row0 = await loadOwned(cmd);
  if (row0.status === 'terminated') return;
  await withInstanceLock(row0.id, async () => {
    const row = (await getInstance(db('instance'), row0.id))!;
    if (isLate(row, cmd)) return;
    if (['suspended', 'terminating', 'terminated'].includes(row.status)) return void (await updateInstance(db('instance'), row.id, seqPatch(cmd)));
    await bringDown(row.id, true);
    const back = row.status === 'stopped' || row.status === 'pending_payment' || row.status === 'error' ? row.status : 'running';
    // Its staging copy is suspended with it (README 6).
    await settle(row.id, 'suspended', causeOf(cmd, 'lifecycle', cmd.data.reason), { previous_status: back, ...seqPatch(cmd) }, (t, next) =>
      followOriginal(t, next, 'instance.suspend', cmd.data.reason, cmd.traceparent),
    );
  });
}

/** A payment arrived: back to what it was before the suspension (running unless it was stopped or never provisioned). */
export async function resume(cmd: Command<Ids & { seq?: number }>): Promise<void> {
  const row0 = await loadOwned(cmd);
  if (row0.status === 'terminated') return;
  await withInstanceLock(row0.id, async () => {
    const row = (await getInstance(db('instance'), row0.id))!;
    if (isLate(row, cmd)) return;
    if (row.status !== 'suspended') return void (await updateInstance(db('instance'), row.id, seqPatch(cmd)));
    const back = row.previous_status ?? 'running';
    const cause = causeOf(cmd, 'lifecycle', 'resumed after payment');
    // Its staging copy resumes with it (README 6), whatever becomes of the original's own start.
    await transact('instance', (t) => followOriginal(t, row, 'instance.resume', 'resumed', cmd.traceparent));
    if (back !== 'running') {
      await bringDown(row.id); // clears the "suspended" page, stays stopped
      await settle(row.id, back, cause, { previous_status: null, ...seqPatch(cmd) });
      return;
    }
    try {
      await bringUp(row);
      await settle(row.id, 'running', cause, { ...RUNNING_PATCH, ...seqPatch(cmd) });
    } catch (err) {
      const reason = safeReason(err);
      await settle(row.id, 'error', causeOf(cmd, ACTOR, `resume failed: ${reason}`), { error_step: 'resume', error_reason: reason, ...seqPatch(cmd) });
    }
  });
}

/**
 * Termination (platform/src/instances/README.md 1-2, CANCEL EFFECTIVE): a final backup kept 30 days, then
 * the runtime objects and storage, the database and the role are removed; its staging copy is terminated too.
 * If the final backup fails the instance stays `terminating` and the command
 * fails (retried, then dead-lettered): data is never destroyed unsaved.
 */
export async function terminate(cmd: Command<Ids & { reason: string }>): Promise<void> {
  const row0 = await loadOwned(cmd);
  if (row0.status === 'terminated') return;
  await withInstanceLock(row0.id, async () => {
    const row = await enter(
      row0.id,
      ['pending_payment', 'provisioning', 'running', 'stopping', 'stopped', 'starting', 'restarting', 'backing_up', 'restoring', 'suspended', 'error', 'migrating'],
      'terminating',
      causeOf(cmd, ACTOR, cmd.data.reason),
    );
    if (!row) return;
    // A staging copy ends with its original (README 6): Kill Bill cancelled its add-on with the base.
    await transact('instance', (t) => terminateCopiesOf(t, row, cmd.traceparent));
    const rt = await runtime();
    const st = await rt.status(row.id);
    if (row.db_name && st.state !== 'missing') {
      const done = await db('instance').oneOrNone(`SELECT 1 FROM backups WHERE instance_id = $1 AND kind = 'final' AND status = 'completed'`, [row.id]);
      if (!done) {
        const r = await takeBackup(cmd, row, undefined, 'final');
        if (!r.ok) throw new Error(`final backup failed: ${r.reason}`);
      }
    }
    await rt.remove(row.id);
    const pool = await poolOf(row);
    // A dedicated server goes as a whole (with its database and role); on a shared one only the instance's own.
    if (pool?.kind !== 'dedicated') await dropInstanceDatabase(instanceDbNames(row.id, row.customer_id), {}, serverAdmin(pool));
    // Its own server: the one it is on, or one a move interrupted by a crash made before switching to it.
    if (pool?.kind === 'dedicated' || (await getPool(dedicatedPoolName(row.id)))) await removeDedicatedServer(row.id);
    await settle(row.id, 'terminated', causeOf(cmd, ACTOR, cmd.data.reason), {
      terminated_at: new Date(),
      db_password_sealed: null,
      admin_password_sealed: null,
      progress: null,
      previous_status: null,
      health: 'unknown',
      health_failures: 0,
    });
  });
}

/** Records billing's view of the instance (billing.status_changed); no status change. */
export async function billingStatusChanged(cmd: Command<{ customerId: string; instanceId?: string; subscriptionId?: string; status: InstanceRow['billing_status']; reason: string }>): Promise<void> {
  const { customerId, instanceId, subscriptionId, status, reason } = cmd.data;
  await db('instance').tx(async (t) => {
    const rows = await t.manyOrNone<InstanceRow>(
      `SELECT * FROM instances WHERE customer_id = $1 AND status <> 'terminated'
         AND ($2::uuid IS NULL OR id = $2) AND ($3::uuid IS NULL OR subscription_id = $3) FOR UPDATE`,
      [customerId, instanceId ?? null, subscriptionId ?? null],
    );
    // A staging copy is billed on its original's subscription: its billing status is the original's (README 6).
    const copies = rows.length ? await t.manyOrNone<InstanceRow>(`SELECT * FROM instances WHERE staging_of = ANY($1::uuid[]) AND status <> 'terminated' FOR UPDATE`, [rows.map((r) => r.id)]) : [];
    for (const r of [...rows, ...copies]) {
      if (r.billing_status === status) continue;
      await t.none('UPDATE instances SET billing_status = $2, updated_at = now() WHERE id = $1', [r.id, status]);
      await recordHistory(t, r.id, r.status, r.status, causeOf(cmd, 'lifecycle', `billing ${r.billing_status} → ${status}: ${reason}`));
    }
  });
}
