/**
 * Internal billing (issue 15.8): billing's startSubscription was open to any
 * customer with any instance id, so one could open Kill Bill subscriptions
 * for ids that are no instance and learn from the answer (409 "already used")
 * whether an id belonged to someone else. Now it opens one only for a
 * pending_payment instance of the caller with the same plan and trial, which
 * billing asks of the instances function. The real instances, billing and
 * lifecycle functions against the Kill Bill simulator.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KillBill } from '@saasodoo/platform/billing/killbill';
import { db } from '@saasodoo/platform/db/index';
import { createTestUser, type TestUser } from '../../helpers/auth.ts';
import { call, startHarness, type Harness } from '../instances/harness.ts';

let h: Harness;
let kb: KillBill;
let alice: TestUser;
let bob: TestUser;
let admin: TestUser;
let instanceId: string;
let subscriptionId: string;
const PLAN = 'standard-monthly';

beforeAll(async () => {
  h = await startHarness({ realBilling: true });
  kb = new KillBill({ url: h.kb!.url });
  [alice, bob, admin] = await Promise.all([createTestUser(), createTestUser(), createTestUser({ role: 'admin' })]);
  // The genuine path: instances writes the row, then asks billing, which finds it pending.
  const created = await call(h.fn.instances, alice.accessToken, {
    body: { name: 'Alice Co', subdomain: `alice-${Date.now().toString(36)}`, plan: PLAN, odooVersion: '17', trial: true },
  });
  expect(created.status, JSON.stringify(created.body)).toBe(202);
  instanceId = created.body.id;
  subscriptionId = (await db('instance').one('SELECT subscription_id FROM instances WHERE id = $1', [instanceId])).subscription_id;
  expect(subscriptionId).toEqual(expect.any(String));
}, 120_000);

afterAll(async () => {
  await h?.stop();
});

const start = (u: TestUser, o: { instanceId: string; plan?: string; trial?: boolean }) =>
  call(h.extra.billing!, u.accessToken, { body: { action: 'startSubscription', plan: PLAN, trial: true, ...o } });

/** Every subscription Kill Bill holds for a customer (none when it has no account). */
async function subscriptionsOf(customerId: string) {
  const account = await kb.accountByCustomer(customerId);
  return account ? (await kb.bundlesOfAccount(account.accountId!)).flatMap((b) => b.subscriptions ?? []) : [];
}
const subscriptionsOfInstance = async (id: string) => (await kb.bundlesOfInstance(id)).flatMap((b) => b.subscriptions ?? []);

describe('startSubscription is only for a pending instance of the caller', () => {
  it("another customer naming Alice's instance gets the same 404 as for an id that is no instance, and nothing opens", async () => {
    const foreign = await start(bob, { instanceId });
    const unknown = await start(bob, { instanceId: randomUUID() });
    for (const r of [foreign, unknown]) {
      expect(r.status, JSON.stringify(r.body)).toBe(404);
      expect(r.body.error).toMatchObject({ code: 'not_found', fields: { instanceId: expect.any(String) } });
    }
    const { requestId: _a, ...foreignError } = foreign.body.error;
    const { requestId: _b, ...unknownError } = unknown.body.error;
    expect(foreignError).toEqual(unknownError);
    expect(await subscriptionsOf(bob.userId)).toEqual([]);
    expect((await subscriptionsOfInstance(instanceId)).map((s) => s.subscriptionId)).toEqual([subscriptionId]);
  });

  it('a customer cannot open a subscription for an id that is no instance', async () => {
    const id = randomUUID();
    const r = await start(alice, { instanceId: id, trial: false, plan: 'basic-immediate' });
    expect(r.status, JSON.stringify(r.body)).toBe(404);
    expect(await subscriptionsOfInstance(id)).toEqual([]);
  });

  it("an admin naming Alice's instance opens nothing on the admin's account", async () => {
    const r = await start(admin, { instanceId });
    expect(r.status, JSON.stringify(r.body)).toBe(404);
    expect(await subscriptionsOf(admin.userId)).toEqual([]);
  });

  it('20 parallel foreign starts for the instance are all refused', async () => {
    const answers = await Promise.all(Array.from({ length: 20 }, () => start(bob, { instanceId })));
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(404));
    expect(await subscriptionsOf(bob.userId)).toEqual([]);
  });

  it('the owner cannot change plan or trial through it: 409, still the one subscription', async () => {
    for (const o of [{ plan: 'premium-monthly' }, { trial: false }]) {
      const r = await start(alice, { instanceId, ...o });
      expect(r.status, JSON.stringify(r.body)).toBe(409);
      expect(r.body.error.code).toBe('instance_mismatch');
      expect(Object.keys(r.body.error.fields)).toEqual(Object.keys(o));
    }
    expect((await subscriptionsOfInstance(instanceId)).map((s) => s.subscriptionId)).toEqual([subscriptionId]);
  });

  it("the owner repeating instances' own call while pending gets the same subscription back", async () => {
    const r = await start(alice, { instanceId });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toEqual({ subscriptionId });
  });

  it('once the instance is no longer pending, no start is taken for it', async () => {
    await db('instance').none(`UPDATE instances SET status = 'provisioning' WHERE id = $1`, [instanceId]);
    const r = await start(alice, { instanceId });
    expect(r.status, JSON.stringify(r.body)).toBe(409);
    expect(r.body.error).toMatchObject({ code: 'instance_state', fields: { instanceId: 'is provisioning' } });
    expect((await subscriptionsOfInstance(instanceId)).map((s) => s.subscriptionId)).toEqual([subscriptionId]);
  });
});
