/**
 * Tenant fences on the shared PostgreSQL (issue 15, findings 6 and 7), on the
 * real server: PUBLIC cannot reach the maintenance databases (`postgres`,
 * `template1`); a tenant's role reaches `postgres` by name only because Odoo
 * connects there at start and for its db_server_status health (db/migrate.ts),
 * and can create nothing there; it holds at most its plan's number of
 * connections, past which it is refused while the platform's roles still connect.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { config } from '@saasodoo/platform/config';
import { closeDatabases } from '@saasodoo/platform/db/index';
import { dropNamespace, migrate } from '@saasodoo/platform/db/migrate';
import { databaseName, roleName, rolePassword } from '@saasodoo/platform/db/services';
import { dropInstanceDatabase, ensureInstanceDatabase, instanceDatabaseExists } from '@saasodoo/platform/instances/database';
import { createDatabaseSql } from '@saasodoo/platform/odoo/contract';
import { tenantConnectionLimit } from '@saasodoo/platform/instances/db-limits';
import { PLANS } from '@saasodoo/platform/plans';

const plan = (id: string) => PLANS.find((p) => p.id === id)!;
const ns = () => config().DB_NAMESPACE;

type Login = { user: string; password: string; database: string };
const tenant = { role: '', database: '', password: randomBytes(18).toString('base64url'), createSql: '' };
const asTenant = (database: string): Login => ({ user: tenant.role, password: tenant.password, database });
const asService = (role: string, database: string): Login => ({ user: roleName(role), password: rolePassword(role), database });

async function open(l: Login): Promise<pg.Client> {
  const c = new pg.Client({ host: config().DATABASE_HOST, port: config().DATABASE_PORT, ...l, connectionTimeoutMillis: 5000 });
  c.on('error', () => {});
  await c.connect();
  return c;
}

/** Connects, runs one query, disconnects; the PostgreSQL error code when refused. */
async function tryConnect(l: Login): Promise<'ok' | string> {
  try {
    const c = await open(l);
    await c.query('SELECT 1');
    await c.end();
    return 'ok';
  } catch (err) {
    return (err as { code?: string }).code ?? (err as Error).message;
  }
}

async function connLimit(role: string): Promise<number> {
  const admin = new pg.Client({ connectionString: config().DATABASE_ADMIN_URL });
  await admin.connect();
  try {
    return (await admin.query('SELECT rolconnlimit FROM pg_roles WHERE rolname = $1', [role])).rows[0].rolconnlimit;
  } finally {
    await admin.end();
  }
}

beforeAll(async () => {
  await migrate();
  tenant.role = `${ns()}odoo_fence1`;
  tenant.database = `${ns()}odoo_cust_fence1`;
  tenant.createSql = createDatabaseSql(tenant.database, tenant.role);
  await ensureInstanceDatabase({ ...tenant, connectionLimit: tenantConnectionLimit(plan('basic-monthly').resources) });
}, 60_000);

afterAll(async () => {
  await closeDatabases();
  await dropNamespace();
});

describe('maintenance database exposure', () => {
  it("a tenant's role cannot connect to template1 nor another database; on postgres (which Odoo needs) it can create nothing", async () => {
    expect(await tryConnect(asTenant('template1'))).toBe('42501');
    expect(await tryConnect(asTenant(databaseName('auth')))).toBe('42501');
    expect(await tryConnect(asTenant(tenant.database))).toBe('ok');
    const c = await open(asTenant('postgres'));
    try {
      await expect(c.query('CREATE TABLE public.squat (x int)')).rejects.toMatchObject({ code: '42501' });
    } finally {
      await c.end();
    }
  });

  it('a login role that is no tenant cannot connect to postgres nor template1 (PUBLIC has no CONNECT)', async () => {
    const stranger = { user: `${ns()}stranger`, password: randomBytes(18).toString('base64url') };
    const admin = new pg.Client({ connectionString: config().DATABASE_ADMIN_URL });
    await admin.connect();
    try {
      await admin.query(`CREATE ROLE "${stranger.user}" LOGIN PASSWORD '${stranger.password}'`);
      expect(await tryConnect({ ...stranger, database: 'postgres' })).toBe('42501');
      expect(await tryConnect({ ...stranger, database: 'template1' })).toBe('42501');
    } finally {
      await admin.query(`DROP ROLE IF EXISTS "${stranger.user}"`);
      await admin.end();
    }
  });

  it('terminate drops the tenant role although it holds CONNECT on postgres', async () => {
    const other = { role: `${ns()}odoo_fence2`, database: `${ns()}odoo_cust_fence2`, password: randomBytes(18).toString('base64url') };
    await ensureInstanceDatabase({ ...other, connectionLimit: 14, createSql: createDatabaseSql(other.database, other.role) });
    await dropInstanceDatabase(other);
    expect(await instanceDatabaseExists(other)).toEqual({ database: false, role: false });
  });

  it('the provisioner still works on postgres and every service role reaches its own database', async () => {
    expect(await tryConnect(asService('provisioner', 'postgres'))).toBe('ok');
    for (const [role, db] of [
      ['auth_service', 'auth'],
      ['billing_service', 'billing'],
      ['instance_service', 'instance'],
      ['communication_service', 'communication'],
      ['killbill_sim', 'killbill'],
    ] as const) {
      expect([role, await tryConnect(asService(role, databaseName(db)))]).toEqual([role, 'ok']);
    }
    // A second migrate keeps it so (the fence is re-applied, the grant too).
    await migrate();
    expect(await tryConnect(asService('provisioner', 'postgres'))).toBe('ok');
    expect(await tryConnect(asTenant('template1'))).toBe('42501');
  });
});

describe('tenant connection exhaustion', () => {
  it("the tenant role's CONNECTION LIMIT is its plan's number, and follows a plan change", async () => {
    expect(tenantConnectionLimit(plan('basic-monthly').resources)).toBe(14);
    expect(tenantConnectionLimit(plan('standard-monthly').resources)).toBe(18);
    expect(tenantConnectionLimit(plan('premium-monthly').resources)).toBe(26);
    expect(await connLimit(tenant.role)).toBe(14);
    await ensureInstanceDatabase({ ...tenant, connectionLimit: tenantConnectionLimit(plan('premium-monthly').resources) });
    expect(await connLimit(tenant.role)).toBe(26);
    await ensureInstanceDatabase({ ...tenant, connectionLimit: tenantConnectionLimit(plan('basic-monthly').resources) });
    expect(await connLimit(tenant.role)).toBe(14);
  });

  it('past its limit the tenant is refused, while the service roles and the provisioner still connect', async () => {
    const limit = await connLimit(tenant.role);
    const held: pg.Client[] = [];
    try {
      for (let i = 0; i < limit; i++) held.push(await open(asTenant(tenant.database)));
      expect(await tryConnect(asTenant(tenant.database))).toBe('53300'); // too_many_connections
      expect(await tryConnect(asService('auth_service', databaseName('auth')))).toBe('ok');
      expect(await tryConnect(asService('instance_service', databaseName('instance')))).toBe('ok');
      expect(await tryConnect(asService('provisioner', 'postgres'))).toBe('ok');
    } finally {
      await Promise.all(held.map((c) => c.end()));
    }
  });
});
