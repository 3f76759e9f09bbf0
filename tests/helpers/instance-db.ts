/**
 * Creates and drops an instance-style database and role (as `provision`
 * does: a role with a password owning its database) for runtime tests, under
 * the test file's DB_NAMESPACE so dropNamespace() cleans up.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { config } from '@saasodoo/platform/config';
import type { InstanceSpec } from '@saasodoo/platform/runtime/types';

const ident = (s: string) => `"${s.replace(/"/g, '""')}"`;

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: config().DATABASE_ADMIN_URL });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** A fresh role + database; returns the spec's `database` part. */
export async function createInstanceDb(short: string): Promise<InstanceSpec['database']> {
  const c = config();
  const name = `${c.DB_NAMESPACE}odoo_${short}`;
  const password = randomBytes(18).toString('base64url');
  await admin(async (a) => {
    await a.query(`CREATE ROLE ${ident(name)} LOGIN PASSWORD '${password}'`);
    await a.query(`CREATE DATABASE ${ident(name)} OWNER ${ident(name)}`);
    await a.query(`REVOKE CONNECT ON DATABASE ${ident(name)} FROM PUBLIC`);
    // As provisioning grants it: Odoo connects to `postgres` at start and for db_server_status.
    await a.query(`GRANT CONNECT ON DATABASE postgres TO ${ident(name)}`);
  });
  return { host: c.DATABASE_HOST, port: c.DATABASE_PORT, name, user: name, password };
}

/** Runs SQL in the instance database as the instance role. */
export async function instanceQuery<R extends pg.QueryResultRow = any>(db: InstanceSpec['database'], sql: string, params: unknown[] = []): Promise<R[]> {
  const c = new pg.Client({ host: db.host, port: db.port, user: db.user, password: db.password, database: db.name });
  await c.connect();
  try {
    return (await c.query<R>(sql, params)).rows;
  } finally {
    await c.end();
  }
}

/** Drops the database and role (what terminate does). */
export async function dropInstanceDb(db: InstanceSpec['database']): Promise<void> {
  await admin(async (a) => {
    await a.query(`DROP DATABASE IF EXISTS ${ident(db.name)} WITH (FORCE)`);
    const role = await a.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [db.user]);
    if (role.rowCount) await a.query(`REVOKE CONNECT ON DATABASE postgres FROM ${ident(db.user)}`);
    await a.query(`DROP ROLE IF EXISTS ${ident(db.user)}`);
  });
}

/** Whether a database or role of that name still exists. */
export async function instanceDbExists(db: InstanceSpec['database']): Promise<{ database: boolean; role: boolean }> {
  return admin(async (a) => ({
    database: (await a.query('SELECT 1 FROM pg_database WHERE datname = $1', [db.name])).rowCount === 1,
    role: (await a.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [db.user])).rowCount === 1,
  }));
}
