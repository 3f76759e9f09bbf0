/**
 * Fast init from a template (issue 17 item 7), with the real local runtime
 * and PostgreSQL: the first instance makes the template database with Odoo's
 * own init, later ones are copies of it. A copy has the same modules as a
 * plain init, its own company, login, database.secret and database.uuid,
 * every object owned by its tenant role, the template's filestore under its
 * own name, and the template stays owned as it was (read from the shared
 * catalogues: nothing connects to a template).
 */
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { config, resetConfig } from '@saasodoo/platform/config';
import { db, provisionerDb } from '@saasodoo/platform/db/index';
import { unseal } from '@saasodoo/platform/instances/secrets';
import { createTestUser, type TestUser } from '../../helpers/auth.ts';
import { call, deliver, deliverQueued, provisioned, row, startHarness, type Harness } from './harness.ts';

let h: Harness;
let alice: TestUser;
let bob: TestUser;
let carol: TestUser;
let admin: TestUser;

beforeAll(async () => {
  h = await startHarness();
  [alice, bob, carol, admin] = await Promise.all([
    createTestUser({ firstName: 'Alice', lastName: 'A' }),
    createTestUser({ firstName: 'Bob', lastName: 'B' }),
    createTestUser({ firstName: 'Carol', lastName: 'C' }),
    createTestUser({ role: 'admin' }),
  ]);
});
afterAll(async () => {
  delete process.env.ODOO_TEMPLATES;
  resetConfig();
  await h?.stop();
});

async function sql(instanceId: string, text: string, values: unknown[] = []): Promise<any[]> {
  const r = await row(instanceId);
  const c = new pg.Client({ host: config().DATABASE_HOST, port: config().DATABASE_PORT, database: r.db_name, user: r.db_role, password: unseal(r.db_password_sealed) });
  await c.connect();
  try {
    return (await c.query(text, values)).rows;
  } finally {
    await c.end();
  }
}

const params = async (id: string) => Object.fromEntries((await sql(id, 'SELECT key, value FROM ir_config_parameter')).map((p) => [p.key, p.value]));
const modules = async (id: string) => await sql(id, 'SELECT name, state, demo FROM ir_module_module ORDER BY name');
/** Objects (tables, sequences, indexes, the extension...) in `database` owned by `role`, from pg_shdepend: no connection to that database. */
const ownedIn = async (database: string, role: string) =>
  Number(
    (
      await provisionerDb().one(
        `SELECT count(*) AS n FROM pg_shdepend s JOIN pg_database d ON d.oid = s.dbid JOIN pg_roles r ON r.oid = s.refobjid
   WHERE d.datname = $1 AND r.rolname = $2 AND s.deptype = 'o'`,
        [database, role],
      )
    ).n,
  );

describe('fast init from a template', () => {
  let first: string;
  let second: string;
  let template: { database: string; role: string };
  let templateOwned: number;

  it("the first instance makes the template with Odoo's init; it is a template nobody can connect to, owned by the provisioner, its objects by a role that owns no database", async () => {
    first = await provisioned(h, alice.accessToken, alice.userId, { name: 'Alpha Shop' });
    const r = await row(first);
    expect(r.status).toBe('running');
    template = await db('instance').one('SELECT database, role FROM odoo_templates WHERE odoo_version = $1 AND lang = $2 AND demo = false', ['17', 'en_US']);
    expect(r.odoo_template).toBe(template.database);
    const tdb = await provisionerDb().one(`SELECT datistemplate, datallowconn, pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = $1`, [template.database]);
    expect(tdb).toEqual({ datistemplate: true, datallowconn: false, owner: `${config().DB_NAMESPACE}provisioner` });
    expect(await provisionerDb().oneOrNone('SELECT 1 FROM pg_database WHERE datdba = (SELECT oid FROM pg_roles WHERE rolname = $1)', [template.role])).toBeNull();
    expect(await provisionerDb().one('SELECT rolcanlogin FROM pg_roles WHERE rolname = $1', [template.role])).toEqual({ rolcanlogin: false });
    templateOwned = await ownedIn(template.database, template.role);
    expect(templateOwned).toBeGreaterThan(10);
  });

  it('a second instance is a copy: every object owned by its tenant role, none by the template role; the template still owned as before', async () => {
    second = await provisioned(h, bob.accessToken, bob.userId, { name: 'Beta Shop' });
    const r = await row(second);
    expect(r.status).toBe('running');
    expect(r.odoo_template).toBe(template.database);
    expect(await sql(second, `SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tableowner <> current_user`)).toEqual([]);
    expect((await sql(second, `SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'`))[0].n).toBeGreaterThan(5);
    expect(await sql(second, `SELECT pg_get_userbyid(extowner) AS owner FROM pg_extension WHERE extname = 'pg_trgm'`)).toEqual([{ owner: r.db_role }]);
    expect(await ownedIn(r.db_name, template.role)).toBe(0);
    expect(await ownedIn(r.db_name, r.db_role)).toBeGreaterThan(10);
    // The template role keeps no grant in the copy.
    expect((await sql(second, `SELECT nspacl::text AS acl FROM pg_namespace WHERE nspname = 'public'`))[0].acl ?? '').not.toContain(template.role);
    expect(await ownedIn(template.database, template.role)).toBe(templateOwned);
    expect(await provisionerDb().one('SELECT datistemplate, datallowconn FROM pg_database WHERE datname = $1', [template.database])).toEqual({ datistemplate: true, datallowconn: false });
  });

  it('each copy has its own company, login, database.secret, database.uuid and creation date, no licence parameter', async () => {
    const [a, b] = [await params(first), await params(second)];
    for (const p of [a, b]) {
      expect(p['database.secret']).toMatch(/^[0-9a-f-]{36}$/);
      expect(p['database.uuid']).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-1[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(p['database.create_date']).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
      expect(Object.keys(p).filter((k) => k.startsWith('database.enterprise') || k.startsWith('database.expiration'))).toEqual([]);
    }
    expect(a['database.secret']).not.toBe(b['database.secret']);
    expect(a['database.uuid']).not.toBe(b['database.uuid']);
    const company = `SELECT c.name FROM res_company c JOIN ir_model_data d ON d.res_id = c.id AND d.module = 'base' AND d.name = 'main_company'`;
    expect(await sql(first, company)).toEqual([{ name: 'Alpha Shop' }]);
    expect(await sql(second, company)).toEqual([{ name: 'Beta Shop' }]);
    const login = `SELECT u.login FROM res_users u JOIN ir_model_data d ON d.res_id = u.id AND d.module = 'base' AND d.name = 'user_admin'`;
    expect(await sql(first, login)).toEqual([{ login: alice.email }]);
    expect(await sql(second, login)).toEqual([{ login: bob.email }]);
  });

  it("the template's filestore is copied under the copy's own database name: every stored attachment is there", async () => {
    const r = await row(second);
    const files = await sql(second, `SELECT store_fname FROM ir_attachment WHERE store_fname IS NOT NULL`);
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) expect(fs.existsSync(path.join(config().dataDir, 'instances', second, 'filestore', r.db_name, f.store_fname))).toBe(true);
  });

  it('a template made again between the copy of its database and the copy of its filestore: the copy is made again from the new one, attachments and all', async () => {
    const dave = await createTestUser({ firstName: 'Dave', lastName: 'D' });
    const created = await call(h.fn.instances, dave.accessToken, { body: { name: 'Race Shop', subdomain: `race-${Date.now().toString(36)}`, plan: 'basic-monthly', odooVersion: '17', trial: true } });
    const id = created.body.id;
    // The database step copies the template; the filestore step (odoo_init) fails before its turn.
    process.env.PROVISION_FAIL_AT_STEP = 'odoo_init';
    resetConfig();
    expect((await deliver(h.fn.provision, 'com.saasodoo.instance.provision', { instanceId: id, customerId: dave.userId })).status).toBe(204);
    expect(await row(id)).toMatchObject({ status: 'error', error_step: 'odoo_init', odoo_template: template.database });
    // A new Odoo build (the same stand-in under another command line): the next instance makes the template again.
    delete process.env.PROVISION_FAIL_AT_STEP;
    process.env.ODOO_COMMAND = `${process.execPath} ${path.resolve('platform/src/runtime/standin.mjs')}`;
    resetConfig();
    try {
      const erin = await createTestUser({ firstName: 'Erin', lastName: 'E' });
      const next = await provisioned(h, erin.accessToken, erin.userId, { name: 'Next Shop' });
      const rebuilt = (await row(next)).odoo_template;
      expect(rebuilt).not.toBe(template.database);
      expect(await provisionerDb().oneOrNone('SELECT 1 FROM pg_database WHERE datname = $1', [template.database])).toBeNull();
      // The retry finds its template gone: its copy is made again from the new one, with that one's filestore.
      expect((await call(h.fn.instanceAction, admin.accessToken, { body: { id, action: 'retry' } })).status).toBe(202);
      await deliverQueued(h.fn.provision, id, 'instance.provision');
      const r = await row(id);
      expect(r, JSON.stringify({ step: r.error_step, reason: r.error_reason })).toMatchObject({ status: 'running', odoo_template: rebuilt });
      const files = await sql(id, `SELECT store_fname FROM ir_attachment WHERE store_fname IS NOT NULL`);
      expect(files.length).toBeGreaterThan(0);
      for (const f of files) expect(fs.existsSync(path.join(config().dataDir, 'instances', id, 'filestore', r.db_name, f.store_fname))).toBe(true);
    } finally {
      delete process.env.ODOO_COMMAND;
      resetConfig();
    }
  });

  it('a plain init (templates off) installs the same modules', async () => {
    process.env.ODOO_TEMPLATES = 'false';
    resetConfig();
    const plain = await provisioned(h, carol.accessToken, carol.userId, { name: 'Plain Shop' });
    const r = await row(plain);
    expect(r.status).toBe('running');
    expect(r.odoo_template).toBeNull();
    expect(await modules(plain)).toEqual(await modules(second));
  });
});
