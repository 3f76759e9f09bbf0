/**
 * Per-instance database and role, through the provisioner role (CREATEDB,
 * CREATEROLE, not superuser). Every statement is safe to run twice: a
 * retried provisioning step or a second terminate finds the work done.
 */
import { provisionerDb, roleName, type Db } from '../db/index.ts';
import { PROVISIONER_ROLE } from '../db/services.ts';
import { poolConnection, type PoolRow } from './pools.ts';

const ident = (s: string) => `"${s.replace(/"/g, '""')}"`;
const literal = (s: string) => `'${s.replace(/'/g, "''")}'`;

/**
 * A GRANT or REVOKE on the `postgres` database: its ACL is one catalogue row
 * every provisioning updates, so two at once fail with "tuple concurrently
 * updated"; run again, it succeeds.
 */
export async function grantOnPostgres(pdb: Db, sql: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await pdb.none(sql);
      return;
    } catch (err) {
      if (attempt >= 5 || !/tuple concurrently updated/.test((err as Error).message)) throw err;
      await new Promise((r) => setTimeout(r, 50 * attempt));
    }
  }
}

/** Who runs the DDL on the instance's server: its admin connection and role (pools.ts poolAdmin); default the platform's provisioner. */
export type ServerAdmin = { db: Db; role: string };

const platformAdmin = (): ServerAdmin => ({ db: provisionerDb(), role: roleName(PROVISIONER_ROLE) });

/** The admin of a pool's server: its own credentials (pools.ts), or the provisioner on the platform's server. */
export function serverAdmin(pool: PoolRow | undefined | null): ServerAdmin {
  const c = poolConnection(pool);
  return c && pool?.admin_user ? { db: c, role: pool.admin_user } : platformAdmin();
}

/**
 * Creates (or re-keys) role `role` with `password` and database `database`
 * owned by it, reachable by that role only (PUBLIC has no CONNECT). The
 * role may hold at most `connectionLimit` connections (db-limits.ts), so one
 * tenant cannot exhaust the shared server.
 * `createSql` is the Odoo contract's CREATE DATABASE (createDatabaseSql:
 * template0, LC_COLLATE 'C'), given by the caller: importing the contract
 * here would make every function bundling this module look like it needs
 * the provisioner's password (deploy/analyze.ts). Its extensions are made
 * by its owner (odoo.ts createOdooExtensions).
 */
export async function ensureInstanceDatabase(p: { role: string; database: string; password: string; connectionLimit: number; createSql: string }, admin: ServerAdmin = platformAdmin()): Promise<void> {
  if (!Number.isInteger(p.connectionLimit) || p.connectionLimit < 1) throw new Error(`invalid connection limit ${p.connectionLimit}`);
  const pdb = admin.db;
  const provisioner = admin.role;
  const hasRole = await pdb.oneOrNone('SELECT 1 FROM pg_roles WHERE rolname = $1', [p.role]);
  // Role DDL takes no bind parameters; the password is ours (url-safe base64), quoted.
  if (!hasRole) {
    await pdb.none(`CREATE ROLE ${ident(p.role)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE CONNECTION LIMIT ${p.connectionLimit} PASSWORD ${literal(p.password)}`).catch((err) => {
      if (err?.code !== '42710') throw err;
    }); // created concurrently
  } else {
    await pdb.none(`ALTER ROLE ${ident(p.role)} CONNECTION LIMIT ${p.connectionLimit} PASSWORD ${literal(p.password)}`);
  }
  // To create a database owned by the role, the provisioner must be a member of it.
  const member = await pdb.oneOrNone('SELECT 1 FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member WHERE r.rolname = $1 AND u.rolname = $2', [
    p.role,
    provisioner,
  ]);
  if (!member) await pdb.none(`GRANT ${ident(p.role)} TO ${ident(provisioner)}`);
  const hasDb = await pdb.oneOrNone('SELECT 1 FROM pg_database WHERE datname = $1', [p.database]);
  if (!hasDb) {
    await pdb.none(p.createSql).catch((err) => {
      if (err?.code !== '42P04') throw err;
    });
  }
  await pdb.none(`REVOKE ALL ON DATABASE ${ident(p.database)} FROM PUBLIC`);
  await pdb.none(`GRANT CONNECT, TEMPORARY ON DATABASE ${ident(p.database)} TO ${ident(p.role)}`);
  // Odoo itself connects to `postgres` at start and for its db_server_status health (db/migrate.ts).
  await grantOnPostgres(pdb, `GRANT CONNECT ON DATABASE postgres TO ${ident(p.role)}`);
}

/**
 * Drops the instance database (closing its connections) and its role;
 * nothing left behind. `keepRole`: the database only (provisioning replaces
 * an empty database with a template's copy).
 */
export async function dropInstanceDatabase(p: { role: string; database: string }, o: { keepRole?: boolean } = {}, admin: ServerAdmin = platformAdmin()): Promise<void> {
  const pdb = admin.db;
  await pdb.none(`DROP DATABASE IF EXISTS ${ident(p.database)} WITH (FORCE)`);
  if (o.keepRole) return;
  // A role holding a privilege cannot be dropped: take back its CONNECT on `postgres` first.
  if (await pdb.oneOrNone('SELECT 1 FROM pg_roles WHERE rolname = $1', [p.role])) {
    await grantOnPostgres(pdb, `REVOKE CONNECT ON DATABASE postgres FROM ${ident(p.role)}`);
  }
  await pdb.none(`DROP ROLE IF EXISTS ${ident(p.role)}`);
}

/** Whether the database / role still exist (tests and terminate's own check). */
export async function instanceDatabaseExists(p: { role: string; database: string }, admin: ServerAdmin = platformAdmin()): Promise<{ database: boolean; role: boolean }> {
  const pdb = admin.db;
  const d = await pdb.oneOrNone('SELECT 1 FROM pg_database WHERE datname = $1', [p.database]);
  const r = await pdb.oneOrNone('SELECT 1 FROM pg_roles WHERE rolname = $1', [p.role]);
  return { database: !!d, role: !!r };
}
