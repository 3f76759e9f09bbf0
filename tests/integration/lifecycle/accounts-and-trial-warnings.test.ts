/**
 * lifecycle's two non-Kill-Bill consumers, against the Kill Bill simulator:
 * `user.registered` / `billing.account.ensure` → the customer's Kill Bill
 * account (once, whatever the redeliveries; 503 while Kill Bill is down so
 * the broker retries), and `schedule.daily` → `billing.trial_ending` 7, 3
 * and 1 days before a trial ends (simulator clock), once per trial and day.
 */
import { randomUUID } from 'node:crypto';
import { CloudEvent } from 'cloudevents';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropNamespace, migrate } from '@saasodoo/platform/db/migrate';
import { closeDatabases, db } from '@saasodoo/platform/db/index';
import { closeRedis } from '@saasodoo/platform/redis';
import { resetConfig } from '@saasodoo/platform/config';
import { resetKillbill } from '@saasodoo/platform/billing/killbill';
import { startSubscription } from '@saasodoo/platform/billing/service';
import lifecycleFn from '@saasodoo/fn-lifecycle';
import { startTestKillbill, type TestKillbill } from '../../helpers/killbill.ts';
import { freePort } from '../../helpers/ports.ts';

let kb: TestKillbill;

beforeAll(async () => {
  await migrate({ databases: ['billing', 'killbill'] });
  kb = await startTestKillbill();
});

afterAll(async () => {
  await kb?.stop();
  await closeRedis();
  await closeDatabases();
  await dropNamespace();
});

/** Hands one CloudEvent to lifecycle as the broker would; resolves to the HTTP status it answered. */
async function deliver(type: string, data: unknown, id = randomUUID()): Promise<number> {
  const res = (await lifecycleFn.handle({ cloudevent: new CloudEvent({ id, type, source: '/saasodoo/test', data }) })) as { statusCode: number };
  return res.statusCode;
}

/** Accounts the simulator holds for a customer (its own store: the ground truth for "exactly one"). */
async function accountsOf(customerId: string): Promise<number> {
  return (await kb.sim.db.one<{ n: number }>(`SELECT count(*) AS n FROM kb_objects WHERE kind = 'account' AND external_key = $1`, [customerId])).n;
}

describe('user.registered / billing.account.ensure → the Kill Bill account', () => {
  it('creates the account once (externalKey = customer id, name, email, USD); redeliveries and ensure add nothing', async () => {
    const customerId = randomUUID();
    const data = { customerId, email: `${customerId.slice(0, 8)}@example.com`, firstName: 'Ada', lastName: 'Lovelace' };
    const id = randomUUID();
    expect(await deliver('com.saasodoo.user.registered', data, id)).toBe(204);
    const account = await kb.adapter.accountByCustomer(customerId);
    expect(account).toMatchObject({ externalKey: customerId, email: data.email, name: 'Ada Lovelace', currency: 'USD' });
    // the simulator's test payment method is the default (a real Kill Bill: the operator's payment plugin)
    expect((await kb.adapter.paymentMethods(account!.accountId!)).filter((m) => m.isDefault)).toHaveLength(1);

    // the same event again, then five concurrent redeliveries, then an explicit ensure with another id
    expect(await deliver('com.saasodoo.user.registered', data, id)).toBe(204);
    expect(await Promise.all(Array.from({ length: 5 }, () => deliver('com.saasodoo.user.registered', data, id)))).toEqual([204, 204, 204, 204, 204]);
    expect(await deliver('com.saasodoo.billing.account.ensure', { customerId, email: data.email })).toBe(204);
    expect(await accountsOf(customerId)).toBe(1);
    expect((await kb.adapter.accountByCustomer(customerId))!.accountId).toBe(account!.accountId);
    expect(await kb.adapter.paymentMethods(account!.accountId!)).toHaveLength(1);
  });

  it('concurrent first deliveries of two different events still give one account', async () => {
    const customerId = randomUUID();
    const email = `${customerId.slice(0, 8)}@example.com`;
    const statuses = await Promise.all([
      deliver('com.saasodoo.user.registered', { customerId, email, firstName: 'Grace', lastName: 'Hopper' }),
      deliver('com.saasodoo.billing.account.ensure', { customerId, email }),
      deliver('com.saasodoo.billing.account.ensure', { customerId, email }),
    ]);
    expect(statuses).toEqual([204, 204, 204]);
    expect(await accountsOf(customerId)).toBe(1);
    const account = await kb.adapter.accountByCustomer(customerId);
    expect(await kb.adapter.paymentMethods(account!.accountId!)).toHaveLength(1);
  });

  it('Kill Bill down → 503 (the broker retries); the retry after it is back creates the account', async () => {
    const customerId = randomUUID();
    const data = { customerId, email: `${customerId.slice(0, 8)}@example.com`, firstName: 'Alan', lastName: 'Turing' };
    const id = randomUUID();
    const real = process.env.KILLBILL_URL;
    process.env.KILLBILL_URL = `http://127.0.0.1:${await freePort()}`; // nothing listens there
    resetConfig();
    resetKillbill();
    try {
      expect(await deliver('com.saasodoo.user.registered', data, id)).toBe(503);
    } finally {
      process.env.KILLBILL_URL = real;
      resetConfig();
      resetKillbill();
    }
    expect(await accountsOf(customerId)).toBe(0);
    expect(await deliver('com.saasodoo.user.registered', data, id)).toBe(204);
    expect(await accountsOf(customerId)).toBe(1);
  });

  it('bad data is refused for good (400, dead-lettered), not retried', async () => {
    expect(await deliver('com.saasodoo.user.registered', { customerId: 'not-a-uuid', email: 'x@example.com', firstName: 'A', lastName: 'B' })).toBe(400);
  });
});

describe('schedule.daily → billing.trial_ending (7, 3, 1 days before the end)', () => {
  type Warning = { subscriptionId: string; customerId: string; daysLeft: number; trialEndsAt: string };
  const warnings = async (subscriptionId: string) =>
    (
      await db('billing').manyOrNone<{ data: Warning }>(`SELECT data FROM outbox WHERE type = 'com.saasodoo.billing.trial_ending' AND data->>'subscriptionId' = $1 ORDER BY created_at`, [
        subscriptionId,
      ])
    ).map((r) => r.data);
  const daily = async () => deliver('com.saasodoo.schedule.daily', { at: (await kb.adapter.now()).toISOString() });

  it('the clock moving day by day through a 14-day trial: one warning at 7, 3 and 1 days left; a second daily event the same day adds none', async () => {
    const trial = { customerId: randomUUID(), instanceId: randomUUID() };
    const { subscriptionId } = await startSubscription({ customerId: trial.customerId }, { instanceId: trial.instanceId, plan: 'basic-monthly', trial: true });
    // a trial cancelled on day 2 gets no warnings: Kill Bill no longer shows it in TRIAL
    const cancelled = { customerId: randomUUID(), instanceId: randomUUID() };
    const c = await startSubscription({ customerId: cancelled.customerId }, { instanceId: cancelled.instanceId, plan: 'standard-monthly', trial: true });
    const trialEnd = (await kb.adapter.subscription(subscriptionId))!.events!.find((e) => e.eventType === 'PHASE')!.effectiveDate!;

    const seen: { day: number; daysLeft: number[] }[] = [];
    for (let day = 1; day <= 15; day++) {
      await kb.adapter.moveClock({ days: 1 });
      if (day === 2) await kb.adapter.cancel(c.subscriptionId, 'now');
      const before = (await warnings(subscriptionId)).length;
      expect(await daily()).toBe(204);
      const after = await warnings(subscriptionId);
      seen.push({ day, daysLeft: after.slice(before).map((w) => w.daysLeft) });
      // the schedule fires again the same day (a retry, a second replica): nothing new
      expect(await daily()).toBe(204);
      expect(await warnings(subscriptionId)).toHaveLength(after.length);
    }
    expect(seen.filter((s) => s.daysLeft.length)).toEqual([
      { day: 7, daysLeft: [7] },
      { day: 11, daysLeft: [3] },
      { day: 13, daysLeft: [1] },
    ]);
    const sent = await warnings(subscriptionId);
    expect(sent.map((w) => w.daysLeft)).toEqual([7, 3, 1]);
    for (const w of sent) {
      expect(w).toMatchObject({ customerId: trial.customerId, subscriptionId });
      expect(new Date(w.trialEndsAt).getTime()).toBe(new Date(trialEnd).getTime());
    }
    expect(await warnings(c.subscriptionId)).toEqual([]);
    // each warning event has the customer as subject (the email function mails once per event id)
    const subjects = await db('billing').manyOrNone<{ subject: string }>(`SELECT subject FROM outbox WHERE type = 'com.saasodoo.billing.trial_ending'`);
    expect(new Set(subjects.map((s) => s.subject))).toEqual(new Set([trial.customerId]));
  });
});
