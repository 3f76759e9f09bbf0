/**
 * Database pools (issue 20): the PostgreSQL servers instance databases live
 * on, each with a kind (`shared` or `dedicated`), a capacity in instances
 * and a state (`active`, `draining`, `degraded`, `unhealthy`). Provisioning
 * places a shared-plan database on the least-loaded active shared pool with
 * room (pool-health.ts keeps the states). The platform's own server is the first shared pool (`default`),
 * registered on first need, so a laptop setup needs nothing. Admin
 * credentials of other pools are sealed at rest (secrets.ts) and only
 * unsealed to connect.
 */
import pg from 'pg';
import { config } from '../config.ts';
import { db, pgp, type Db } from '../db/index.ts';
import { HttpError } from '../errors.ts';
import { log } from '../log.ts';
import { seal, unseal } from './secrets.ts';

export const DEFAULT_POOL = 'default';
export const POOL_STATES = ['active', 'draining', 'degraded', 'unhealthy'] as const;
export type PoolState = (typeof POOL_STATES)[number];
export type PoolKind = 'shared' | 'dedicated';

export type PoolRow = {
  name: string;
  kind: PoolKind;
  host: string;
  port: number;
  admin_user: string | null;
  admin_password_sealed: string | null;
  capacity: number;
  state: PoolState;
  health_failures: number;
  checked_at: Date | null;
  last_error: string | null;
  created_at: Date;
};

/** A pool as operators see it: no credentials, with its load. */
export type PoolView = Omit<PoolRow, 'admin_password_sealed'> & { instances: number };

const NAME_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** Registers the platform's own server as the shared pool `default` (once; an operator may resize or drain it later). */
export async function ensureDefaultPool(): Promise<void> {
  const c = config();
  await db('instance').none(`INSERT INTO db_pools (name, kind, host, port, capacity) VALUES ($1, 'shared', $2, $3, $4) ON CONFLICT (name) DO NOTHING`, [
    DEFAULT_POOL,
    c.DATABASE_HOST,
    c.DATABASE_PORT,
    c.DEFAULT_POOL_CAPACITY,
  ]);
}

/** Every pool with its instance count (terminated instances do not count). */
export async function listPools(): Promise<PoolView[]> {
  await ensureDefaultPool();
  const rows = await db('instance').manyOrNone<PoolRow & { instances: string }>(
    `SELECT p.*, (SELECT count(*) FROM instances i WHERE i.db_pool = p.name AND i.status <> 'terminated') AS instances
     FROM db_pools p ORDER BY p.created_at, p.name`,
  );
  return rows.map(({ admin_password_sealed: _s, ...r }) => ({ ...r, instances: Number(r.instances) }));
}

/**
 * The operators' page (GET /api/instances?pools=true, admins): each pool's
 * server, kind, capacity, load, health and the instances on it, without
 * any credential (not even the admin user's name).
 */
export async function poolsForOperators(): Promise<
  {
    name: string;
    kind: PoolKind;
    server: string;
    capacity: number;
    state: PoolState;
    checkedAt: string | null;
    lastError: string | null;
    instances: { id: string; name: string; subdomain: string; customerId: string; status: string; plan: string }[];
  }[]
> {
  const pools = await listPools();
  const rows = await db('instance').manyOrNone<{ id: string; name: string; subdomain: string; customer_id: string; status: string; plan: string; db_pool: string }>(
    `SELECT id, name, subdomain, customer_id, status, plan, db_pool FROM instances WHERE db_pool IS NOT NULL AND status <> 'terminated' ORDER BY created_at`,
  );
  return pools.map((p) => ({
    name: p.name,
    kind: p.kind,
    server: `${p.host}:${p.port}`,
    capacity: p.capacity,
    state: p.state,
    checkedAt: p.checked_at ? new Date(p.checked_at).toISOString() : null,
    lastError: p.last_error,
    instances: rows.filter((r) => r.db_pool === p.name).map((r) => ({ id: r.id, name: r.name, subdomain: r.subdomain, customerId: r.customer_id, status: r.status, plan: r.plan })),
  }));
}

export async function getPool(name: string): Promise<PoolRow | undefined> {
  return (await db('instance').oneOrNone<PoolRow>('SELECT * FROM db_pools WHERE name = $1', [name])) ?? undefined;
}

export type NewPool = { name: string; kind: PoolKind; host: string; port: number; adminUser: string; adminPassword: string; capacity: number };

/**
 * Adds a pool after checking its credentials work and may create databases
 * and roles (superuser, or CREATEDB and CREATEROLE). 400 naming the field on
 * bad input; 409 when the name is taken.
 */
export async function addPool(p: NewPool): Promise<PoolView> {
  const bad: Record<string, string> = {};
  if (!NAME_RE.test(p.name ?? '')) bad.name = 'lowercase letters, digits and hyphens, at most 63';
  if (p.kind !== 'shared' && p.kind !== 'dedicated') bad.kind = 'shared or dedicated';
  if (!p.host || /\s/.test(p.host)) bad.host = 'a host name or address';
  if (!Number.isInteger(p.port) || p.port < 1 || p.port > 65535) bad.port = 'an integer from 1 to 65535';
  if (!p.adminUser) bad.adminUser = 'required';
  if (!p.adminPassword) bad.adminPassword = 'required';
  if (!Number.isInteger(p.capacity) || p.capacity < 1) bad.capacity = 'an integer of at least 1';
  if (Object.keys(bad).length) throw HttpError.badRequest('Invalid pool', bad);
  await ensureDefaultPool(); // the platform's own server stays the first pool
  const c = new pg.Client({ host: p.host, port: p.port, user: p.adminUser, password: p.adminPassword, database: 'postgres', connectionTimeoutMillis: 5000 });
  c.on('error', () => {});
  try {
    await c.connect();
    const r = await c.query('SELECT rolsuper OR (rolcreatedb AND rolcreaterole) AS ok FROM pg_roles WHERE rolname = current_user');
    if (!r.rows[0]?.ok) throw HttpError.badRequest('The pool user cannot create databases and roles', { adminUser: 'needs superuser, or CREATEDB and CREATEROLE' });
  } catch (err) {
    if (err instanceof HttpError) throw err;
    throw HttpError.badRequest('Cannot connect to the pool', { host: `no connection with these credentials (${(err as Error).message.slice(0, 120)})` });
  } finally {
    await c.end().catch(() => {});
  }
  try {
    await db('instance').none(`INSERT INTO db_pools (name, kind, host, port, admin_user, admin_password_sealed, capacity) VALUES ($1, $2, $3, $4, $5, $6, $7)`, [
      p.name,
      p.kind,
      p.host,
      p.port,
      p.adminUser,
      seal(p.adminPassword),
      p.capacity,
    ]);
  } catch (err) {
    if ((err as { code?: string }).code === '23505') throw new HttpError(409, 'pool_exists', 'A pool with this name exists', { name: 'taken' });
    throw err;
  }
  return (await listPools()).find((x) => x.name === p.name)!;
}

/** Sets a pool's state (drain: no new placements; active again). */
export async function setPoolState(name: string, state: PoolState): Promise<void> {
  const r = await db('instance').result('UPDATE db_pools SET state = $2 WHERE name = $1', [name, state]);
  if (!r.rowCount) throw new HttpError(404, 'unknown_pool', 'No such pool', { name: 'unknown' });
}

/** Removes a pool that holds no instance (409 otherwise: drain and move them first). */
export async function removePool(name: string): Promise<void> {
  await db('instance').tx(async (t) => {
    const p = await t.oneOrNone('SELECT 1 FROM db_pools WHERE name = $1 FOR UPDATE', [name]);
    if (!p) throw new HttpError(404, 'unknown_pool', 'No such pool', { name: 'unknown' });
    const n = Number((await t.one(`SELECT count(*) AS n FROM instances WHERE db_pool = $1 AND status <> 'terminated'`, [name])).n);
    if (n > 0) throw new HttpError(409, 'pool_in_use', `The pool still holds ${n} instance database(s)`, { name: 'in use' });
    await t.none(`UPDATE instances SET db_pool = NULL WHERE db_pool = $1`, [name]);
    await t.none('DELETE FROM db_pools WHERE name = $1', [name]);
  });
  await forgetPoolConnection(name);
}

/** Closes and forgets a pool's cached admin connection (its server is going away). */
export async function forgetPoolConnection(name: string): Promise<void> {
  const cached = admins.get(name);
  admins.delete(name);
  await cached?.$pool.end().catch(() => {});
}

/** No shared pool can take another database: provisioning fails at `database` with this reason, nothing created. */
export class NoRoomError extends Error {
  constructor(pools: number) {
    super(pools === 0 ? 'no shared database server is registered' : `no shared database server has room: all ${pools} are full, draining or unhealthy`);
    this.name = 'NoRoomError';
  }
}

/**
 * Picks the least-loaded active shared pool with room (load / capacity,
 * then count, then name) and records it on the instance in one transaction
 * holding the pools' rows, so two placements cannot both take the last
 * place. An instance already placed keeps its pool.
 */
export async function placeInstance(instanceId: string): Promise<PoolRow> {
  await ensureDefaultPool();
  return db('instance').tx(async (t) => {
    const cur = await t.one<{ db_pool: string | null }>('SELECT db_pool FROM instances WHERE id = $1 FOR UPDATE', [instanceId]);
    if (cur.db_pool) return t.one<PoolRow>('SELECT * FROM db_pools WHERE name = $1', [cur.db_pool]);
    const pick = await leastLoaded(t);
    await t.none('UPDATE instances SET db_pool = $2, db_host = $3, db_port = $4, updated_at = now() WHERE id = $1', [instanceId, pick.name, pick.host, pick.port]);
    return pick;
  });
}

/** The least-loaded active (or degraded) shared pool with room, holding the pools' rows; NoRoomError when none. */
async function leastLoaded(t: Pick<Db, 'manyOrNone'>): Promise<PoolRow> {
  const pools = await t.manyOrNone<PoolRow & { load: string }>(
    `SELECT p.*, (SELECT count(*) FROM instances i WHERE i.db_pool = p.name AND i.status <> 'terminated') AS load
     FROM db_pools p WHERE p.kind = 'shared' ORDER BY p.name FOR UPDATE OF p`,
  );
  // A degraded pool (a failed check or two) still takes databases; unhealthy and draining ones do not.
  const open = pools
    .filter((p) => (p.state === 'active' || p.state === 'degraded') && Number(p.load) < p.capacity)
    .sort((a, b) => Number(a.load) / a.capacity - Number(b.load) / b.capacity || Number(a.load) - Number(b.load) || a.name.localeCompare(b.name));
  const pick = open[0];
  if (!pick) throw new NoRoomError(pools.length);
  const { load: _l, ...row } = pick;
  return row;
}

/**
 * The shared pool a database moving off its dedicated server goes to
 * (instances/move.ts), by the same rule as placement; the move records it
 * on the instance only at its switch.
 */
export async function pickSharedPool(): Promise<PoolRow> {
  await ensureDefaultPool();
  return db('instance').tx((t) => leastLoaded(t));
}

const admins = /* @__PURE__ */ new Map<string, Db>();

/**
 * The admin connection (maintenance database `postgres`) of a pool with
 * credentials, from its sealed password; undefined for the platform's own
 * server, where the provisioner role works (database.ts serverAdmin).
 */
export function poolConnection(pool: PoolRow | undefined | null): Db | undefined {
  if (!pool || !pool.admin_user || !pool.admin_password_sealed) return undefined;
  let a = admins.get(pool.name);
  if (!a) {
    a = pgp({ host: pool.host, port: pool.port, user: pool.admin_user, password: unseal(pool.admin_password_sealed), database: 'postgres', max: 4, connectionTimeoutMillis: 5000 });
    a.$pool.on('error', (err: Error) => log.warn({ pool: pool.name, reason: err.message }, 'idle pool connection lost'));
    admins.set(pool.name, a);
  }
  return a;
}

/** The pool an instance row is on (undefined: the platform's own server, before pools). */
export async function poolOf(row: { db_pool: string | null }): Promise<PoolRow | undefined> {
  return row.db_pool ? getPool(row.db_pool) : undefined;
}
