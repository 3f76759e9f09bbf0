/**
 * `platform migrate`: creates the service databases and roles that are
 * missing, locks each database to its own role, then applies the SQL
 * migrations of platform/migrations/common/ and <database>/ as that role (so the role
 * owns its tables). Running it again changes nothing.
 */
import path from 'node:path';
import pg from 'pg';
import { runner } from 'node-pg-migrate';
import { config, repoRoot } from '../config.ts';
import { connectionFor, databaseName, DATABASE_ROLE, PROVISIONER_ROLE, roleName, rolePassword, RUNTIME_ROLE, SERVICE_DATABASES, type ServiceDatabase } from './services.ts';

const ident = (s: string) => `"${s.replace(/"/g, '""')}"`;
const literal = (s: string) => `'${s.replace(/'/g, "''")}'`;

export type MigrateResult = {
  createdRoles: string[];
  createdDatabases: string[];
  applied: Record<string, string[]>;
};

/** Creates missing roles and databases, then runs pending migrations. */
export async function migrate(opts: { databases?: readonly ServiceDatabase[] } = {}): Promise<MigrateResult> {
  const databases = opts.databases ?? SERVICE_DATABASES;
  const admin = new pg.Client({ connectionString: config().DATABASE_ADMIN_URL, connectionTimeoutMillis: 5000 });
  await admin.connect();
  const result: MigrateResult = { createdRoles: [], createdDatabases: [], applied: {} };
  try {
    const roles: [string, string][] = [
      ...databases.map((d) => [DATABASE_ROLE[d], 'LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE'] as [string, string]),
      ...databases.flatMap((d) => (RUNTIME_ROLE[d] ? [[RUNTIME_ROLE[d], 'LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE'] as [string, string]] : [])),
      [PROVISIONER_ROLE, 'LOGIN NOSUPERUSER CREATEDB CREATEROLE'],
    ];
    for (const [role, attrs] of roles) {
      const name = roleName(role);
      const { rowCount } = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name]);
      if (!rowCount) {
        // CREATE ROLE cannot take bind parameters; the password is ours, quoted.
        await admin.query(`CREATE ROLE ${ident(name)} ${attrs} PASSWORD ${literal(rolePassword(role))}`);
        result.createdRoles.push(name);
      }
    }
    for (const d of databases) {
      const name = databaseName(d);
      const owner = roleName(DATABASE_ROLE[d]);
      const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
      if (!rowCount) {
        await admin.query(`CREATE DATABASE ${ident(name)} OWNER ${ident(owner)}`);
        // Only the owning role may connect: other services go through HTTP or events.
        await admin.query(`REVOKE CONNECT, TEMPORARY ON DATABASE ${ident(name)} FROM PUBLIC`);
        await admin.query(`GRANT CONNECT ON DATABASE ${ident(name)} TO ${ident(owner)}`);
        const runtime = RUNTIME_ROLE[d];
        if (runtime) await admin.query(`GRANT CONNECT ON DATABASE ${ident(name)} TO ${ident(roleName(runtime))}`);
        result.createdDatabases.push(name);
      }
    }
    await fenceMaintenanceDatabases(
      admin,
      roles.map(([role]) => roleName(role)),
    );
  } finally {
    await admin.end();
  }
  for (const d of databases) {
    result.applied[d] = await migrateDatabase(d);
  }
  return result;
}

/**
 * PUBLIC may not connect to `postgres` nor `template1`. The provisioner works
 * on `postgres` (it creates the tenants' databases), so it gets CONNECT
 * there by name, with the right to pass it on: real Odoo connects to
 * `postgres` at every start with `-d` (odoo/cli/server.py calls
 * service/db.py `_create_empty_database`, whose connection failure it does
 * not catch) and for `/web/health?db_server_status=1`, so each tenant role
 * gets CONNECT there by name too (database.ts), and nothing else: it can
 * create nothing there (PostgreSQL 15+ gives PUBLIC no CREATE on `public`).
 * Superusers are not affected. On PostgreSQL 16 and later the
 * service roles may also use the `reserved_connections` slots, so tenants
 * together can never take the platform's last connections (db-limits.ts
 * caps each tenant; infra/base/services/postgres.yaml sets the numbers).
 */
async function fenceMaintenanceDatabases(admin: pg.Client, serviceRoles: string[]): Promise<void> {
  // The ACL of `postgres` is one catalogue row that provisioning also updates (each tenant's CONNECT):
  // a GRANT beside another one fails with "tuple concurrently updated" (XX000) and is simply run again.
  const acl = async (sql: string) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await admin.query(sql);
      } catch (err) {
        if (attempt >= 5 || !/tuple concurrently updated/.test((err as Error).message)) throw err;
        await new Promise((r) => setTimeout(r, 50 * attempt));
      }
    }
  };
  await acl('REVOKE CONNECT, TEMPORARY ON DATABASE postgres FROM PUBLIC');
  await acl('REVOKE CONNECT, TEMPORARY ON DATABASE template1 FROM PUBLIC');
  await acl(`GRANT CONNECT ON DATABASE postgres TO ${ident(roleName(PROVISIONER_ROLE))} WITH GRANT OPTION`);
  const { rows } = await admin.query<{ v: number }>("SELECT current_setting('server_version_num')::int AS v");
  if (rows[0]!.v >= 160000) {
    for (const role of serviceRoles) await admin.query(`GRANT pg_use_reserved_connections TO ${ident(role)}`);
  }
}

async function migrateDatabase(d: ServiceDatabase): Promise<string[]> {
  const client = new pg.Client(connectionFor(DATABASE_ROLE[d], databaseName(d)));
  await client.connect();
  try {
    const root = path.join(repoRoot, 'platform/migrations');
    // common/ (outbox, processed events) applies to every service database;
    // the Kill Bill simulator's store is not a service and has no outbox.
    const dirs = d === 'killbill' ? [d] : ['common', d];
    const ran = await runner({
      dbClient: client,
      dir: dirs.map((x) => `${root}/${x}/*.sql`),
      useGlob: true,
      migrationsTable: 'pgmigrations',
      direction: 'up',
      checkOrder: true,
      log: () => {},
    });
    const runtime = RUNTIME_ROLE[d];
    if (runtime) {
      // Read and append, nothing else (the tables' owner keeps UPDATE and DELETE; only migrations log in as it).
      const r = ident(roleName(runtime));
      await client.query(`GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO ${r}`);
      await client.query(`GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO ${r}`);
      await client.query(`GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO ${r}`);
    }
    return ran.map((m) => m.name);
  } finally {
    await client.end();
  }
}

/** Drops every database and role of the current DB_NAMESPACE (tests only). */
export async function dropNamespace(): Promise<void> {
  const ns = config().DB_NAMESPACE;
  if (!ns) throw new Error('refusing to drop the default namespace');
  const admin = new pg.Client({ connectionString: config().DATABASE_ADMIN_URL });
  await admin.connect();
  try {
    const dbs = await admin.query('SELECT datname FROM pg_database WHERE starts_with(datname, $1)', [ns]);
    for (const { datname } of dbs.rows) {
      // Odoo template databases (instances/templates.ts) cannot be dropped while marked as templates.
      await admin.query(`ALTER DATABASE ${ident(datname)} WITH IS_TEMPLATE false`);
      await admin.query(`DROP DATABASE IF EXISTS ${ident(datname)} WITH (FORCE)`);
    }
    const roles = await admin.query('SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1)', [ns]);
    // Every DROP OWNED first: a tenant's CONNECT on `postgres` was granted by the provisioner, and
    // goes only with the provisioner's grants (CASCADE), whatever order the roles come in.
    for (const { rolname } of roles.rows) await admin.query(`DROP OWNED BY ${ident(rolname)} CASCADE`).catch(() => {});
    for (const { rolname } of roles.rows) await admin.query(`DROP ROLE IF EXISTS ${ident(rolname)}`);
  } finally {
    await admin.end();
  }
}
