/**
 * The whole path with the real billing, trial-eligibility and lifecycle
 * functions against the Kill Bill simulator (no stand-in): create a trial
 * instance → Kill Bill SUBSCRIPTION_CREATION → lifecycle → provision →
 * running, the stand-in answering; delete → immediate cancellation →
 * SUBSCRIPTION_CANCEL → lifecycle → terminate → nothing left; an admin
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

describe('full path through Kill Bill', () => {
  let id: string;
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

  it('delete → cancellation effective now → terminated, nothing left', async () => {
    const d = await call(h.fn.instanceAction, alice.accessToken, { body: { id, action: 'delete' } });
    expect(d.status, JSON.stringify(d.body)).toBe(202);
    expect(d.body.status).toBe('terminating');
    expect((await notify('SUBSCRIPTION_CANCEL', (await row(id)).subscription_id)).status).toBeLessThan(300);
    await until('terminated', async () => (await row(id)).status === 'terminated', 40_000);
    expect(await instanceDatabaseExists(instanceDbNames(id, alice.userId))).toEqual({ database: false, role: false });
    expect((await (await runtime()).status(id)).state).toBe('missing');
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
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
