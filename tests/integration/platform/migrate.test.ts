import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { config } from '@saasodoo/platform/config';
import { databaseName, roleName, rolePassword } from '@saasodoo/platform/db/services';
import { dropNamespace, migrate } from '@saasodoo/platform/db/migrate';

afterAll(() => dropNamespace());

async function canConnect(role: string, database: string): Promise<boolean> {
  const c = new pg.Client({ host: config().DATABASE_HOST, port: config().DATABASE_PORT, user: roleName(role), password: rolePassword(role), database });
  try {
    await c.connect();
    await c.end();
    return true;
  } catch (err) {
    expect((err as Error).message).toMatch(/permission denied|not permitted|CONNECT/i);
    return false;
  }
}

describe('platform migrate', () => {
  it('creates databases and roles, and a second run changes nothing', async () => {
    const first = await migrate();
    expect(first.createdDatabases).toContain(databaseName('auth'));
    expect(first.createdRoles).toContain(roleName('provisioner'));
    expect(first.applied.auth.length).toBeGreaterThan(0);
    const second = await migrate();
    expect(second).toEqual({ createdRoles: [], createdDatabases: [], applied: Object.fromEntries(Object.keys(first.applied).map((k) => [k, []])) });
  });

  it('each role connects only to its own database', async () => {
    expect(await canConnect('auth_service', databaseName('auth'))).toBe(true);
    expect(await canConnect('auth_service', databaseName('billing'))).toBe(false);
    expect(await canConnect('billing_service', databaseName('instance'))).toBe(false);
  });

  it('the provisioner may create databases and roles but is no superuser', async () => {
    const admin = new pg.Client({ connectionString: config().DATABASE_ADMIN_URL });
    await admin.connect();
    const { rows } = await admin.query('SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = $1', [roleName('provisioner')]);
    await admin.end();
    expect(rows[0]).toEqual({ rolsuper: false, rolcreatedb: true, rolcreaterole: true });
  });
});
