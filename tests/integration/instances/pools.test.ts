/**
 * Database pools (issue 20 item 1) with two real PostgreSQL servers: the
 * platform's own (registered as the shared pool `default`) and a second one
 * made here with initdb/pg_ctl. Placement spreads databases by load, skips a
 * full or unhealthy pool, and fails with a clear reason, nothing created,
 * when none has room; an instance on the second server runs there (its
 * backups and Odoo use that server).
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { config, resetConfig } from '@saasodoo/platform/config';
import { startGateway } from '@saasodoo/platform/host/gateway';
import type { Supervisor } from '@saasodoo/platform/host/supervisor';
import { dedicatedPoolName } from '@saasodoo/platform/instances/dedicated';
import { MOVE_STEPS } from '@saasodoo/platform/instances/move';
import { dedicatedServerDir, removeAllLocalDedicated, startLocalDedicatedServers } from '@saasodoo/platform/runtime/dedicated-local';
import { stopLocalPgServer } from '@saasodoo/platform/runtime/local-postgres';
import { db } from '@saasodoo/platform/db/index';
import { instanceDbNames } from '@saasodoo/platform/instances/names';
import { addPool, listPools, placeInstance, setPoolState } from '@saasodoo/platform/instances/pools';
import { checkPools } from '@saasodoo/platform/instances/pool-health';
import { log } from '@saasodoo/platform/log';
import { poolsTable } from '@saasodoo/platform/cli/pools';
import { unseal } from '@saasodoo/platform/instances/secrets';
import { createTestUser, type TestUser } from '../../helpers/auth.ts';
import { destroyPgServer, pgServerUnavailable, startPgServer, type TestPgServer } from '../../helpers/pg-server.ts';
import { settle } from '@saasodoo/platform/instances/command';
import { runtime } from '@saasodoo/platform/runtime/index';
import { call, deliver, odooLoginAt, deliverQueued, provisioned, row, startHarness, type Harness } from './harness.ts';

const unavailable = pgServerUnavailable();
if (unavailable) console.warn(`database pool tests skipped: ${unavailable}`);

let h: Harness;
let alice: TestUser;
let server: TestPgServer;
let gateway: http.Server | undefined;

beforeAll(async () => {
  if (unavailable) return;
  [h, server] = await Promise.all([startHarness(), startPgServer()]);
  alice = await createTestUser();
  gateway = await startGateway({ port: 0, supervisor: {} as Supervisor, baseDomain: 'localhost', instanceRouter: (s) => h.router(s) });
});
afterAll(async () => {
  await new Promise((r) => (gateway ? gateway.close(r) : r(undefined)));
  await h?.stop();
  await destroyPgServer(server);
  if (!unavailable) await removeAllLocalDedicated(config().dataDir);
});

/** Whether `names` exist on the second server (asked as its superuser). */
async function onSecond(q: string, values: unknown[]): Promise<number> {
  const c = new pg.Client({ host: server.host, port: server.port, user: server.user, password: server.password, database: 'postgres' });
  await c.connect();
  try {
    return (await c.query(q, values)).rowCount ?? 0;
  } finally {
    await c.end();
  }
}

/** SQL as the instance's own role, on whatever server its row names. */
async function asTenant(id: string, text: string): Promise<any[]> {
  const r = await row(id);
  const c = new pg.Client({ host: r.db_host ?? config().DATABASE_HOST, port: r.db_port ?? config().DATABASE_PORT, user: r.db_role, password: unseal(r.db_password_sealed), database: r.db_name });
  await c.connect();
  try {
    return (await c.query(text)).rows;
  } finally {
    await c.end();
  }
}

/** Odoo's JSON-RPC login at the instance's URL, through the gateway: the uid, or the exception name. */
async function odooLogin(id: string, login: string, password: string): Promise<{ uid?: number; error?: string }> {
  const r = await row(id);
  return odooLoginAt((gateway!.address() as AddressInfo).port, `${r.subdomain}.localhost`, r.db_name, login, password);
}

const passwords = new Map<string, string>();
/** The Odoo login password the portal shows the customer (once: kept here for the next test). */
async function passwordOf(id: string): Promise<string> {
  if (!passwords.has(id)) passwords.set(id, (await call(h.fn.instances, alice.accessToken, { query: { id } })).body.adminPassword);
  return passwords.get(id)!;
}

/** Whether anything answers on a local port. */
async function answers(port: number): Promise<boolean> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'nobody', database: 'postgres', connectionTimeoutMillis: 2000 });
  c.on('error', () => {});
  try {
    await c.connect();
    return true;
  } catch (err) {
    return !/ECONNREFUSED/.test((err as Error).message);
  } finally {
    await c.end().catch(() => {});
  }
}

async function created(name: string): Promise<string> {
  const r = await call(h.fn.instances, alice.accessToken, {
    body: { name, subdomain: `p-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`, plan: 'basic-monthly', odooVersion: '17', trial: true },
  });
  expect(r.status).toBe(202);
  return r.body.id;
}

describe.skipIf(!!unavailable)('database pools', () => {
  it('adding a pool checks every field and the credentials; the password is sealed at rest', async () => {
    await expect(addPool({ name: 'Bad Name', kind: 'x' as never, host: '', port: 0, adminUser: '', adminPassword: '', capacity: 0 })).rejects.toMatchObject({
      status: 400,
      fields: {
        name: expect.any(String),
        kind: expect.any(String),
        host: expect.any(String),
        port: expect.any(String),
        adminUser: expect.any(String),
        adminPassword: expect.any(String),
        capacity: expect.any(String),
      },
    });
    await expect(addPool({ name: 'second', kind: 'shared', host: server.host, port: server.port, adminUser: 'postgres', adminPassword: 'wrong', capacity: 2 })).rejects.toMatchObject({
      status: 400,
      fields: { host: expect.stringContaining('no connection') },
    });
    const p = await addPool({ name: 'second', kind: 'shared', host: server.host, port: server.port, adminUser: server.user, adminPassword: server.password, capacity: 2 });
    expect(p).toMatchObject({ name: 'second', kind: 'shared', capacity: 2, state: 'active', instances: 0 });
    expect(JSON.stringify(p)).not.toContain(server.password);
    const stored = await db('instance').one('SELECT admin_password_sealed FROM db_pools WHERE name = $1', ['second']);
    expect(stored.admin_password_sealed).not.toContain(server.password);
    expect(unseal(stored.admin_password_sealed)).toBe(server.password);
    await expect(addPool({ name: 'second', kind: 'shared', host: server.host, port: server.port, adminUser: server.user, adminPassword: server.password, capacity: 2 })).rejects.toMatchObject({
      status: 409,
    });
    // The platform's own server is the first shared pool; an operator sizes it (here 2, for the test).
    await db('instance').none(`UPDATE db_pools SET capacity = 2 WHERE name = 'default'`);
    expect((await listPools()).map((x) => [x.name, x.kind])).toEqual([
      ['default', 'shared'],
      ['second', 'shared'],
    ]);
  });

  let onDefault: string;
  let onOther: string;

  it('provisioning spreads databases by load: the second instance goes to the emptier second server and runs there', async () => {
    onDefault = await provisioned(h, alice.accessToken, alice.userId, { name: 'One' });
    expect(await row(onDefault)).toMatchObject({ status: 'running', db_pool: 'default' });
    onOther = await provisioned(h, alice.accessToken, alice.userId, { name: 'Two' });
    const r = await row(onOther);
    expect(r).toMatchObject({ status: 'running', db_pool: 'second', db_port: server.port, odoo_template: null });
    const names = instanceDbNames(onOther, alice.userId);
    expect(await onSecond('SELECT 1 FROM pg_database WHERE datname = $1', [names.database])).toBe(1);
    expect(await onSecond('SELECT 1 FROM pg_roles WHERE rolname = $1 AND NOT rolsuper', [names.role])).toBe(1);
    // Odoo initialised it there, for this customer, as the tenant's own role.
    const c = new pg.Client({ host: server.host, port: server.port, user: r.db_role, password: unseal(r.db_password_sealed), database: r.db_name });
    await c.connect();
    try {
      expect((await c.query(`SELECT u.login FROM res_users u JOIN ir_model_data d ON d.res_id = u.id AND d.module = 'base' AND d.name = 'user_admin'`)).rows).toEqual([{ login: alice.email }]);
    } finally {
      await c.end();
    }
  });

  it('placement skips an unhealthy pool and a full one; with no room provisioning fails at the database step with the reason, nothing created', async () => {
    await setPoolState('second', 'unhealthy');
    const c = await created('Three');
    expect((await placeInstance(c)).name).toBe('default'); // second is as loaded, but unhealthy
    const d = await created('Four');
    await expect(placeInstance(d)).rejects.toThrow('no shared database server has room: all 2 are full, draining or unhealthy');
    await setPoolState('second', 'active');
    expect((await placeInstance(d)).name).toBe('second');

    const e = await provisioned(h, alice.accessToken, alice.userId, { name: 'Five' });
    const r = await row(e);
    expect(r).toMatchObject({ status: 'error', error_step: 'database', db_pool: null });
    expect(r.error_reason).toContain('no shared database server has room');
    const names = instanceDbNames(e, alice.userId);
    expect(await db('instance').oneOrNone('SELECT 1 FROM instances WHERE id = $1 AND db_name IS NOT NULL', [e])).toBeNull();
    expect(await onSecond('SELECT 1 FROM pg_database WHERE datname = $1', [names.database])).toBe(0);
    expect(await onSecond('SELECT 1 FROM pg_roles WHERE rolname = $1', [names.role])).toBe(0);
    const { provisionerDb } = await import('@saasodoo/platform/db/index');
    expect(await provisionerDb().oneOrNone('SELECT 1 FROM pg_database WHERE datname = $1', [names.database])).toBeNull();
    expect(await provisionerDb().oneOrNone('SELECT 1 FROM pg_roles WHERE rolname = $1', [names.role])).toBeNull();
  });

  it('the pool health check: a stopped server is degraded, then unhealthy after 3 failures (pool.unhealthy), avoided by placement; started again it is active (pool.recovered)', async () => {
    await db('instance').none(`UPDATE db_pools SET capacity = CASE name WHEN 'second' THEN 10 ELSE 2 END`);
    const cmd = { eventId: 'tick', eventType: 'com.saasodoo.health.tick', data: {}, log };
    const state = async () => await db('instance').one(`SELECT state, health_failures FROM db_pools WHERE name = 'second'`);
    await server.stop();
    await checkPools(cmd, { timeoutMs: 3000 });
    expect(await state()).toEqual({ state: 'degraded', health_failures: 1 });
    await checkPools(cmd, { timeoutMs: 3000 });
    const s3 = await checkPools(cmd, { timeoutMs: 3000 });
    expect(s3.unhealthy).toBe(1);
    expect(await state()).toEqual({ state: 'unhealthy', health_failures: 3 });
    const ev = await db('instance').many(`SELECT data FROM outbox WHERE type = 'com.saasodoo.pool.unhealthy' AND subject = 'second'`);
    expect(ev).toHaveLength(1);
    expect(ev[0].data).toMatchObject({ pool: 'second', failures: 3 });
    const f = await created('Six');
    await expect(placeInstance(f)).rejects.toThrow('no shared database server has room'); // default is full, second unhealthy
    await server.start();
    await checkPools(cmd, { timeoutMs: 3000 });
    expect(await state()).toEqual({ state: 'active', health_failures: 0 });
    expect(await db('instance').many(`SELECT 1 FROM outbox WHERE type = 'com.saasodoo.pool.recovered' AND subject = 'second'`)).toHaveLength(1);
    expect((await placeInstance(f)).name).toBe('second');
  });

  let premium: string;
  let premiumPassword: string;

  it('a premium instance gets its own PostgreSQL server (another port, a dedicated pool of one); Odoo runs there as the tenant role and the customer logs in', async () => {
    premium = await provisioned(h, alice.accessToken, alice.userId, { name: 'Premium', plan: 'premium-monthly' });
    const r = await row(premium);
    expect(r).toMatchObject({ status: 'running', db_pool: dedicatedPoolName(premium), db_host: '127.0.0.1', odoo_template: null });
    expect([config().DATABASE_PORT, server.port]).not.toContain(r.db_port);
    expect(fs.existsSync(path.join(dedicatedServerDir(config().dataDir, premium), 'data', 'PG_VERSION'))).toBe(true);
    expect((await listPools()).find((p) => p.name === dedicatedPoolName(premium))).toMatchObject({ kind: 'dedicated', capacity: 1, instances: 1, state: 'active', port: r.db_port });
    // Odoo's own role there: no superuser; the database holds Odoo's tables for this customer.
    expect(await asTenant(premium, 'SELECT rolsuper, current_user AS me FROM pg_roles WHERE rolname = current_user')).toEqual([{ rolsuper: false, me: r.db_role }]);
    expect(await asTenant(premium, `SELECT u.login FROM res_users u JOIN ir_model_data d ON d.res_id = u.id AND d.module = 'base' AND d.name = 'user_admin'`)).toEqual([{ login: alice.email }]);
    premiumPassword = (await call(h.fn.instances, alice.accessToken, { query: { id: premium } })).body.adminPassword;
    expect((await odooLogin(premium, alice.email, premiumPassword)).uid).toBeGreaterThan(0);
    expect(await odooLogin(premium, 'admin', 'admin')).toEqual({ error: 'odoo.exceptions.AccessDenied' });
  });

  it('plan changes shared → dedicated → shared move the database (Odoo stopped, copied, verified, switched, started), keeping every row and file; the old copy goes', async () => {
    const id = onOther; // basic plan, on the shared pool `second`
    const password = await passwordOf(id);
    const before = await row(id);
    await asTenant(id, 'CREATE TABLE x_moved (n integer); INSERT INTO x_moved SELECT generate_series(1, 1000)');
    const file = path.join(config().dataDir, 'instances', id, 'filestore', before.db_name, 'zz', 'marker.bin');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, 'kept across moves');
    const users = (await asTenant(id, 'SELECT count(*)::int AS n FROM res_users'))[0].n;

    const up = await deliver(h.fn.quotaSet, 'com.saasodoo.instance.quota', { instanceId: id, customerId: alice.userId, plan: 'premium-monthly' });
    expect(up.status).toBeLessThan(300);
    const onDedicated = await row(id);
    expect(onDedicated).toMatchObject({ status: 'running', plan: 'premium-monthly', db_pool: dedicatedPoolName(id), previous_status: null });
    expect(onDedicated.db_port).not.toBe(server.port);
    expect(await asTenant(id, 'SELECT count(*)::int AS n, sum(n)::int AS s FROM x_moved')).toEqual([{ n: 1000, s: 500500 }]);
    expect((await asTenant(id, 'SELECT count(*)::int AS n FROM res_users'))[0].n).toBe(users);
    expect(fs.readFileSync(file, 'utf8')).toBe('kept across moves');
    expect(await onSecond('SELECT 1 FROM pg_database WHERE datname = $1', [before.db_name])).toBe(0);
    expect(await onSecond('SELECT 1 FROM pg_roles WHERE rolname = $1', [before.db_role])).toBe(0);
    expect((await odooLogin(id, alice.email, password)).uid).toBeGreaterThan(0);
    const steps = h.events.filter((e) => e.type === 'com.saasodoo.instance.progress' && e.subject === id && e.data.operation === 'move').map((e) => e.data.step);
    expect(steps).toEqual([...MOVE_STEPS]);
    const hist = await db('instance').many(`SELECT to_status, reason FROM instance_history WHERE instance_id = $1 ORDER BY at, id`, [id]);
    expect(hist.slice(-2).map((x) => x.to_status)).toEqual(['migrating', 'running']);

    const down = await deliver(h.fn.quotaSet, 'com.saasodoo.instance.quota', { instanceId: id, customerId: alice.userId, plan: 'basic-monthly' });
    expect(down.status).toBeLessThan(300);
    const back = await row(id);
    expect(back).toMatchObject({ status: 'running', plan: 'basic-monthly', db_pool: 'second', db_port: server.port });
    expect(await asTenant(id, 'SELECT count(*)::int AS n, sum(n)::int AS s FROM x_moved')).toEqual([{ n: 1000, s: 500500 }]);
    expect(fs.readFileSync(file, 'utf8')).toBe('kept across moves');
    // The dedicated server went with the move back: no folder, no pool, nothing listening.
    expect(fs.existsSync(dedicatedServerDir(config().dataDir, id))).toBe(false);
    expect(await db('instance').oneOrNone('SELECT 1 FROM db_pools WHERE name = $1', [dedicatedPoolName(id)])).toBeNull();
    expect(await answers(onDedicated.db_port)).toBe(false);
    expect((await odooLogin(id, alice.email, password)).uid).toBeGreaterThan(0);
  });

  it('a move that fails (here at its check, after the copy) leaves the instance running on its old database (its own server), the half-made copy removed', async () => {
    const id = premium; // premium → basic would move it to the shared pool `second`
    const before = await row(id);
    await asTenant(id, 'CREATE TABLE x_kept (n integer); INSERT INTO x_kept SELECT generate_series(1, 10)');
    process.env.MOVE_FAIL_AT_STEP = 'verify';
    resetConfig();
    try {
      const r = await deliver(h.fn.quotaSet, 'com.saasodoo.instance.quota', { instanceId: id, customerId: alice.userId, plan: 'basic-monthly' });
      expect(r.status).toBeLessThan(300);
    } finally {
      delete process.env.MOVE_FAIL_AT_STEP;
      resetConfig();
    }
    const after = await row(id);
    expect(after).toMatchObject({ status: 'running', db_pool: dedicatedPoolName(id), db_host: before.db_host, db_port: before.db_port, error_step: null });
    expect(await asTenant(id, 'SELECT count(*)::int AS n FROM x_kept')).toEqual([{ n: 10 }]);
    // The copy restored on `second` is gone again, role included.
    expect(await onSecond('SELECT 1 FROM pg_database WHERE datname = $1', [before.db_name])).toBe(0);
    expect(await onSecond('SELECT 1 FROM pg_roles WHERE rolname = $1', [before.db_role])).toBe(0);
    const last = await db('instance').one(`SELECT to_status, reason FROM instance_history WHERE instance_id = $1 ORDER BY at DESC, id DESC LIMIT 1`, [id]);
    expect(last.to_status).toBe('running');
    expect(last.reason).toMatch(/failed at verify \(still on its previous server\)/);
    expect((await odooLogin(id, alice.email, premiumPassword)).uid).toBeGreaterThan(0);
  });

  it('after a reboot (its server stopped), npm start brings the dedicated server back on the same port', async () => {
    const { db_port: port } = await row(premium);
    await stopLocalPgServer(dedicatedServerDir(config().dataDir, premium));
    expect(await answers(port)).toBe(false);
    const r = await startLocalDedicatedServers(config().dataDir); // what the runtime host service runs first
    expect(r).toEqual({ started: [premium], failed: [] });
    expect(await asTenant(premium, 'SELECT inet_server_port() AS port')).toEqual([{ port }]);
  });

  it('terminating the premium instance leaves no dedicated server, database, role or pool behind (after its final backup)', async () => {
    const r = await row(premium);
    const t = await deliver(h.fn.instanceOps, 'com.saasodoo.instance.terminate', { instanceId: premium, customerId: alice.userId, reason: 'test' });
    expect(t.status).toBeLessThan(300);
    expect(await row(premium)).toMatchObject({ status: 'terminated', db_pool: null });
    expect(await db('instance').oneOrNone(`SELECT 1 FROM backups WHERE instance_id = $1 AND kind = 'final' AND status = 'completed'`, [premium])).not.toBeNull();
    expect(fs.existsSync(dedicatedServerDir(config().dataDir, premium))).toBe(false);
    expect(await db('instance').oneOrNone('SELECT 1 FROM db_pools WHERE name = $1', [dedicatedPoolName(premium)])).toBeNull();
    expect(await answers(r.db_port)).toBe(false);
  });

  it('the operators API lists each pool with its instances, capacity and health (no credentials); customers are refused', async () => {
    const admin = await createTestUser({ role: 'admin' });
    const r = await call(h.fn.instances, admin.accessToken, { query: { pools: 'true' } });
    expect(r.status).toBe(200);
    const second = r.body.items.find((p: any) => p.name === 'second');
    expect(second).toMatchObject({ kind: 'shared', server: `127.0.0.1:${server.port}`, capacity: 10, state: 'active' });
    expect(second.instances.map((i: any) => i.id)).toContain(onOther);
    expect(second.instances.find((i: any) => i.id === onOther)).toMatchObject({ customerId: alice.userId, status: 'running', plan: 'basic-monthly' });
    expect(JSON.stringify(r.body)).not.toMatch(new RegExp(`${server.password}|admin_user|postgres`));
    expect(r.body.items.some((p: any) => p.kind === 'dedicated')).toBe(false); // the premium instance was terminated
    expect((await call(h.fn.instances, alice.accessToken, { query: { pools: 'true' } })).status).toBe(403);
  });

  it('platform pools list shows each pool with its load, capacity and health, no credentials', async () => {
    const out = await poolsTable();
    const lines = out.trim().split('\n');
    expect(lines[0]).toMatch(/^name\s+kind\s+server\s+instances\s+capacity\s+state/);
    expect(lines.find((l) => l.startsWith('second'))).toMatch(new RegExp(`^second\\s+shared\\s+127\\.0\\.0\\.1:${server.port}\\s+3\\s+10\\s+active`));
    expect(out).not.toContain(server.password);
  });

  /** Sends the plan change quota-set acts on (as billing does), optionally with a move step made to fail. */
  async function changePlan(id: string, plan: string, failAt?: string): Promise<void> {
    if (failAt) process.env.MOVE_FAIL_AT_STEP = failAt;
    resetConfig();
    try {
      const r = await deliver(h.fn.quotaSet, 'com.saasodoo.instance.quota', { instanceId: id, customerId: alice.userId, plan });
      expect(r.status).toBeLessThan(300);
    } finally {
      delete process.env.MOVE_FAIL_AT_STEP;
      resetConfig();
    }
  }
  const action = async (id: string, a: string) => {
    const r = await call(h.fn.instanceAction, alice.accessToken, { body: { id, action: a } });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    await deliverQueued(h.fn.instanceOps, id, `instance.${a}`);
  };
  /** The `move` progress steps reported for `id` since `since` events. */
  const moveSteps = (id: string, since: number) =>
    h.events
      .slice(since)
      .filter((e) => e.type === 'com.saasodoo.instance.progress' && e.subject === id && e.data.operation === 'move')
      .map((e) => e.data.step);
  const lastHistory = async (id: string, n: number) =>
    (await db('instance').many(`SELECT to_status, reason FROM instance_history WHERE instance_id = $1 ORDER BY at DESC, id DESC LIMIT $2`, [id, n])).reverse();

  it('a stopped instance moves to its own server without being started (no stop or start step) and stays stopped; started, Odoo runs there', async () => {
    const id = onDefault; // basic, on `default`
    const password = await passwordOf(id);
    const before = await row(id);
    await asTenant(id, 'CREATE TABLE x_stopped (n integer); INSERT INTO x_stopped SELECT generate_series(1, 100)');
    await action(id, 'stop');
    expect((await row(id)).status).toBe('stopped');
    const since = h.events.length;
    await changePlan(id, 'premium-monthly');
    const r = await row(id);
    expect(r).toMatchObject({ status: 'stopped', plan: 'premium-monthly', db_pool: dedicatedPoolName(id), previous_status: null });
    expect((await (await runtime()).status(id)).state).toBe('stopped');
    expect(moveSteps(id, since)).toEqual(MOVE_STEPS.filter((s) => s !== 'stop' && s !== 'start'));
    expect((await lastHistory(id, 2)).map((x) => x.to_status)).toEqual(['migrating', 'stopped']);
    expect(await asTenant(id, 'SELECT count(*)::int AS n FROM x_stopped')).toEqual([{ n: 100 }]);
    const { provisionerDb } = await import('@saasodoo/platform/db/index');
    expect(await provisionerDb().oneOrNone('SELECT 1 FROM pg_database WHERE datname = $1', [before.db_name])).toBeNull();
    // Its next start runs on the new server (the old database is gone: a login proves Odoo reads the new one).
    await action(id, 'start');
    expect((await row(id)).status).toBe('running');
    expect((await odooLogin(id, alice.email, password)).uid).toBeGreaterThan(0);
  });

  it('a suspended instance: a failed move leaves it suspended on its own server; the move back to a shared server keeps it suspended; resumed, Odoo runs there', async () => {
    const id = onDefault; // premium now, on its own server
    const password = await passwordOf(id);
    expect((await deliver(h.fn.instanceOps, 'com.saasodoo.instance.suspend', { instanceId: id, customerId: alice.userId, reason: 'overdue' })).status).toBe(204);
    const before = await row(id);
    expect(before.status).toBe('suspended');

    // Failing after the switch (its runtime was already told the new server): all of it is undone.
    await changePlan(id, 'basic-monthly', 'start');
    const failed = await row(id);
    expect(failed).toMatchObject({ status: 'suspended', db_pool: dedicatedPoolName(id), db_host: before.db_host, db_port: before.db_port, error_step: null, previous_status: null });
    expect((await (await runtime()).status(id)).state).toBe('suspended');
    expect(await onSecond('SELECT 1 FROM pg_database WHERE datname = $1', [before.db_name])).toBe(0);
    expect((await lastHistory(id, 1))[0].reason).toMatch(/failed at start \(still on its previous server\)/);
    expect(await asTenant(id, 'SELECT count(*)::int AS n FROM x_stopped')).toEqual([{ n: 100 }]);

    // The plan is already basic: the same plan change sent again retries the move.
    await changePlan(id, 'basic-monthly');
    const moved = await row(id);
    expect(moved).toMatchObject({ status: 'suspended', plan: 'basic-monthly', db_pool: 'second', db_port: server.port, previous_status: null });
    expect((await (await runtime()).status(id)).state).toBe('suspended');
    expect(fs.existsSync(dedicatedServerDir(config().dataDir, id))).toBe(false);
    expect(await answers(before.db_port)).toBe(false);
    expect(await asTenant(id, 'SELECT count(*)::int AS n FROM x_stopped')).toEqual([{ n: 100 }]);
    expect((await deliver(h.fn.instanceOps, 'com.saasodoo.instance.resume', { instanceId: id, customerId: alice.userId })).status).toBe(204);
    expect((await row(id)).status).toBe('running');
    expect((await odooLogin(id, alice.email, password)).uid).toBeGreaterThan(0);
  });

  it('an instance in error moves (Odoo stopped for the copy) and stays in error with its reason; started, it runs on the new server', async () => {
    const id = onOther; // basic, on `second`
    const password = await passwordOf(id);
    const before = await row(id);
    // As a failed start leaves it (instance-ops: settle to error with the step and reason).
    await settle(id, 'error', { actor: 'test', reason: 'start failed: test' }, { error_step: 'start', error_reason: 'test' });
    const since = h.events.length;
    await changePlan(id, 'premium-monthly');
    const r = await row(id);
    expect(r).toMatchObject({ status: 'error', error_step: 'start', error_reason: 'test', db_pool: dedicatedPoolName(id), previous_status: null });
    expect((await (await runtime()).status(id)).state).toBe('stopped');
    expect(moveSteps(id, since)).toEqual(MOVE_STEPS.filter((s) => s !== 'start'));
    expect(await asTenant(id, 'SELECT count(*)::int AS n, sum(n)::int AS s FROM x_moved')).toEqual([{ n: 1000, s: 500500 }]);
    expect(await onSecond('SELECT 1 FROM pg_database WHERE datname = $1', [before.db_name])).toBe(0);
    await action(id, 'start');
    expect((await row(id)).status).toBe('running');
    expect((await odooLogin(id, alice.email, password)).uid).toBeGreaterThan(0);
  });
});
