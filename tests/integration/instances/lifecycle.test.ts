/**
 * An instance's life with the real local runtime and PostgreSQL: provision
 * (refused for a forged customer) → running, the admin password shown once,
 * stop / start / restart, backup → change data → restore → data back, the
 * signed download link, and delete → terminate leaving no database, role,
 * directory or process (only the final backup, kept 30 days).
 */
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { config } from '@saasodoo/platform/config';
import { instanceDatabaseExists } from '@saasodoo/platform/instances/database';
import { instanceDbNames } from '@saasodoo/platform/instances/names';
import { unseal } from '@saasodoo/platform/instances/secrets';
import { probeOne } from '@saasodoo/platform/runtime/health';
import { runtime } from '@saasodoo/platform/runtime/index';
import { signBackupLink } from '@saasodoo/platform/runtime/backup-links';
import type { LocalRuntimeStatus } from '@saasodoo/platform/runtime/local/driver';
import { createTestUser, type TestUser } from '../../helpers/auth.ts';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startGateway } from '@saasodoo/platform/host/gateway';
import type { Supervisor } from '@saasodoo/platform/host/supervisor';
import { PROVISION_STEPS } from '@saasodoo/platform/instances/provisioning';
import { verifyOdooPassword } from '@saasodoo/platform/odoo/contract';
import { call, deliver, odooLoginAt, deliverQueued, downloadBackup, queued, row, startHarness, until, type Harness } from './harness.ts';

let h: Harness;
let alice: TestUser;
let bob: TestUser;
let id: string;
let gateway: http.Server;
let oldPassword: string;

beforeAll(async () => {
  h = await startHarness();
  [alice, bob] = await Promise.all([createTestUser({ firstName: 'Alice', lastName: 'Owner' }), createTestUser()]);
  gateway = await startGateway({ port: 0, supervisor: {} as Supervisor, baseDomain: 'localhost', instanceRouter: (s) => h.router(s) });
});
afterAll(async () => {
  await new Promise((r) => gateway?.close(r));
  await h?.stop();
});

/** Odoo's JSON-RPC login at the instance's URL (its host, through the gateway): the uid, or the exception name. */
async function odooLogin(login: string, password: string): Promise<{ uid?: number; error?: string }> {
  const { url } = (await call(h.fn.instances, alice.accessToken, { query: { id } })).body.odoo;
  return odooLoginAt((gateway.address() as AddressInfo).port, new URL(url).host, (await row(id)).db_name, login, password);
}

/** Runs SQL in the instance's own database as its own role, as Odoo does. */
async function sql(instanceId: string, text: string): Promise<any[]> {
  const r = await row(instanceId);
  const c = new pg.Client({
    host: config().DATABASE_HOST,
    port: config().DATABASE_PORT,
    database: r.db_name,
    user: r.db_role,
    password: unseal(r.db_password_sealed),
  });
  await c.connect();
  try {
    return (await c.query(text)).rows;
  } finally {
    await c.end();
  }
}

async function action(user: TestUser, action: string, extra: Record<string, unknown> = {}) {
  return call(h.fn.instanceAction, user.accessToken, { body: { id, action, ...extra } });
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('instance lifecycle', () => {
  it('a forged customer cannot provision the instance', async () => {
    const r = await call(h.fn.instances, alice.accessToken, { body: { name: 'Shop', subdomain: `life-${Date.now().toString(36)}`, plan: 'basic-monthly', odooVersion: '17', trial: true } });
    id = r.body.id;
    const forged = await deliver(h.fn.provision, 'com.saasodoo.instance.provision', { instanceId: id, customerId: bob.userId });
    expect(forged.status).toBe(400);
    expect(JSON.parse(forged.body).error.code).toBe('customer_mismatch');
    expect((await row(id)).status).toBe('pending_payment');
  });

  it('provisions: database, role (no PUBLIC connect), storage, runtime, running, ready; progress streamed', async () => {
    const p = await deliver(h.fn.provision, 'com.saasodoo.instance.provision', { instanceId: id, customerId: alice.userId });
    expect(p.status).toBe(204);
    const r = await row(id);
    expect(r.status).toBe('running');
    const names = instanceDbNames(id, alice.userId);
    expect(r.db_name).toBe(names.database);
    expect(await instanceDatabaseExists(names)).toEqual({ database: true, role: true });
    const acl = await sql(id, `SELECT datacl::text AS acl FROM pg_database WHERE datname = current_database()`);
    expect(acl[0].acl).not.toMatch(/(^|[{,])=[^,}]*c/); // PUBLIC has no CONNECT
    const limit = await sql(id, 'SELECT rolconnlimit FROM pg_roles WHERE rolname = current_user');
    expect(limit[0].rolconnlimit).toBe(14); // the Basic plan's connections (instances/db-limits.ts)
    expect(fs.existsSync(path.join(config().dataDir, 'instances', id, 'filestore'))).toBe(true);
    const st = await (await runtime()).status(id);
    expect(st.state).toBe('running');
    expect((await probeOne(st.healthUrl!)).ok).toBe(true);
    expect(r.progress).toMatchObject({ operation: 'provision', step: 'ready', index: PROVISION_STEPS.length, total: PROVISION_STEPS.length });
    await until('ready event', () => h.events.some((e) => e.type === 'com.saasodoo.instance.ready' && e.subject === id));
    const steps = h.events.filter((e) => e.type === 'com.saasodoo.instance.progress' && e.subject === id).map((e) => e.data.step);
    expect(steps).toEqual(['claim', 'database', 'storage', 'quota', 'odoo_init', 'odoo_configure', 'runtime', 'wait_ready', 'ready']);
    // Secrets never travel in events.
    const password = unseal(r.db_password_sealed);
    expect(JSON.stringify(h.events)).not.toContain(password);
  });

  it('a redelivered provision command changes nothing', async () => {
    const before = await row(id);
    const again = await deliver(h.fn.provision, 'com.saasodoo.instance.provision', { instanceId: id, customerId: alice.userId });
    expect(again.status).toBe(204);
    expect((await row(id)).updated_at).toEqual(before.updated_at);
  });

  it("initialises Odoo's database as Odoo does: base installed, no demo data, collation C, pg_trgm; configured for the customer", async () => {
    expect(await sql(id, `SELECT name, state, demo FROM ir_module_module WHERE name = 'base'`)).toEqual([{ name: 'base', state: 'installed', demo: false }]);
    expect(await sql(id, `SELECT count(*)::int AS n FROM ir_model_data WHERE module = 'base' AND name = 'user_demo'`)).toEqual([{ n: 0 }]);
    expect(await sql(id, `SELECT datcollate FROM pg_database WHERE datname = current_database()`)).toEqual([{ datcollate: 'C' }]);
    expect(await sql(id, `SELECT e.extname, r.rolname FROM pg_extension e JOIN pg_roles r ON r.oid = e.extowner WHERE extname = 'pg_trgm'`)).toEqual([
      { extname: 'pg_trgm', rolname: (await row(id)).db_role },
    ]);
    const [admin] = await sql(
      id,
      `SELECT u.login, p.name, p.email FROM res_users u JOIN res_partner p ON p.id = u.partner_id
      JOIN ir_model_data d ON d.res_id = u.id AND d.module = 'base' AND d.name = 'user_admin'`,
    );
    expect(admin).toEqual({ login: alice.email, name: 'Alice Owner', email: alice.email });
    expect(await sql(id, `SELECT c.name, p.name AS partner, p.complete_name FROM res_company c JOIN res_partner p ON p.id = c.partner_id`)).toEqual([
      { name: 'Shop', partner: 'Shop', complete_name: 'Shop' },
    ]);
    const params = Object.fromEntries((await sql(id, `SELECT key, value FROM ir_config_parameter WHERE key LIKE 'web.base.url%'`)).map((p) => [p.key, p.value]));
    const r = await row(id);
    expect(params).toEqual({ 'web.base.url': `http://${r.subdomain}.localhost:8080`, 'web.base.url.freeze': 'True' });
    // No 'admin' user is left: Odoo's default login never works on a customer's instance.
    expect(await sql(id, `SELECT count(*)::int AS n FROM res_users WHERE login = 'admin'`)).toEqual([{ n: 0 }]);
  });

  it("shows the Odoo password once, to the owner; it and the customer's email log in to Odoo at the instance URL; admin/admin and a wrong password do not", async () => {
    const first = await call(h.fn.instances, alice.accessToken, { query: { id } });
    expect(first.body.adminPassword).toMatch(/^[A-Za-z0-9_-]{24}$/);
    const { subdomain, db_name: database } = await row(id);
    expect(first.body.odoo).toEqual({ url: `http://${subdomain}.localhost:8080`, database, login: alice.email });
    const second = await call(h.fn.instances, alice.accessToken, { query: { id } });
    expect(second.body.adminPassword).toBeUndefined();
    const r = await row(id);
    expect(r.admin_password_sealed).toBeNull();
    expect(r.admin_password_shown).toBe(true);
    // Only Odoo's own hash is kept, the same one Odoo has.
    const [stored] = await sql(id, `SELECT password FROM res_users WHERE login = '${alice.email.replace(/'/g, "''")}'`);
    expect(stored.password).toMatch(/^\$pbkdf2-sha512\$600000\$[A-Za-z0-9./]{22}\$[A-Za-z0-9./]{86}$/);
    expect(r.admin_password_hash).toBe(stored.password);
    expect(await verifyOdooPassword(first.body.adminPassword, stored.password)).toBe(true);
    expect(JSON.stringify(h.events)).not.toContain(first.body.adminPassword);

    const [uid] = await sql(id, `SELECT res_id FROM ir_model_data WHERE module = 'base' AND name = 'user_admin'`);
    expect(await odooLogin(alice.email, first.body.adminPassword)).toEqual({ uid: uid.res_id });
    expect(await odooLogin(alice.email, `${first.body.adminPassword}x`)).toEqual({ error: 'odoo.exceptions.AccessDenied' });
    expect(await odooLogin('admin', 'admin')).toEqual({ error: 'odoo.exceptions.AccessDenied' });
    oldPassword = first.body.adminPassword;
  });

  it('reset_odoo_password: only the owner; a new password shown once; the old one no longer logs in', async () => {
    expect((await action(bob, 'reset_odoo_password')).status).toBe(404);
    const reset = await action(alice, 'reset_odoo_password');
    expect(reset.status).toBe(200);
    expect(reset.body).toEqual({ id, status: 'running' });
    const shown = (await call(h.fn.instances, alice.accessToken, { query: { id } })).body.adminPassword;
    expect(shown).toMatch(/^[A-Za-z0-9_-]{24}$/);
    expect(shown).not.toBe(oldPassword);
    expect((await call(h.fn.instances, alice.accessToken, { query: { id } })).body.adminPassword).toBeUndefined();
    expect(await odooLogin(alice.email, oldPassword)).toEqual({ error: 'odoo.exceptions.AccessDenied' });
    expect((await odooLogin(alice.email, shown)).uid).toBeGreaterThan(0);
    expect(JSON.stringify(h.events)).not.toContain(shown);
  });

  it('stop → start → restart', async () => {
    expect((await action(alice, 'stop')).body.status).toBe('stopping');
    expect((await deliverQueued(h.fn.instanceOps, id, 'instance.stop')).status).toBe(204);
    expect((await row(id)).status).toBe('stopped');
    expect((await (await runtime()).status(id)).state).toBe('stopped');
    expect((await action(alice, 'stop')).status).toBe(409);

    expect((await action(alice, 'start')).body.status).toBe('starting');
    await deliverQueued(h.fn.instanceOps, id, 'instance.start');
    expect((await row(id)).status).toBe('running');

    const pid = ((await (await runtime()).status(id)) as LocalRuntimeStatus).pid;
    expect((await action(alice, 'restart')).body.status).toBe('restarting');
    await deliverQueued(h.fn.instanceOps, id, 'instance.restart');
    expect((await row(id)).status).toBe('running');
    expect(((await (await runtime()).status(id)) as LocalRuntimeStatus).pid).not.toBe(pid);
    const hist = (await call(h.fn.instances, alice.accessToken, { query: { id } })).body.history.map((x: any) => `${x.from}>${x.to}`);
    expect(hist).toEqual(expect.arrayContaining(['running>stopping', 'stopping>stopped', 'stopped>starting', 'starting>running', 'running>restarting', 'restarting>running']));
  });

  let backupId: string;
  it('backup → change data → restore → data back', async () => {
    await sql(id, `CREATE TABLE notes (v text); INSERT INTO notes VALUES ('before')`);
    const filestore = path.join(config().dataDir, 'instances', id, 'filestore', 'doc.txt');
    fs.writeFileSync(filestore, 'before');
    expect((await action(alice, 'backup')).body.status).toBe('backing_up');
    const cmd = await queued(id, 'instance.backup');
    backupId = cmd.data.backupId;
    await deliverQueued(h.fn.instanceOps, id, 'instance.backup');
    expect((await row(id)).status).toBe('running');
    const got = await call(h.fn.instances, alice.accessToken, { query: { id } });
    const b = got.body.backups.find((x: any) => x.id === backupId);
    expect(b).toMatchObject({ kind: 'manual', status: 'completed' });
    expect(b.databaseBytes).toBeGreaterThan(0);
    expect(b.filestoreBytes).toBeGreaterThan(0);

    await sql(id, `UPDATE notes SET v = 'after'`);
    fs.writeFileSync(filestore, 'after');
    expect((await action(alice, 'restore', { backupId })).status).toBe(409); // running: stop first
    await action(alice, 'stop');
    await deliverQueued(h.fn.instanceOps, id, 'instance.stop');
    expect((await action(alice, 'restore', { backupId })).body.status).toBe('restoring');
    await deliverQueued(h.fn.instanceOps, id, 'instance.restore');
    expect((await row(id)).status).toBe('stopped');
    expect(await sql(id, 'SELECT v FROM notes')).toEqual([{ v: 'before' }]);
    expect(fs.readFileSync(filestore, 'utf8')).toBe('before');
    await until('restore_completed', () => h.events.some((e) => e.type === 'com.saasodoo.instance.restore_completed' && e.subject === id));
    const kinds = (await call(h.fn.instances, alice.accessToken, { query: { id } })).body.backups.map((x: any) => x.kind);
    expect(kinds).toContain('safety');
  });

  it('a backup whose process died mid-way (left running) is taken again when its command comes back', async () => {
    expect((await action(alice, 'backup')).body.status).toBe('backing_up');
    const cmd = await queued(id, 'instance.backup');
    // What a SIGKILLed instance-ops leaves: the backup row `running`, the instance `backing_up`, the command redelivered.
    const { db } = await import('@saasodoo/platform/db/index');
    await db('instance').none(`INSERT INTO backups (id, instance_id, kind, status) VALUES ($1, $2, 'manual', 'running') ON CONFLICT (id) DO UPDATE SET status = 'running'`, [cmd.data.backupId, id]);
    await deliverQueued(h.fn.instanceOps, id, 'instance.backup');
    expect((await row(id)).status).toBe('stopped');
    const got = await call(h.fn.instances, alice.accessToken, { query: { id } });
    expect(got.body.backups.find((x: any) => x.id === cmd.data.backupId)).toMatchObject({ kind: 'manual', status: 'completed' });
  });

  it('a restore of an unusable backup leaves the instance as it was', async () => {
    const bad = (
      await (
        await import('@saasodoo/platform/db/index')
      )
        .db('instance')
        .one(`INSERT INTO backups (id, instance_id, kind, status) VALUES (gen_random_uuid(), $1, 'manual', 'completed') RETURNING id`, [id])
    ).id;
    await action(alice, 'restore', { backupId: bad });
    await deliverQueued(h.fn.instanceOps, id, 'instance.restore');
    expect((await row(id)).status).toBe('stopped');
    expect(await sql(id, 'SELECT v FROM notes')).toEqual([{ v: 'before' }]);
    await until('restore_failed', () => h.events.some((e) => e.type === 'com.saasodoo.instance.restore_failed' && e.data.backupId === bad));
  });

  it('downloads a backup through a signed link; forged, expired or other links are refused', async () => {
    const { linkToken: token, res } = await downloadBackup(h, alice.accessToken, id, backupId);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-tar');
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(bytes.length).toBeGreaterThan(1024);
    expect(bytes.includes(Buffer.from('manifest.json'))).toBe(true);
    const forged = await call(h.fn.backupDownload, undefined, { query: { token: token.slice(0, -2) + (token.endsWith('AA') ? 'BB' : 'AA') } });
    expect(forged.status).toBe(401);
    const expired = await call(h.fn.backupDownload, undefined, { query: { token: signBackupLink(id, backupId, 60, Date.now() - 3_600_000) } });
    expect(expired.status).toBe(401);
    expect(expired.body.error.code).toBe('invalid_link');
    const gone = await call(h.fn.backupDownload, undefined, { query: { token: signBackupLink(id, crypto.randomUUID(), 60) } });
    expect(gone.status).toBe(404);
    expect((await call(h.fn.instances, bob.accessToken, { query: { id, backupLink: backupId } })).status).toBe(404);
  });

  it('delete → terminate: final backup kept 30 days; no database, role, directory or process left', async () => {
    await action(alice, 'start');
    await deliverQueued(h.fn.instanceOps, id, 'instance.start');
    const pid = ((await (await runtime()).status(id)) as LocalRuntimeStatus).pid!;
    expect(alive(pid)).toBe(true);
    expect((await action(alice, 'delete')).body.status).toBe('terminating');
    // Kill Bill's CANCEL EFFECTIVE makes lifecycle send the terminate command:
    const t = await deliver(h.fn.instanceOps, 'com.saasodoo.instance.terminate', { instanceId: id, customerId: alice.userId, reason: 'cancelled' });
    expect(t.status).toBe(204);
    const r = await row(id);
    expect(r.status).toBe('terminated');
    expect(await instanceDatabaseExists(instanceDbNames(id, alice.userId))).toEqual({ database: false, role: false });
    expect(fs.existsSync(path.join(config().dataDir, 'instances', id))).toBe(false);
    expect((await (await runtime()).status(id)).state).toBe('missing');
    await until('process gone', () => !alive(pid));
    const final = (await call(h.fn.instances, alice.accessToken, { query: { id } })).body.backups.find((b: any) => b.kind === 'final');
    expect(final.status).toBe('completed');
    const days = (new Date(final.expiresAt).getTime() - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(29);
    expect(days).toBeLessThanOrEqual(30.01);
    // Twice is fine.
    expect((await deliver(h.fn.instanceOps, 'com.saasodoo.instance.terminate', { instanceId: id, customerId: alice.userId, reason: 'again' })).status).toBe(204);
  });

  it('the final backup is deleted by the daily schedule once its 30 days are over', async () => {
    const { db } = await import('@saasodoo/platform/db/index');
    const final = await db('instance').one(`SELECT * FROM backups WHERE instance_id = $1 AND kind = 'final'`, [id]);
    const dir = path.join(config().dataDir, 'backups', id, final.id);
    expect(fs.existsSync(dir)).toBe(true);
    await db('instance').none(`UPDATE backups SET expires_at = now() - interval '1 day' WHERE id = $1`, [final.id]);
    expect((await deliver(h.fn.instanceOps, 'com.saasodoo.schedule.daily', { at: new Date().toISOString() })).status).toBe(204);
    expect((await db('instance').one('SELECT status FROM backups WHERE id = $1', [final.id])).status).toBe('expired');
    expect(fs.existsSync(dir)).toBe(false);
  });
});
