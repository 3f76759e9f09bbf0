/**
 * Kill Bill notifications → webhook-intake (through the gateway, as the
 * simulator posts them: h2c upgrade headers, every one sent twice) → inbox +
 * outbox → lifecycle → instance commands (SPEC 5), asserted on the billing
 * outbox. Effects happen once whatever the duplicates and order.
 */
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { CloudEvent } from 'cloudevents';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropNamespace, migrate } from '@saasodoo/platform/db/migrate';
import { closeDatabases, db } from '@saasodoo/platform/db/index';
import { closeRedis } from '@saasodoo/platform/redis';
import { startFunction } from '@saasodoo/platform/host/run-function';
import { startGateway } from '@saasodoo/platform/host/gateway';
import type { Supervisor } from '@saasodoo/platform/host/supervisor';
import { callbackUrl } from '@saasodoo/platform/billing/webhook';
import { payNow, startSubscription } from '@saasodoo/platform/billing/service';
import { resetKillbill } from '@saasodoo/platform/billing/killbill';
import intakeFn from '@saasodoo/fn-webhook-intake';
import { isKnownType } from '@saasodoo/events';
import lifecycleFn, { KILLBILL_TYPES } from '@saasodoo/fn-lifecycle';
import { startTestKillbill, waitFor, type TestKillbill } from '../../helpers/killbill.ts';
import { lossyHttpProxy } from '../../helpers/lossy-http-proxy.ts';
import { freePort } from '../../helpers/ports.ts';

let kb: TestKillbill;
let intake: Server;
let gateway: Server;
let hookUrl: string;

beforeAll(async () => {
  await migrate({ databases: ['billing', 'killbill'] });
  kb = await startTestKillbill({ duplicateRate: 1 });
  const intakePort = await freePort();
  intake = await startFunction(intakeFn, intakePort);
  const gwPort = await freePort();
  const supervisor = {
    spec: (n: string) => (n === 'webhook-intake' ? { invoke: 'http' } : undefined),
    url: async () => `http://127.0.0.1:${intakePort}`,
    touch: () => {},
  } as unknown as Supervisor;
  gateway = await startGateway({ port: gwPort, supervisor, baseDomain: 'localhost' });
  process.env.GATEWAY_URL = `http://127.0.0.1:${gwPort}`;
  const { resetConfig } = await import('@saasodoo/platform/config');
  resetConfig();
  hookUrl = callbackUrl();
  await kb.adapter.registerCallback(hookUrl);
});

afterAll(async () => {
  await new Promise((r) => intake?.close(r));
  await new Promise((r) => gateway?.close(r));
  await kb?.stop();
  await closeRedis();
  await closeDatabases();
  await dropNamespace();
});

type OutRow = { id: string; type: string; data: any; subject: string | null; extensions: Record<string, string> };

/** Hands every unprocessed org.killbill.* outbox event to lifecycle (optionally in reverse order). */
async function pump(o: { reverse?: boolean; where?: (r: OutRow) => boolean } = {}): Promise<number> {
  let rows = await db('billing').manyOrNone<OutRow>(`SELECT * FROM outbox WHERE type LIKE 'org.killbill.%' AND published_at IS NULL ORDER BY created_at`);
  // what the broker does: only the types lifecycle subscribes to reach it (events/triggers.yaml)
  const others = rows.filter((r) => !KILLBILL_TYPES.includes(r.type.slice('org.killbill.'.length).toUpperCase()));
  if (others.length) await db('billing').none('UPDATE outbox SET published_at = now() WHERE id = ANY($1::uuid[])', [others.map((r) => r.id)]);
  rows = rows.filter((r) => !others.includes(r));
  if (o.where) rows = rows.filter(o.where);
  if (o.reverse) rows.reverse();
  for (const r of rows) {
    const res = (await lifecycleFn.handle({ cloudevent: new CloudEvent({ id: r.id, type: r.type, source: '/saasodoo/webhook-intake', data: r.data, ...r.extensions }) })) as {
      statusCode: number;
      body: unknown;
    };
    expect(res.statusCode, JSON.stringify(res.body)).toBe(204);
    // a redelivery of the same event id has no second effect
    await lifecycleFn.handle({ cloudevent: new CloudEvent({ id: r.id, type: r.type, source: '/saasodoo/webhook-intake', data: r.data, ...r.extensions }) });
    await db('billing').none('UPDATE outbox SET published_at = now() WHERE id = $1', [r.id]);
  }
  return rows.length;
}

/** Waits until the simulator has nothing left to deliver, then pumps. */
async function settle(): Promise<void> {
  await waitFor(
    async () => {
      const c = await kb.sim.delivery.counts();
      return c.pending === 0 && c.inFlight === 0;
    },
    20_000,
    'deliveries',
  );
  await pump();
}

async function commands(instanceId: string): Promise<string[]> {
  const rows = await db('billing').manyOrNone<{ type: string }>(`SELECT type FROM outbox WHERE type LIKE 'com.saasodoo.instance.%' AND data->>'instanceId' = $1 ORDER BY created_at`, [instanceId]);
  return rows.map((r) => r.type.replace('com.saasodoo.', ''));
}
async function reasons(instanceId: string): Promise<string[]> {
  const rows = await db('billing').manyOrNone<{ data: any }>(`SELECT data FROM outbox WHERE type = 'com.saasodoo.billing.status_changed' AND data->>'instanceId' = $1 ORDER BY created_at`, [
    instanceId,
  ]);
  return rows.map((r) => r.data.reason);
}

async function newSubscription(plan: string, trial: boolean, outcome: 'SUCCESS' | 'FAILURE' = 'SUCCESS') {
  const customerId = randomUUID();
  const instanceId = randomUUID();
  const account = await kb.adapter.ensureAccount({ customerId });
  if (outcome === 'FAILURE') await kb.adapter.setPaymentOutcome(account.accountId!, 'FAILURE');
  const { subscriptionId } = await startSubscription({ customerId }, { instanceId, plan, trial });
  return { customerId, instanceId, accountId: account.accountId!, subscriptionId };
}

describe('webhook-intake', () => {
  const post = (qs: string, body: unknown, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
    fetch(`${process.env.GATEWAY_URL}/api/webhook-intake?${qs}`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const good = () => ({ eventType: 'TAG_CREATION', accountId: randomUUID(), objectType: 'TAG', objectId: randomUUID(), metaData: '{"tagDefinitionName":"AUTO_PAY_OFF"}' });
  const qs = () => new URL(hookUrl).search.slice(1);

  it('wrong or missing token → 401 and nothing stored', async () => {
    const before = await db('billing').one('SELECT count(*) AS n FROM kb_inbox');
    expect((await post('tenant=saasodoo&token=wrong', good())).status).toBe(401);
    expect((await post('tenant=saasodoo', good())).status).toBe(401);
    expect((await post(`tenant=other&token=${new URL(hookUrl).searchParams.get('token')}`, good())).status).toBe(401);
    expect((await db('billing').one('SELECT count(*) AS n FROM kb_inbox')).n).toBe(before.n);
  });

  it('malformed → 400 naming the field; not JSON → 415; over 64 KiB → 413; unknown types accepted', async () => {
    const bad = await post(qs(), { ...good(), accountId: 'nope' });
    expect(bad.status).toBe(400);
    expect((await bad.json()).error.fields).toHaveProperty('accountId');
    const badMeta = await post(qs(), { ...good(), metaData: '{not json' });
    expect((await badMeta.json()).error.fields).toHaveProperty('metaData');
    expect((await post(qs(), 'x', { 'content-type': 'text/plain' })).status).toBe(415);
    expect((await post(qs(), { ...good(), metaData: JSON.stringify({ pad: 'x'.repeat(70_000) }) })).status).toBe(413);
    const unknown = await post(qs(), { ...good(), eventType: 'SOMETHING_NEW_IN_2027' });
    expect(unknown.status).toBe(200);
  });

  it('tolerant of every Kill Bill 0.22-0.24 shape: nullable fields may be absent, unknown types are stored as valid events', async () => {
    const shapes = [
      { eventType: 'BROADCAST_SERVICE', objectType: 'SERVICE_BROADCAST', metaData: '{"service":"s","commandType":"c","eventJson":"{}"}' }, // no ids at all
      { eventType: 'INVOICE_NOTIFICATION', accountId: randomUUID(), objectType: 'INVOICE', metaData: '{"targetDate":"2026-12-07","amountOwed":5,"currency":"USD"}' }, // objectId absent
      { eventType: 'ACCOUNT_CHANGE', accountId: randomUUID(), objectType: 'ACCOUNT', objectId: randomUUID() }, // metaData absent
      { ...good(), eventType: 'SUBSCRIPTION_UNDO_CHANGE2', extraFieldFromANewerKillBill: true }, // a newer type, an unknown key
    ];
    for (const n of shapes) {
      const res = await post(qs(), n);
      expect(res.status, JSON.stringify(n)).toBe(200);
      const row = await db('billing').one<OutRow>('SELECT * FROM outbox WHERE id = $1', [(await res.json()).id]);
      expect(isKnownType(row.type), row.type).toBe(true);
      expect(row.data).toMatchObject({ accountId: (n as { accountId?: string }).accountId ?? null, metaData: n.metaData ?? null });
    }
  });

  it('one CloudEvent per distinct notification: id = dedupe key, Kill Bill extensions, a repeat is recognised', async () => {
    const n = good();
    const a = await (await post(qs(), n)).json();
    const b = await (await post(qs(), n)).json();
    expect(b).toEqual({ id: a.id, duplicate: true });
    const row = await db('billing').one<OutRow>('SELECT * FROM outbox WHERE id = $1', [a.id]);
    expect(row.type).toBe('org.killbill.tag_creation');
    expect(row.extensions).toMatchObject({ kbaccountid: n.accountId, kbobjecttype: 'TAG', kbobjectid: n.objectId });
    expect((await db('billing').one('SELECT deliveries FROM kb_inbox WHERE dedupe_key = $1', [a.id])).deliveries).toBe(2);
    // kb_inbox is the record of Kill Bill's deliveries: no entry in the audit trail of people's actions (one commit less each).
    expect(await db('billing').manyOrNone(`SELECT id FROM outbox WHERE type = 'com.saasodoo.audit.action' AND created_at > now() - interval '1 minute'`)).toEqual([]);
  });

  it('a burst of 1,000 notifications: 1,000 accepted, each stored once', async () => {
    const list = Array.from({ length: 1000 }, good); // the rate itself is measured by tests/bench/webhook.ts
    const statuses: number[] = [];
    for (let i = 0; i < list.length; i += 50) {
      statuses.push(...(await Promise.all(list.slice(i, i + 50).map(async (n) => (await post(qs(), n)).status))));
    }
    expect(statuses.filter((s) => s === 200)).toHaveLength(1000);
    const ids = list.map((n) => n.objectId);
    expect((await db('billing').one('SELECT count(*) AS n FROM kb_inbox WHERE object_id = ANY($1::uuid[])', [ids])).n).toBe(1000);
    await db('billing').none(`UPDATE outbox SET published_at = now() WHERE type = 'org.killbill.tag_creation'`);
  });
});

describe('lifecycle (SPEC 5)', () => {
  it('trial: provision once (billing trial); trial end + payment → paid, still one provisioning', async () => {
    const c = await newSubscription('basic-monthly', true);
    await settle();
    expect(await commands(c.instanceId)).toEqual(['instance.provision']);
    expect(await reasons(c.instanceId)).toEqual(['trial_started']);
    await kb.adapter.moveClock({ days: 14 });
    await settle();
    expect(await commands(c.instanceId)).toEqual(['instance.provision']);
    // Trial end, first invoice and its payment are one moment for the customer: one notice, saying the payment went through.
    expect(await reasons(c.instanceId)).toEqual(['trial_started', 'trial_ended']);
    const ended = await db('billing').one(`SELECT data FROM outbox WHERE type = 'com.saasodoo.billing.status_changed' AND data->>'instanceId' = $1 AND data->>'reason' = 'trial_ended'`, [
      c.instanceId,
    ]);
    expect(ended.data.status).toBe('paid');
    const row = await db('billing').one('SELECT * FROM lifecycle_subscriptions WHERE subscription_id = $1', [c.subscriptionId]);
    expect(row).toMatchObject({ billing_status: 'paid', provisioned: true, suspended: false, terminated: false });
  });

  it('plan without trial: pending until paid; failed payment → no provisioning, billing overdue', async () => {
    const paid = await newSubscription('basic-immediate', false);
    const unpaid = await newSubscription('basic-immediate', false, 'FAILURE');
    await settle();
    expect(await commands(paid.instanceId)).toEqual(['instance.provision']);
    expect(await commands(unpaid.instanceId)).toEqual([]);
    expect(await reasons(unpaid.instanceId)).toContain('payment_failed');
    expect((await db('billing').one('SELECT billing_status FROM lifecycle_subscriptions WHERE subscription_id = $1', [unpaid.subscriptionId])).billing_status).toBe('overdue');
    await kb.adapter.setPaymentOutcome(unpaid.accountId, 'SUCCESS');
    await settle();
    expect(await commands(unpaid.instanceId)).toEqual(['instance.provision']);
  });

  it('overdue: warning at 10 days, suspend at 14; pay now (declined, then paid) resumes once', async () => {
    const c = await newSubscription('standard-monthly', true, 'FAILURE');
    await settle();
    await kb.adapter.moveClock({ days: 14 });
    await settle();
    await kb.adapter.moveClock({ days: 10 });
    await settle();
    expect(await reasons(c.instanceId)).toContain('overdue_warning');
    expect(await commands(c.instanceId)).toEqual(['instance.provision']);
    await kb.adapter.moveClock({ days: 4 });
    await settle();
    expect(await commands(c.instanceId)).toEqual(['instance.provision', 'instance.suspend']);
    // Pay now with the declining method: Kill Bill answers 201, the invoice stays unpaid, nothing resumes.
    expect((await payNow(c.customerId)).declined).toEqual([expect.objectContaining({ balance: 8, reason: 'declined by the bank' })]);
    await settle();
    expect(await commands(c.instanceId)).toEqual(['instance.provision', 'instance.suspend']);
    // A working method, then Pay now: paid, and the instance resumes through Kill Bill's notifications, once.
    await kb.adapter.setPaymentOutcome(c.accountId, 'SUCCESS', { payUnpaid: false });
    expect(await payNow(c.customerId)).toEqual({ paid: [expect.objectContaining({ amount: 8 })], declined: [] });
    expect(await payNow(c.customerId)).toEqual({ paid: [], declined: [] }); // nothing left: Kill Bill would answer 204
    await settle();
    expect(await commands(c.instanceId)).toEqual(['instance.provision', 'instance.suspend', 'instance.resume']);
    expect(await reasons(c.instanceId)).toEqual(expect.arrayContaining(['suspended', 'resumed']));
    // Numbered, so instance-ops can ignore a suspend a broker retry delivers after the resume.
    const seqs = await db('billing').manyOrNone<{ seq: number }>(
      `SELECT (data->>'seq')::int AS seq FROM outbox WHERE type IN ('com.saasodoo.instance.suspend', 'com.saasodoo.instance.resume') AND data->>'instanceId' = $1 ORDER BY created_at`,
      [c.instanceId],
    );
    expect(seqs.map((r) => r.seq)).toEqual([1, 2]);
  });

  it('a decision on a state read before a newer decision committed is taken again on fresh state (no suspend after the resume)', async () => {
    const c = await newSubscription('standard-monthly', true, 'FAILURE');
    await settle();
    await kb.adapter.moveClock({ days: 28 });
    await settle();
    expect(await commands(c.instanceId)).toEqual(['instance.provision', 'instance.suspend']);
    // Lifecycle reads Kill Bill through a proxy that holds the overdue answer of the first read.
    const proxy = await lossyHttpProxy(kb.sim.url);
    const { resetConfig } = await import('@saasodoo/platform/config');
    const point = (url: string) => {
      process.env.KILLBILL_URL = url;
      resetConfig();
      resetKillbill();
    };
    point(proxy.url);
    let release!: () => void;
    proxy.hold = new Promise((r) => (release = r));
    proxy.slow = (r) => r.path.endsWith('/overdue');
    const look = (id: string) =>
      lifecycleFn.handle({
        cloudevent: new CloudEvent({
          id,
          type: 'org.killbill.overdue_change',
          source: '/saasodoo/webhook-intake',
          data: { eventType: 'OVERDUE_CHANGE', accountId: c.accountId, objectType: 'ACCOUNT', objectId: c.accountId, metaData: null },
        }),
      }) as Promise<{ statusCode: number }>;
    try {
      const stale = look(randomUUID()); // reads "blocked", answer held
      await waitFor(async () => proxy.held.length === 1, 10_000, 'the held read');
      proxy.slow = undefined;
      await kb.adapter.setPaymentOutcome(c.accountId, 'SUCCESS'); // the customer pays: Kill Bill clears overdue
      expect((await look(randomUUID())).statusCode).toBe(204); // decides on the cleared state: resume
      expect(await commands(c.instanceId)).toEqual(['instance.provision', 'instance.suspend', 'instance.resume']);
      release();
      expect((await stale).statusCode).toBe(204);
      // The held decision was taken again on Kill Bill's current state: no second suspend.
      expect(await commands(c.instanceId)).toEqual(['instance.provision', 'instance.suspend', 'instance.resume']);
    } finally {
      release();
      point(kb.sim.url);
      await proxy.close();
    }
  });

  it('cancel end of term: mail with the effective date, terminate once at the end; plan change → quota', async () => {
    const c = await newSubscription('basic-immediate', false);
    await settle();
    await kb.adapter.changePlan(c.subscriptionId, { name: 'standard-monthly', productName: 'Standard' });
    await settle();
    expect(await commands(c.instanceId)).toEqual(['instance.provision', 'instance.quota']);
    await kb.adapter.cancel(c.subscriptionId, 'end_of_term');
    await settle();
    const scheduled = await db('billing').one(
      `SELECT data FROM outbox WHERE type = 'com.saasodoo.billing.status_changed' AND data->>'instanceId' = $1 AND data->>'reason' = 'cancellation_scheduled'`,
      [c.instanceId],
    );
    expect(scheduled.data.effectiveDate).toMatch(/^\d{4}-\d{2}-\d{2}/);
    expect(await commands(c.instanceId)).not.toContain('instance.terminate');
    await kb.adapter.moveClock({ days: 32 });
    await settle();
    expect((await commands(c.instanceId)).filter((x) => x === 'instance.terminate')).toHaveLength(1);
  });

  it('a forged cancel terminates nothing: Kill Bill says the subscription is active', async () => {
    const c = await newSubscription('basic-immediate', false);
    await settle();
    const forged = {
      eventType: 'SUBSCRIPTION_CANCEL',
      accountId: c.accountId,
      objectType: 'SUBSCRIPTION',
      objectId: c.subscriptionId,
      metaData: JSON.stringify({ actionType: 'EFFECTIVE', bundleExternalKey: c.instanceId }),
    };
    const res = await fetch(hookUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(forged) });
    expect(res.status).toBe(200);
    await pump();
    expect(await commands(c.instanceId)).toEqual(['instance.provision']);
  });

  it('the same notifications in reverse order give the same final state', async () => {
    const c = await newSubscription('standard-monthly', true);
    await waitFor(async () => (await kb.sim.delivery.counts()).pending === 0, 20_000);
    await kb.adapter.moveClock({ days: 14 });
    await waitFor(async () => {
      const x = await kb.sim.delivery.counts();
      return x.pending === 0 && x.inFlight === 0;
    }, 20_000);
    await pump({ reverse: true });
    expect(await commands(c.instanceId)).toEqual(['instance.provision']);
    const row = await db('billing').one('SELECT * FROM lifecycle_subscriptions WHERE subscription_id = $1', [c.subscriptionId]);
    expect(row).toMatchObject({ billing_status: 'paid', provisioned: true, suspended: false, terminated: false, plan_id: 'standard-monthly' });
  });
});
