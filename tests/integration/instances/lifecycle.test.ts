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
import { config } from '../../../platform/src/config.ts';
import { instanceDatabaseExists } from '../../../platform/src/instances/database.ts';
import { instanceDbNames } from '../../../platform/src/instances/names.ts';
import { unseal } from '../../../platform/src/instances/secrets.ts';
import { probeOne } from '../../../platform/src/runtime/health.ts';
import { runtime } from '../../../platform/src/runtime/index.ts';
import { signBackupLink } from '../../../platform/src/runtime/backup-links.ts';
import type { LocalRuntimeStatus } from '../../../platform/src/runtime/local/driver.ts';
import { createTestUser, type TestUser } from '../../helpers/auth.ts';
import { call, deliver, deliverQueued, downloadBackup, queued, row, startHarness, until, type Harness } from './harness.ts';

let h: Harness;
let alice: TestUser;
let bob: TestUser;
let id: string;

beforeAll(async () => {
  h = await startHarness();
  [alice, bob] = await Promise.all([createTestUser(), createTestUser()]);
});
afterAll(async () => {
  await h?.stop();
});

/** Runs SQL in the instance's own database as its own role, as Odoo does. */
async function sql(instanceId: string, text: string): Promise<any[]> {
  const r = await row(instanceId);
  const c = new pg.Client({
    host: config().DATABASE_HOST, port: config().DATABASE_PORT, database: r.db_name, user: r.db_role, password: unseal(r.db_password_sealed),
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
    expect(r.progress).toMatchObject({ operation: 'provision', step: 'ready', index: 7, total: 7 });
    await until('ready event', () => h.events.some((e) => e.type === 'com.saasodoo.instance.ready' && e.subject === id));
    const steps = h.events.filter((e) => e.type === 'com.saasodoo.instance.progress' && e.subject === id).map((e) => e.data.step);
    expect(steps).toEqual(['claim', 'database', 'storage', 'quota', 'runtime', 'wait_ready', 'ready']);
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

  it('shows the Odoo admin password once, to the owner, then keeps only the hash', async () => {
    const first = await call(h.fn.instances, alice.accessToken, { query: { id } });
    expect(first.body.adminPassword).toMatch(/^[A-Za-z0-9_-]{24}$/);
    const second = await call(h.fn.instances, alice.accessToken, { query: { id } });
    expect(second.body.adminPassword).toBeUndefined();
    const r = await row(id);
    expect(r.admin_password_sealed).toBeNull();
    expect(r.admin_password_shown).toBe(true);
    const { verify } = await import('@node-rs/argon2');
    expect(await verify(r.admin_password_hash, first.body.adminPassword)).toBe(true);
    expect(JSON.stringify(h.events)).not.toContain(first.body.adminPassword);
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

  it('a restore of an unusable backup leaves the instance as it was', async () => {
    const bad = (await (await import('../../../platform/src/db/index.ts')).db('instance').one(
      `INSERT INTO backups (id, instance_id, kind, status) VALUES (gen_random_uuid(), $1, 'manual', 'completed') RETURNING id`, [id])).id;
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
    const { db } = await import('../../../platform/src/db/index.ts');
    const final = await db('instance').one(`SELECT * FROM backups WHERE instance_id = $1 AND kind = 'final'`, [id]);
    const dir = path.join(config().dataDir, 'backups', id, final.id);
    expect(fs.existsSync(dir)).toBe(true);
    await db('instance').none(`UPDATE backups SET expires_at = now() - interval '1 day' WHERE id = $1`, [final.id]);
    expect((await deliver(h.fn.instanceOps, 'com.saasodoo.schedule.daily', { at: new Date().toISOString() })).status).toBe(204);
    expect((await db('instance').one('SELECT status FROM backups WHERE id = $1', [final.id])).status).toBe('expired');
    expect(fs.existsSync(dir)).toBe(false);
  });
});
