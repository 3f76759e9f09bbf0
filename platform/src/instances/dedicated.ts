/**
 * Dedicated database servers (issue 20 item 2): an instance whose plan's
 * catalogue entry says `dedicated` (plans.ts) gets its own PostgreSQL
 * server, made by the runtime driver (a real local server, or a
 * CloudNativePG Cluster), registered as a `dedicated` pool of capacity 1
 * named after the instance, and holding only that instance. Its superuser
 * password (local servers) is sealed in the pool row like any pool's.
 */
import { config } from '../config.ts';
import { db } from '../db/index.ts';
import { findPlan } from '../plans.ts';
import { runtime } from '../runtime/index.ts';
import { forgetPoolConnection, getPool, type PoolRow } from './pools.ts';
import type { InstanceRow } from './repository.ts';
import { specOf } from './runtime-spec.ts';
import { randomPassword, seal, unseal } from './secrets.ts';

const DEDICATED_PREFIX = 'dedicated-';

/** The pool name of an instance's dedicated server. */
export function dedicatedPoolName(instanceId: string): string {
  return `${DEDICATED_PREFIX}${instanceId.toLowerCase()}`;
}

/** The instance a dedicated pool belongs to (undefined for any other pool name). */
export function instanceOfDedicatedPool(pool: string): string | undefined {
  return pool.startsWith(DEDICATED_PREFIX) ? pool.slice(DEDICATED_PREFIX.length) : undefined;
}

/** Whether `plan` promises a dedicated database server. */
export function wantsDedicated(plan: string): boolean {
  return findPlan(plan, true)?.database === 'dedicated';
}

/** A dedicated server the platform does not administer (CloudNativePG made the database and role itself). */
export function managedByOperator(pool: PoolRow | undefined | null): boolean {
  return !!pool && pool.kind === 'dedicated' && !pool.admin_user;
}

/**
 * Creates (or starts) the instance's dedicated server and records its pool;
 * does NOT attach the instance to it (placement or a move does). Safe to
 * run again: the recorded password is reused, and a server found without
 * its record holds nothing and is made again.
 */
export async function ensureDedicatedServer(row: InstanceRow): Promise<PoolRow> {
  const name = dedicatedPoolName(row.id);
  const known = await getPool(name);
  const adminPassword = known?.admin_password_sealed ? unseal(known.admin_password_sealed) : randomPassword();
  const rt = await runtime();
  const server = await rt.ensureDatabaseServer(specOf(row), { adminPassword, fresh: !known });
  await rt.waitDatabaseServer(row.id, config().PROVISION_READY_TIMEOUT * 1000);
  await db('instance').none(
    `INSERT INTO db_pools (name, kind, host, port, admin_user, admin_password_sealed, capacity)
     VALUES ($1, 'dedicated', $2, $3, $4, $5, 1)
     ON CONFLICT (name) DO UPDATE SET host = EXCLUDED.host, port = EXCLUDED.port`,
    [name, server.host, server.port, server.admin?.user ?? null, server.admin ? seal(server.admin.password) : null],
  );
  return (await getPool(name))!;
}

/** Places the instance on its dedicated server (provisioning's database step). An instance already placed keeps its pool. */
export async function placeDedicated(row: InstanceRow): Promise<PoolRow> {
  const cur = await db('instance').one<{ db_pool: string | null }>('SELECT db_pool FROM instances WHERE id = $1', [row.id]);
  if (cur.db_pool && cur.db_pool !== dedicatedPoolName(row.id)) return (await getPool(cur.db_pool))!;
  const pool = await ensureDedicatedServer(row);
  await db('instance').none('UPDATE instances SET db_pool = $2, db_host = $3, db_port = $4, updated_at = now() WHERE id = $1', [row.id, pool.name, pool.host, pool.port]);
  return pool;
}

/**
 * Removes the instance's dedicated server and its pool (terminate, after
 * the final backup; a move back to a shared pool, after the switch). The
 * instance must no longer point at it.
 */
export async function removeDedicatedServer(instanceId: string): Promise<void> {
  const name = dedicatedPoolName(instanceId);
  const pool = await getPool(name);
  if (pool) await forgetPoolConnection(name);
  await (await runtime()).removeDatabaseServer(instanceId);
  // Only this instance was ever on it (a terminated one still names it).
  await db('instance').none('UPDATE instances SET db_pool = NULL WHERE db_pool = $1', [name]);
  await db('instance').none('DELETE FROM db_pools WHERE name = $1', [name]);
}
