/**
 * `instances` and `instance-action` over HTTP against real PostgreSQL:
 * create validation, subdomain availability and the unique-subdomain race,
 * tenant isolation (404), SPEC 5's action table for every status, admin
 * listing and retry, delete with billing down. Billing is the contract
 * stand-in of harness.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { db } from '@saasodoo/platform/db/index';
import { STATUSES, allowedActions, type Action } from '@saasodoo/platform/instances/states';
import { createTestUser, type TestUser } from '../../helpers/auth.ts';
import { call, row, startHarness, type Harness } from './harness.ts';

let h: Harness;
let alice: TestUser;
let bob: TestUser;
let admin: TestUser;
let n = 0;
const sub = () => `api-${Date.now().toString(36)}-${n++}`;
const valid = (over: Record<string, unknown> = {}) => ({ name: 'Shop', subdomain: sub(), plan: 'basic-monthly', odooVersion: '17', demoData: false, trial: false, ...over });

beforeAll(async () => {
  h = await startHarness();
  [alice, bob, admin] = await Promise.all([createTestUser(), createTestUser(), createTestUser({ role: 'admin' })]);
});
afterAll(async () => {
  await h?.stop();
});

async function create(user: TestUser, over: Record<string, unknown> = {}) {
  return call(h.fn.instances, user.accessToken, { body: valid(over) });
}

describe('create', () => {
  it('answers 202 pending_payment, takes resources from the plan, opens the subscription with the caller token', async () => {
    const r = await create(alice, { resources: { cpu: 64, memoryMiB: 999999, storageGiB: 5000 } });
    expect(r.status).toBe(202);
    expect(r.body.status).toBe('pending_payment');
    const got = await call(h.fn.instances, alice.accessToken, { query: { id: r.body.id } });
    expect(got.status).toBe(200);
    expect(got.body.resources).toEqual({ cpu: 1, memoryMiB: 2048, storageGiB: 10 });
    expect(got.body.billingStatus).toBe('payment_required');
    expect(got.body.history[0]).toMatchObject({ from: null, to: 'pending_payment', actor: `customer:${alice.userId}` });
    expect(got.body.adminPassword).toBeUndefined(); // only once running
    const startCall = h.billing.calls.find((c) => c.body.instanceId === r.body.id)!;
    expect(startCall).toMatchObject({ action: 'startSubscription', authorization: `Bearer ${alice.accessToken}` });
    expect(startCall.body).toMatchObject({ plan: 'basic-monthly', trial: false });
    const dbRow = await row(r.body.id);
    expect(dbRow.subscription_id).toMatch(/^[0-9a-f-]{36}$/);
    // Only the sealed one-time copy until odoo_configure writes Odoo's own hash; the login is the customer's email.
    expect(dbRow.admin_password_hash).toBeNull();
    expect(dbRow.admin_password_sealed).toMatch(/^v1\./);
    expect(dbRow.odoo_login).toBe(alice.email);
    expect(got.body.odoo).toEqual({ url: expect.stringMatching(/^http:\/\/api-/), database: expect.stringMatching(/^.*odoo_[0-9a-f]{8}_[0-9a-f]{12}$/), login: alice.email });
  });

  it('rejects bad fields with 400 naming each', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ subdomain: 'ab' }, 'subdomain'],
      [{ subdomain: '-abc' }, 'subdomain'],
      [{ subdomain: 'abc-' }, 'subdomain'],
      [{ subdomain: 'Abc' }, 'subdomain'],
      [{ subdomain: 'a'.repeat(51) }, 'subdomain'],
      [{ subdomain: 'admin' }, 'subdomain'],
      [{ plan: 'gold' }, 'plan'],
      [{ odooVersion: '15' }, 'odooVersion'],
      [{ name: '' }, 'name'],
      [{ demoData: 'yes' }, 'demoData'],
      [{ trial: true, plan: 'basic-immediate' }, 'trial'],
      [{ extra: 1 }, 'extra'],
    ];
    for (const [over, field] of cases) {
      const r = await create(alice, over);
      expect(r.status, JSON.stringify(over)).toBe(400);
      expect(
        Object.keys(r.body.error.fields ?? {}).some((k) => k === field || k.endsWith(field)),
        `${JSON.stringify(over)} → ${JSON.stringify(r.body)}`,
      ).toBe(true);
    }
  });

  it('trial: billing status trial; not eligible → 409 trial_unavailable and nothing kept', async () => {
    const ok = await create(alice, { trial: true });
    expect(ok.status).toBe(202);
    expect((await row(ok.body.id)).billing_status).toBe('trial');
    h.billing.eligible = false;
    const s = sub();
    const no = await create(alice, { trial: true, subdomain: s });
    h.billing.eligible = true;
    expect(no.status).toBe(409);
    expect(no.body.error.code).toBe('trial_unavailable');
    h.billing.start = 'trial_unavailable';
    const raced = await create(alice, { trial: true, subdomain: s });
    h.billing.start = 'ok';
    expect(raced.status).toBe(409);
    expect((await call(h.fn.instances, alice.accessToken, { query: { available: s } })).body.available).toBe(true);
  });

  it('billing down → 503 and the subdomain stays free', async () => {
    h.billing.start = 'down';
    const s = sub();
    const r = await create(alice, { subdomain: s });
    h.billing.start = 'ok';
    expect(r.status).toBe(503);
    expect(r.headers.get('retry-after')).toMatch(/^[1-9][0-9]*$/);
    expect(await db('instance').oneOrNone('SELECT 1 FROM instances WHERE subdomain = $1', [s])).toBeNull();
  });

  it('two concurrent creates with one subdomain: one 202, one 409', async () => {
    const s = sub();
    const rs = await Promise.all([create(alice, { subdomain: s }), create(bob, { subdomain: s })]);
    expect(rs.map((r) => r.status).sort()).toEqual([202, 409]);
    expect(rs.find((r) => r.status === 409)!.body.error.fields.subdomain).toBe('is taken');
  });

  it('availability check', async () => {
    const taken = (await create(alice)).body.id;
    const s = (await row(taken)).subdomain;
    expect((await call(h.fn.instances, bob.accessToken, { query: { available: s } })).body).toEqual({ available: false, reason: 'is taken' });
    expect((await call(h.fn.instances, bob.accessToken, { query: { available: 'www' } })).body).toEqual({ available: false, reason: 'is reserved' });
    expect((await call(h.fn.instances, bob.accessToken, { query: { available: sub() } })).body.available).toBe(true);
  });

  it('needs a token', async () => {
    expect((await call(h.fn.instances, undefined, { body: valid() })).status).toBe(401);
  });
});

describe('tenant isolation and admins', () => {
  it("another customer's instance is 404 on get, action and backup link; admins see all", async () => {
    const id = (await create(alice)).body.id;
    expect((await call(h.fn.instances, bob.accessToken, { query: { id } })).status).toBe(404);
    expect((await call(h.fn.instanceAction, bob.accessToken, { body: { id, action: 'delete' } })).status).toBe(404);
    const b = (await db('instance').one(`INSERT INTO backups (id, instance_id, kind, status) VALUES (gen_random_uuid(), $1, 'manual', 'completed') RETURNING id`, [id])).id;
    expect((await call(h.fn.instances, bob.accessToken, { query: { id, backupLink: b } })).status).toBe(404);
    expect((await call(h.fn.instances, alice.accessToken, { query: { id, backupLink: b } })).body.url).toContain('/api/backup-download?token=');
    expect((await call(h.fn.instances, bob.accessToken, {})).body.items.find((i: any) => i.id === id)).toBeUndefined();
    expect((await call(h.fn.instances, alice.accessToken, {})).body.items.find((i: any) => i.id === id)).toBeTruthy();
    expect((await call(h.fn.instances, admin.accessToken, { query: { id } })).status).toBe(200);
    const all = await call(h.fn.instances, admin.accessToken, { query: { all: 'true', customerId: alice.userId, status: 'pending_payment' } });
    expect(all.body.items.length).toBeGreaterThan(0);
    expect(all.body.items.every((i: any) => i.customerId === alice.userId && i.status === 'pending_payment')).toBe(true);
    expect((await call(h.fn.instances, bob.accessToken, { query: { all: 'true' } })).status).toBe(403);
  });
});

describe("SPEC 5's action table", () => {
  const actions: Action[] = ['start', 'stop', 'restart', 'backup', 'restore', 'delete', 'retry'];

  it('every action in every status: allowed → 202 with the working status, otherwise 409 naming the status', async () => {
    const id = (await create(alice)).body.id;
    const backupId = (await db('instance').one(`INSERT INTO backups (id, instance_id, kind, status) VALUES (gen_random_uuid(), $1, 'manual', 'completed') RETURNING id`, [id])).id;
    for (const status of STATUSES) {
      for (const action of actions) {
        for (const who of [alice, admin]) {
          // Put the instance in `status` directly: this test is about the table, flows are tested elsewhere.
          await db('instance').none(`UPDATE instances SET status = $2, error_step = 'runtime' WHERE id = $1`, [id, status]);
          const r = await call(h.fn.instanceAction, who.accessToken, { body: { id, action, ...(action === 'restore' ? { backupId } : {}) } });
          const allowed = allowedActions(status, who === admin).includes(action);
          const label = `${who === admin ? 'admin' : 'customer'} ${action} while ${status}`;
          if (action === 'retry' && who !== admin) {
            expect(r.status, label).toBe(403);
          } else if (allowed) {
            expect(r.status, `${label}: ${JSON.stringify(r.body)}`).toBe(202);
          } else {
            expect(r.status, label).toBe(409);
            expect(r.body.error.fields.status, label).toBe(status);
          }
        }
      }
    }
    // The table itself (SPEC 5).
    expect(allowedActions('running', false)).toEqual(['stop', 'restart', 'backup', 'delete']);
    expect(allowedActions('stopped', false)).toEqual(['start', 'backup', 'restore', 'delete']);
    expect(allowedActions('error', false)).toEqual(['start', 'restore', 'delete']);
    expect(allowedActions('error', true)).toEqual(['start', 'restore', 'delete', 'retry']);
    expect(allowedActions('suspended', false)).toEqual(['delete']);
    expect(allowedActions('pending_payment', false)).toEqual(['delete']);
  });

  it('an accepted action writes status, history and the command in one go', async () => {
    const id = (await create(alice)).body.id;
    await db('instance').none(`UPDATE instances SET status = 'running' WHERE id = $1`, [id]);
    const r = await call(h.fn.instanceAction, alice.accessToken, { body: { id, action: 'stop' } });
    expect(r.body).toEqual({ id, status: 'stopping' });
    const hist = (await call(h.fn.instances, alice.accessToken, { query: { id } })).body.history;
    expect(hist.at(-1)).toMatchObject({ from: 'running', to: 'stopping', eventType: 'http:instance-action' });
    const cmd = await db('instance').one(`SELECT * FROM outbox WHERE subject = $1 AND type = 'com.saasodoo.instance.stop'`, [id]);
    expect(cmd.data).toEqual({ instanceId: id, customerId: alice.userId });
  });

  it('restore needs a backupId of this instance', async () => {
    const id = (await create(alice)).body.id;
    await db('instance').none(`UPDATE instances SET status = 'stopped' WHERE id = $1`, [id]);
    const missing = await call(h.fn.instanceAction, alice.accessToken, { body: { id, action: 'restore' } });
    expect(missing.status).toBe(400);
    expect(missing.body.error.fields['backupId']).toBeTruthy();
    const other = await call(h.fn.instanceAction, alice.accessToken, { body: { id, action: 'restore', backupId: crypto.randomUUID() } });
    expect(other.status).toBe(404);
  });

  it('delete cancels the subscription now with the caller token; billing down → 503 and nothing changes', async () => {
    const id = (await create(alice)).body.id;
    h.billing.cancel = 'down';
    const down = await call(h.fn.instanceAction, alice.accessToken, { body: { id, action: 'delete' } });
    h.billing.cancel = 'ok';
    expect(down.status).toBe(503);
    expect((await row(id)).status).toBe('pending_payment');
    const ok = await call(h.fn.instanceAction, alice.accessToken, { body: { id, action: 'delete' } });
    expect(ok.body).toEqual({ id, status: 'terminating' });
    const cancel = h.billing.calls.filter((c) => c.action === 'cancel').at(-1)!;
    expect(cancel.body).toMatchObject({ subscriptionId: (await row(id)).subscription_id, immediate: true });
    expect(cancel.authorization).toBe(`Bearer ${alice.accessToken}`);
  });

  it('unknown action and bad id are 400', async () => {
    expect((await call(h.fn.instanceAction, alice.accessToken, { body: { id: 'nope', action: 'stop' } })).status).toBe(400);
    const r = await call(h.fn.instanceAction, alice.accessToken, { body: { id: crypto.randomUUID(), action: 'explode' } });
    expect(r.status).toBe(400);
    expect(r.body.error.fields['action']).toBeTruthy();
  });
});
