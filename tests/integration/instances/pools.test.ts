/**
 * Database pools (issue 20 item 1) with two real PostgreSQL servers: the
 * platform's own (registered as the shared pool `default`) and a second one
 * made here with initdb/pg_ctl. Placement spreads databases by load, skips a
 * full or unhealthy pool, and fails with a clear reason, nothing created,
 * when none has room; an instance on the second server runs there (its
 * backups and Odoo use that server).
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { db } from '@saasodoo/platform/db/index';
import { instanceDbNames } from '@saasodoo/platform/instances/names';
import { addPool, listPools, placeInstance, setPoolState } from '@saasodoo/platform/instances/pools';
import { checkPools } from '@saasodoo/platform/instances/pool-health';
import { log } from '@saasodoo/platform/log';
import { poolsTable } from '@saasodoo/platform/cli/pools';
import { unseal } from '@saasodoo/platform/instances/secrets';
import { createTestUser, type TestUser } from '../../helpers/auth.ts';
import { destroyPgServer, pgServerUnavailable, startPgServer, type TestPgServer } from '../../helpers/pg-server.ts';
import { call, provisioned, row, startHarness, type Harness } from './harness.ts';

const unavailable = pgServerUnavailable();
if (unavailable) console.warn(`database pool tests skipped: ${unavailable}`);

let h: Harness;
let alice: TestUser;
let server: TestPgServer;

beforeAll(async () => {
  if (unavailable) return;
  [h, server] = await Promise.all([startHarness(), startPgServer()]);
  alice = await createTestUser();
});
afterAll(async () => {
  await h?.stop();
  await destroyPgServer(server);
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

  it('platform pools list shows each pool with its load, capacity and health, no credentials', async () => {
    const out = await poolsTable();
    const lines = out.trim().split('\n');
    expect(lines[0]).toMatch(/^name\s+kind\s+server\s+instances\s+capacity\s+state/);
    expect(lines.find((l) => l.startsWith('second'))).toMatch(new RegExp(`^second\\s+shared\\s+127\\.0\\.0\\.1:${server.port}\\s+3\\s+10\\s+active`));
    expect(out).not.toContain(server.password);
  });
});
