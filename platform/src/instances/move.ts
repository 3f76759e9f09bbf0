/**
 * Moving an instance's database on a plan change between a shared and a
 * dedicated plan (issue 20 item 3). quota-set calls it, holding the
 * instance's lock, once the new plan is recorded. The instance is
 * `migrating` meanwhile; each step is an `instance.progress` (operation
 * `move`). Order: the target database is made first (nothing stops for a
 * target that cannot be made), then Odoo stops so nothing is written after
 * the dump, a backup, the restore on the target, a row-by-row count check,
 * the switch of the instance's connection, Odoo started on the target, and
 * only then the old database (or dedicated server) dropped. Any failure
 * before the old one is dropped leaves the instance on its old database,
 * back in its previous status, and removes the half-made copy. A stopped,
 * suspended or failed instance moves too, and stays as it was.
 */
import { config } from '../config.ts';
import { db } from '../db/index.ts';
import { log } from '../log.ts';
import { createDatabaseSql } from '../odoo/contract.ts';
import { runtime, type DesiredState, type InstanceSpec } from '../runtime/index.ts';
import { takeBackup } from './backups.ts';
import { causeOf, enter, settle, type Command } from './command.ts';
import { dropInstanceDatabase, ensureInstanceDatabase, serverAdmin } from './database.ts';
import { tenantConnectionLimit } from './db-limits.ts';
import { dedicatedPoolName, ensureDedicatedServer, managedByOperator, removeDedicatedServer, wantsDedicated } from './dedicated.ts';
import { createOdooExtensions, withTenant } from './odoo.ts';

type OdooDatabase = InstanceSpec['database'];
import { pickSharedPool, poolOf, type PoolRow } from './pools.ts';
import { reportProgress, safeReason } from './progress.ts';
import { updateInstance, type InstanceRow } from './repository.ts';
import { specOf } from './runtime-spec.ts';

export const MOVE_STEPS = ['prepare', 'stop', 'backup', 'restore', 'verify', 'switch', 'start', 'drop_old'] as const;
export type MoveStep = (typeof MOVE_STEPS)[number];

const ACTOR = 'quota-set';

/** Tests only: NODE_ENV=test and MOVE_FAIL_AT_STEP=<step> make that step fail. */
function injectedFailure(step: MoveStep): void {
  const c = config();
  if (c.NODE_ENV === 'test' && c.MOVE_FAIL_AT_STEP === step) throw new Error(`injected failure at step ${step}`);
}

/** Where the instance's database must be for its (new) plan, when that is not where it is; undefined when nothing moves. */
export async function moveNeeded(row: InstanceRow): Promise<'dedicated' | 'shared' | undefined> {
  if (!row.db_name || !row.db_password_sealed) return undefined; // not provisioned yet: provisioning places it
  const dedicatedNow = (await poolOf(row))?.kind === 'dedicated';
  const want = wantsDedicated(row.plan);
  return want === dedicatedNow ? undefined : want ? 'dedicated' : 'shared';
}

/** Exact row counts of every table of the instance's database (as its own role). */
async function rowCounts(d: OdooDatabase): Promise<Record<string, number>> {
  return withTenant(d, async (c) => {
    const tables = (
      await c.query(`SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) AS t FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1`)
    ).rows;
    const out: Record<string, number> = {};
    for (const { t } of tables) out[t] = Number((await c.query(`SELECT count(*) AS n FROM ${t}`)).rows[0].n);
    return out;
  });
}

/** The copy holds the same tables with the same number of rows as the original (Odoo was stopped: nothing changed since the dump). */
async function verifyCopy(from: OdooDatabase, to: OdooDatabase): Promise<void> {
  const [a, b] = await Promise.all([rowCounts(from), rowCounts(to)]);
  const differ = [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((t) => a[t] !== b[t]);
  if (differ.length) throw new Error(`the copy differs from the original in ${differ.length} table(s), e.g. ${differ.slice(0, 3).join(', ')}`);
}

/** Removes what a failed move made on the target (never the instance's current database). */
async function dropTarget(row: InstanceRow, target: PoolRow | undefined, old: PoolRow | undefined): Promise<void> {
  if (!target || target.name === old?.name) return;
  if (target.name === dedicatedPoolName(row.id)) return removeDedicatedServer(row.id);
  await dropInstanceDatabase({ role: row.db_role!, database: row.db_name! }, {}, serverAdmin(target));
}

async function startOn(spec: InstanceSpec): Promise<void> {
  const rt = await runtime();
  await rt.apply(spec, { replicas: 1 }); // odoo.conf names the database server: written again
  await rt.waitReady(spec.id, config().PROVISION_READY_TIMEOUT * 1000);
}

/** The statuses a move starts from, and returns to: Odoo runs again only if it ran. */
const MOVABLE = ['running', 'stopped', 'suspended', 'error'] as const;
type Movable = (typeof MOVABLE)[number];

/**
 * Moves the database to `to` ('dedicated': the instance's own server,
 * made if missing; 'shared': the least-loaded shared pool with room). Runs
 * for a `running`, `stopped`, `suspended` or `error` instance (or one left
 * `migrating` by a crash: the move starts over) and leaves it in that
 * status: a stopped or suspended one is not started (no `stop` or `start`
 * step), only its runtime's configuration names the new server for its
 * next start. An instance in `error` has Odoo stopped for the dump (it may
 * be crash-looping) and stays in `error`, its reason kept: its next start
 * (the customer's, or a provisioning retry) runs on the server its plan
 * promises, and a database that cannot be dumped simply stays where it is.
 * Returns the row as it ends. Never throws for a failed move: the instance
 * stays on its old database and the history says why.
 */
export async function moveDatabase(cmd: Command<unknown>, row0: InstanceRow, to: 'dedicated' | 'shared'): Promise<InstanceRow> {
  const where = to === 'dedicated' ? 'its own database server' : 'a shared database server';
  const row = row0.status === 'migrating' ? row0 : await enter(row0.id, MOVABLE, 'migrating', causeOf(cmd, ACTOR, `database moves to ${where}`));
  if (!row) return row0;
  const back: Movable = (MOVABLE as readonly string[]).includes(row.previous_status ?? '') ? (row.previous_status as Movable) : 'running';
  const idle: DesiredState = back === 'suspended' ? { replicas: 0, suspended: true } : { replicas: 0 };
  // Only a running Odoo is paused and started again (the customer sees those steps); an instance in error is stopped quietly.
  const steps = MOVE_STEPS.filter((s) => back === 'running' || (s !== 'start' && (s !== 'stop' || back === 'error')));
  const rt = await runtime();
  const oldSpec = specOf(row);
  const oldPool = await poolOf(row);
  const names = { role: oldSpec.database.user, database: oldSpec.database.name };
  let target: PoolRow | undefined;
  let switched = false;
  let step: MoveStep = 'prepare';
  const at = async (s: MoveStep) => {
    step = s;
    if (steps.includes(s)) await reportProgress(row, 'move', s, steps.indexOf(s) + 1, steps.length, cmd.traceparent);
    injectedFailure(s);
  };
  try {
    await at('prepare');
    target = to === 'dedicated' ? await ensureDedicatedServer(row) : await pickSharedPool();
    const targetSpec: InstanceSpec = { ...oldSpec, database: { ...oldSpec.database, host: target.host, port: target.port } };
    if (!managedByOperator(target)) {
      const admin = serverAdmin(target);
      await dropInstanceDatabase(names, { keepRole: true }, admin); // an earlier attempt's copy
      await ensureInstanceDatabase(
        { ...names, password: oldSpec.database.password, connectionLimit: tenantConnectionLimit(oldSpec.resources), createSql: createDatabaseSql(names.database, names.role) },
        admin,
      );
    }
    await createOdooExtensions(targetSpec.database);
    await at('stop');
    if (back === 'running') await rt.scale(row.id, 0);
    if (back === 'error') await rt.scale(row.id, 0).catch((e) => cmd.log.info({ instanceId: row.id, reason: safeReason(e) }, 'nothing to stop before the move'));
    await at('backup');
    const b = await takeBackup(cmd, row, undefined, 'safety');
    if (!b.ok) throw new Error(`the backup failed: ${b.reason}`);
    await at('restore');
    await rt.restore(targetSpec, b.backupId);
    await at('verify');
    await verifyCopy(oldSpec.database, targetSpec.database);
    await at('switch');
    const moved = await updateInstance(db('instance'), row.id, { db_pool: target.name, db_host: target.host, db_port: target.port });
    switched = true;
    await at('start');
    // Not running: it stays as it was, but its runtime (odoo.conf) must name the new server for its next start.
    if (back === 'running') await startOn(specOf(moved));
    else await rt.apply(specOf(moved), idle);
  } catch (err) {
    const reason = safeReason(err);
    cmd.log.warn({ instanceId: row.id, step, reason }, 'database move failed; the instance stays on its old database');
    if (switched) await updateInstance(db('instance'), row.id, { db_pool: row.db_pool, db_host: row.db_host, db_port: row.db_port });
    await dropTarget(row, target, oldPool).catch((e) => cmd.log.warn({ instanceId: row.id, reason: safeReason(e) }, 'the half-made copy was not removed'));
    let to: InstanceRow['status'] = back;
    if (back === 'running') {
      const restarted = await startOn(oldSpec).then(
        () => true,
        (e) => void cmd.log.warn({ instanceId: row.id, reason: safeReason(e) }, 'the instance did not start again on its old database'),
      );
      if (!restarted) to = 'error';
    } else if (switched) {
      // Its runtime may already name the new server: written again for the old one.
      await rt.apply(oldSpec, idle).catch((e) => cmd.log.warn({ instanceId: row.id, reason: safeReason(e) }, 'the runtime still names the new server'));
    }
    return settle(row.id, to, causeOf(cmd, ACTOR, `database move to ${where} failed at ${step} (still on its previous server): ${reason}`), {
      previous_status: null,
      ...(to === 'error' && back !== 'error' ? { error_step: 'move', error_reason: reason } : {}),
    });
  }
  // The instance is on the target: the old copy goes. A failure here leaves a leftover, not a broken instance.
  await at('drop_old').catch(() => {});
  try {
    if (oldPool?.kind === 'dedicated') await removeDedicatedServer(row.id);
    else await dropInstanceDatabase(names, {}, serverAdmin(oldPool));
  } catch (err) {
    log.warn({ instanceId: row.id, reason: safeReason(err) }, 'the old database was not dropped after a move');
  }
  return settle(row.id, back, causeOf(cmd, ACTOR, `database moved to ${where}`), { previous_status: null });
}

/** quota-set's hook: moves the database when the plan's kind of server changed. Returns the row as it ends. */
export async function moveIfNeeded(cmd: Command<unknown>, row: InstanceRow): Promise<InstanceRow> {
  const to = await moveNeeded(row);
  if (!to) return row;
  if (![...MOVABLE, 'migrating'].includes(row.status)) {
    // Busy (a backup, a restore, a start...): the database stays where it is for now; the next instance.quota moves it.
    cmd.log.info({ instanceId: row.id, status: row.status }, 'database move deferred: the instance is busy');
    return row;
  }
  return moveDatabase(cmd, row, to);
}
