/**
 * The whole path with the real billing, trial-eligibility and lifecycle
 * functions against the Kill Bill simulator (no stand-in): create a trial
 * instance → Kill Bill SUBSCRIPTION_CREATION → lifecycle → provision →
 * running, the stand-in answering; delete → immediate cancellation →
 * SUBSCRIPTION_CANCEL → lifecycle → terminate → nothing left; a staging
 * copy (issue 24.2): the original's data at copy time, neutralised by the
 * stand-in's `odoo neutralize`, at its own address, billed as the Staging
 * add-on in the original's bundle; refreshed from production; terminated
 * with the original; refused on a plan without staging; an admin
 * deleting another customer's instance goes the same way; GET /api/plans
 * names the Odoo versions create accepts. Published
 * events are routed by events/triggers.yaml to the functions served here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { instanceDatabaseExists } from '@saasodoo/platform/instances/database';
import { instanceDbNames } from '@saasodoo/platform/instances/names';
import type { AddressInfo } from 'node:net';
import { KillBill } from '@saasodoo/platform/billing/killbill';
import { startFunction } from '@saasodoo/platform/host/run-function';
import { odooVersions } from '@saasodoo/platform/plans';
import plansFn from '@saasodoo/fn-plans';
import { probeOne } from '@saasodoo/platform/runtime/health';
import { runtime } from '@saasodoo/platform/runtime/index';
import { createTestUser, type TestUser } from '../../helpers/auth.ts';
import fs from 'node:fs';
import path from 'node:path';
import { config } from '@saasodoo/platform/config';
import { withTenant } from '@saasodoo/platform/instances/odoo';
import { specOf } from '@saasodoo/platform/instances/runtime-spec';
import { call, deliver, row, startHarness, until, type Harness } from './harness.ts';

let h: Harness;
let alice: TestUser;

beforeAll(async () => {
  h = await startHarness({ realBilling: true, dispatch: true });
  alice = await createTestUser();
});
afterAll(async () => {
  await h?.stop();
});

/** What Kill Bill would push for the subscription (lifecycle re-reads the state anyway). */
function notify(eventType: string, subscriptionId: string) {
  return deliver(h.extra.lifecycle, `org.killbill.${eventType.toLowerCase()}`, {
    eventType,
    accountId: null,
    objectType: 'SUBSCRIPTION',
    objectId: subscriptionId,
    metaData: null,
  });
}

/** Rows of a query in an instance's own Odoo database, as its role. */
async function odooRows(instanceId: string, sql: string): Promise<Record<string, unknown>[]> {
  return withTenant(specOf(await row(instanceId)).database, async (c) => (await c.query(sql)).rows);
}

describe('full path through Kill Bill', () => {
  let id: string;
  let copyId: string;
  it('trial: create → SUBSCRIPTION_CREATION → running; a second trial is refused', async () => {
    const r = await call(h.fn.instances, alice.accessToken, {
      body: { name: 'Real', subdomain: `real-${Date.now().toString(36)}`, plan: 'standard-monthly', odooVersion: '17', trial: true },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    id = r.body.id;
    const sub = (await row(id)).subscription_id;
    expect(sub).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect((await notify('SUBSCRIPTION_CREATION', sub)).status).toBeLessThan(300);
    await until('running', async () => (await row(id)).status === 'running', 40_000);
    expect((await row(id)).billing_status).toBe('trial');
    const st = await (await runtime()).status(id);
    expect((await probeOne(st.healthUrl!)).ok).toBe(true);

    const again = await call(h.fn.instances, alice.accessToken, {
      body: { name: 'Second', subdomain: `real2-${Date.now().toString(36)}`, plan: 'standard-monthly', odooVersion: '17', trial: true },
    });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('trial_unavailable');
  });

  const readyOf = (instanceId: string) =>
    h.events.filter((e) => e.type === 'com.saasodoo.instance.ready' && e.subject === instanceId).map((e) => e.data as { stagingOf?: { name: string; copiedAt: string } });

  it("staging copy: the original's data at copy time, neutralised, at its own address, billed as an add-on", async () => {
    // The customer's own data and outgoing mail server, in production.
    await odooRows(id, `INSERT INTO res_partner (name, complete_name, email) VALUES ('Zed Customer', 'Zed Customer', 'zed@example.com')`);
    await odooRows(id, `INSERT INTO ir_mail_server (name, smtp_host, smtp_port, active) VALUES ('Production SMTP', 'smtp.acme.test', 587, true)`);
    const r = await call(h.fn.staging, alice.accessToken, { body: { action: 'create', id } });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    copyId = r.body.id;
    const orig = await row(id);
    expect(r.body.subdomain).toBe(`${orig.subdomain}-staging`);
    await until('the copy running', async () => ['running', 'error'].includes((await row(copyId)).status), 60_000);
    const copy = await row(copyId);
    expect(copy, JSON.stringify({ step: copy.error_step, reason: copy.error_reason })).toMatchObject({ status: 'running', staging_of: id, customer_id: alice.userId });
    expect(copy.db_name).not.toBe(orig.db_name);
    // Announced as a copy of the original (its mail says so), not as a new instance.
    await until('the copy announced', () => readyOf(copyId).length === 1); // relayed from the outbox after the commit
    expect(readyOf(copyId).map((d) => d.stagingOf?.name)).toEqual([orig.name]);
    // The same data, in a database of its own; production untouched by the neutralisation.
    expect(await odooRows(copyId, `SELECT name, email FROM res_partner WHERE name = 'Zed Customer'`)).toEqual([{ name: 'Zed Customer', email: 'zed@example.com' }]);
    const neutralised = `SELECT value FROM ir_config_parameter WHERE key = 'database.is_neutralized'`;
    expect(await odooRows(copyId, neutralised)).toEqual([{ value: 'true' }]);
    expect(await odooRows(id, neutralised)).toEqual([]);
    const servers = `SELECT name, active FROM ir_mail_server ORDER BY id`;
    expect(await odooRows(copyId, servers)).toEqual([
      { name: 'Production SMTP', active: false },
      { name: 'neutralization - disable emails', active: true },
    ]);
    expect(await odooRows(id, servers)).toEqual([{ name: 'Production SMTP', active: true }]);
    expect(await odooRows(copyId, `SELECT d.name, c.active FROM ir_cron c JOIN ir_model_data d ON d.res_id = c.id AND d.model = 'ir.cron' ORDER BY d.name`)).toEqual([
      { name: 'autovacuum_job', active: true },
      { name: 'ir_cron_res_users_deletion', active: false },
    ]);
    // Odoo's copy reset: a secret of its own, and its own address in its links.
    const param = (key: string) => `SELECT value FROM ir_config_parameter WHERE key = '${key}'`;
    expect((await odooRows(copyId, param('database.secret')))[0].value).not.toBe((await odooRows(id, param('database.secret')))[0].value);
    expect(await odooRows(copyId, param('web.base.url'))).toEqual([{ value: `http://${copy.subdomain}.localhost:8080` }]);
    // Its own address answers, with the copy's own filestore under its database name.
    const st = await (await runtime()).status(copyId);
    expect(st.url).toBe(`http://${copy.subdomain}.localhost:8080`);
    expect((await probeOne(st.healthUrl!)).ok).toBe(true);
    expect(await h.router(copy.subdomain)).toHaveProperty('port');
    // Odoo's neutralised banner on the copy's own pages, never on production's.
    expect(await (await fetch(`${new URL(st.healthUrl!).origin}/web/login`)).text()).toContain('This database is neutralized.');
    const prod = (await (await runtime()).status(id)).healthUrl!;
    expect(await (await fetch(`${new URL(prod).origin}/web/login`)).text()).not.toContain('neutralized');
    expect(fs.readdirSync(path.join(config().dataDir, 'instances', copyId, 'filestore'))).toEqual([copy.db_name]);
    // Billed as the Staging add-on in the original's bundle.
    const bundle = (await new KillBill({ url: h.kb!.url, readRetries: 0 }).bundlesOfInstance(id))[0];
    expect(bundle.subscriptions?.map((s) => [s.productCategory, s.planName, s.state, s.externalKey])).toEqual([
      ['BASE', 'standard-monthly', 'ACTIVE', id],
      ['ADD_ON', 'staging-monthly', 'ACTIVE', copyId],
    ]);
    expect(bundle.subscriptions?.[1].subscriptionId).toBe(copy.subscription_id);
    // One copy per instance; a copy has none of its own.
    const again = await call(h.fn.staging, alice.accessToken, { body: { action: 'create', id } });
    expect(again.status).toBe(409);
    const ofCopy = await call(h.fn.staging, alice.accessToken, { body: { action: 'create', id: copyId } });
    expect([ofCopy.status, Object.keys(ofCopy.body.error.fields)]).toEqual([400, ['id']]);
  });

  it("refresh from production replaces the copy's data with a new neutralised copy", async () => {
    await odooRows(copyId, `INSERT INTO res_partner (name) VALUES ('Only in staging')`);
    await odooRows(id, `INSERT INTO res_partner (name) VALUES ('New in production')`);
    const notCopy = await call(h.fn.staging, alice.accessToken, { body: { action: 'refresh', id } });
    expect([notCopy.status, Object.keys(notCopy.body.error.fields)]).toEqual([400, ['id']]);
    const r = await call(h.fn.staging, alice.accessToken, { body: { action: 'refresh', id: copyId } });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    expect(r.body.status).toBe('provisioning');
    await until('the copy running again', async () => ['running', 'error'].includes((await row(copyId)).status), 60_000);
    expect((await row(copyId)).status).toBe('running');
    expect(await odooRows(copyId, `SELECT name FROM res_partner WHERE name IN ('Only in staging', 'New in production')`)).toEqual([{ name: 'New in production' }]);
    // The refresh is announced as a new copy of the data, with its later moment.
    await until('the refresh announced', () => readyOf(copyId).length === 2);
    const [made, refreshed] = readyOf(copyId).map((d) => d.stagingOf!.copiedAt);
    expect(Date.parse(refreshed)).toBeGreaterThan(Date.parse(made));
    expect(await odooRows(copyId, `SELECT value FROM ir_config_parameter WHERE key = 'database.is_neutralized'`)).toEqual([{ value: 'true' }]);
  });

  it("the copy follows the original's suspension for non-payment and its resumption", async () => {
    expect((await deliver(h.fn.instanceOps, 'com.saasodoo.instance.suspend', { instanceId: id, customerId: alice.userId, reason: 'overdue' })).status).toBeLessThan(300);
    await until('the copy suspended', async () => (await row(copyId)).status === 'suspended', 40_000);
    expect(await h.router((await row(copyId)).subdomain)).toHaveProperty('page');
    expect((await deliver(h.fn.instanceOps, 'com.saasodoo.instance.resume', { instanceId: id, customerId: alice.userId })).status).toBeLessThan(300);
    await until('the copy running again', async () => (await row(copyId)).status === 'running', 40_000);
    expect((await row(id)).status).toBe('running');
    // Billing's view of the original is the copy's too (its add-on is on the original's subscription).
    const changed = { customerId: alice.userId, instanceId: id, status: 'paid', reason: 'payment_succeeded' };
    expect((await deliver(h.fn.instanceOps, 'com.saasodoo.billing.status_changed', changed)).status).toBeLessThan(300);
    expect([(await row(id)).billing_status, (await row(copyId)).billing_status]).toEqual(['paid', 'paid']);
  });

  it('delete → cancellation effective now → terminated, nothing left', async () => {
    // A plan without staging is refused while the copy lives (Kill Bill would drop its add-on).
    const down = await call(`${h.extra.billing}`, alice.accessToken, { body: { action: 'changePlan', subscriptionId: (await row(id)).subscription_id, plan: 'basic-monthly' } });
    expect([down.status, Object.keys(down.body.error.fields)]).toEqual([409, ['plan']]);
    const d = await call(h.fn.instanceAction, alice.accessToken, { body: { id, action: 'delete' } });
    expect(d.status, JSON.stringify(d.body)).toBe(202);
    expect(d.body.status).toBe('terminating');
    expect((await notify('SUBSCRIPTION_CANCEL', (await row(id)).subscription_id)).status).toBeLessThan(300);
    await until('terminated', async () => (await row(id)).status === 'terminated', 40_000);
    expect(await instanceDatabaseExists(instanceDbNames(id, alice.userId))).toEqual({ database: false, role: false });
    expect((await (await runtime()).status(id)).state).toBe('missing');
    // Its staging copy ended with it: Kill Bill cancelled the add-on with the base, the platform the copy.
    const addOn = await new KillBill({ url: h.kb!.url, readRetries: 0 }).subscription((await row(copyId)).subscription_id);
    expect(addOn?.state).toBe('CANCELLED');
    await until('the copy terminated', async () => (await row(copyId)).status === 'terminated', 40_000);
    expect(await instanceDatabaseExists(instanceDbNames(copyId, alice.userId))).toEqual({ database: false, role: false });
    expect((await (await runtime()).status(copyId)).state).toBe('missing');
  });

  it("an admin deletes another customer's instance: 202 → subscription cancelled now → terminated", async () => {
    const carol = await createTestUser();
    const admin = await createTestUser({ role: 'admin' });
    const r = await call(h.fn.instances, carol.accessToken, {
      body: { name: 'Carol', subdomain: `carol-${Date.now().toString(36)}`, plan: 'basic-monthly', odooVersion: '18', trial: true },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    const cid = r.body.id;
    const sub = (await row(cid)).subscription_id;
    expect((await notify('SUBSCRIPTION_CREATION', sub)).status).toBeLessThan(300);
    await until('running', async () => (await row(cid)).status === 'running', 40_000);

    const d = await call(h.fn.instanceAction, admin.accessToken, { body: { id: cid, action: 'delete' } });
    expect(d.status, JSON.stringify(d.body)).toBe(202);
    expect(d.body.status).toBe('terminating');
    // Billing cancelled Carol's subscription with the entitlement ending now, on the admin's token.
    const kbSub = await new KillBill({ url: h.kb!.url, readRetries: 0 }).subscription(sub);
    expect(kbSub?.state).toBe('CANCELLED');
    const hist = (await call(h.fn.instances, admin.accessToken, { query: { id: cid } })).body.history;
    expect(hist.at(-1)).toMatchObject({ to: 'terminating', actor: `admin:${admin.userId}` });

    expect((await notify('SUBSCRIPTION_CANCEL', sub)).status).toBeLessThan(300);
    await until('terminated', async () => (await row(cid)).status === 'terminated', 40_000);
    expect(await instanceDatabaseExists(instanceDbNames(cid, carol.userId))).toEqual({ database: false, role: false });
    expect((await (await runtime()).status(cid)).state).toBe('missing');
  });

  it('GET /api/plans names the Odoo versions create accepts (the portal reads them from there)', async () => {
    const server = await startFunction(plansFn, 0);
    try {
      const plans = await call(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, undefined);
      expect(plans.status).toBe(200);
      expect(plans.body.odooVersions).toEqual(odooVersions());
      expect(plans.body.items.length).toBeGreaterThan(0);
      const dave = await createTestUser();
      const body = (odooVersion: string) => ({ name: 'V', subdomain: `v-${odooVersion}-${Date.now().toString(36)}`, plan: 'basic-monthly', odooVersion });
      const bad = await call(h.fn.instances, dave.accessToken, { body: body('15') });
      expect(bad.status).toBe(400);
      expect(bad.body.error.fields.odooVersion).toContain(plans.body.odooVersions.join(', '));
      const ok = await call(h.fn.instances, dave.accessToken, { body: body(plans.body.odooVersions.at(-1)) });
      expect(ok.status, JSON.stringify(ok.body)).toBe(202);
      // Basic offers no staging copies: refused, naming the plan.
      const staging = await call(h.fn.staging, dave.accessToken, { body: { action: 'create', id: ok.body.id } });
      expect(staging.status).toBe(400);
      expect(staging.body.error.fields.plan).toMatch(/Basic plan has no staging/);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
