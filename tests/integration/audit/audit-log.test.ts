/**
 * The audit log (issue 24.3): each action a person asks for leaves exactly
 * one entry with the right actor (the customer, an operator acting on a
 * customer's instance, anonymous for a failed login), billing's decisions
 * arrive through the broker as billing's, a customer reads only their own
 * account's activity, an operator searches and exports everything, and the
 * functions' database role can append and read but never change history.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { db } from '@saasodoo/platform/db/index';
import { setAdminRole } from '@saasodoo/platform/cli/admin';
import { createTestUser, type TestUser } from '../../helpers/auth.ts';
import { startPlatform, type Platform } from '../../helpers/platform.ts';

let p: Platform;
let alice: TestUser;
let bob: TestUser;
let ada: TestUser;
const aliceInstance = randomUUID();
const bobInstance = randomUUID();

type Entry = { actor: string; actor_id: string | null; customer_id: string | null; instance_id: string | null; action: string; outcome: string; detail: string | null };

async function post(path: string, body: unknown, token?: string): Promise<Response> {
  return fetch(`${p.gateway}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
}

async function get(path: string, token: string): Promise<Response> {
  return fetch(`${p.gateway}${path}`, { headers: { authorization: `Bearer ${token}` } });
}

/** The entries of `action` once `n` have arrived (the trail goes through the broker). */
async function entries(action: string, n = 1): Promise<Entry[]> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const rows = await db('audit').manyOrNone<Entry>('SELECT * FROM audit_log WHERE action = $1 ORDER BY at', [action]);
    if (rows.length >= n || Date.now() > deadline) return rows;
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function runningInstance(id: string, owner: TestUser): Promise<void> {
  await db('instance').none(
    `INSERT INTO instances (id, customer_id, name, subdomain, plan, odoo_version, status, billing_status, resources)
     VALUES ($1, $2, 'Audit Co', $3, 'basic-immediate', '17', 'running', 'paid', '{"cpu":1,"memoryMiB":1024,"storageGiB":5}')`,
    [id, owner.userId, `audit-${id.slice(0, 8)}`],
  );
}

beforeAll(async () => {
  const fns = ['login', 'logout', 'account', 'instance-action', 'dead-letters', 'audit', 'audit-log'];
  p = await startPlatform({ only: fns, warm: fns });
  [alice, bob, ada] = await Promise.all([createTestUser(), createTestUser(), createTestUser({ role: 'admin' })]);
  await runningInstance(aliceInstance, alice);
  await runningInstance(bobInstance, bob);
}, 180_000);

afterAll(async () => {
  await p?.stop();
});

describe('each action leaves exactly one entry with the right actor', () => {
  it('a login by the customer, a failed one by nobody known', async () => {
    expect((await post('/api/login', { email: alice.email, password: alice.password })).status).toBe(200);
    expect((await post('/api/login', { email: bob.email, password: 'not the password at all' })).status).toBe(401);
    const rows = await entries('login', 2);
    // Through the auth database's outbox, so an entry survives a broker outage (the relay sends it later).
    const queued = await db('auth').manyOrNone<{ data: { action: string } }>(`SELECT data FROM outbox WHERE type = 'com.saasodoo.audit.action'`);
    expect(queued.filter((q) => q.data.action === 'login')).toHaveLength(2);
    expect(rows).toHaveLength(2);
    const ok = rows.find((r) => r.outcome === 'succeeded')!;
    expect(ok).toMatchObject({ actor: 'customer', actor_id: alice.userId, customer_id: alice.userId });
    const denied = rows.find((r) => r.outcome === 'denied')!;
    expect(denied).toMatchObject({ actor: 'anonymous', actor_id: null, customer_id: null });
  });

  it('profile and password changes, a revoked session and a logout, each by the customer', async () => {
    // A second session, so there is one to revoke.
    expect((await post('/api/login', { email: alice.email, password: alice.password })).status).toBe(200);
    expect((await post('/api/account', { action: 'updateProfile', firstName: 'Alicia' }, alice.accessToken)).status).toBe(200);
    const sessions = (await get('/api/account', alice.accessToken).then((r) => r.json())).sessions as { id: string; current: boolean }[];
    const spare = sessions.find((s) => s.id !== alice.sessionId)!;
    expect((await post('/api/account', { action: 'revokeSession', sessionId: spare.id }, alice.accessToken)).status).toBe(200);
    expect((await post('/api/account', { action: 'changePassword', currentPassword: alice.password, newPassword: 'a brand new pass phrase 2026' }, alice.accessToken)).status).toBe(200);
    expect((await post('/api/logout', {}, alice.accessToken)).status).toBe(204);
    for (const action of ['account.updateprofile', 'account.revokesession', 'account.changepassword', 'logout']) {
      const rows = await entries(action);
      expect(rows, action).toHaveLength(1);
      expect(rows[0], action).toMatchObject({ actor: 'customer', actor_id: alice.userId, customer_id: alice.userId, outcome: 'succeeded' });
    }
  });

  it('an instance action by its owner, and one by an operator on another customer’s instance', async () => {
    expect((await post('/api/instance-action', { id: bobInstance, action: 'stop' }, bob.accessToken)).status).toBe(202);
    expect((await post('/api/instance-action', { id: aliceInstance, action: 'backup' }, ada.accessToken)).status).toBe(202);
    const [stop] = await entries('instance-action.stop');
    expect(stop).toMatchObject({ actor: 'customer', actor_id: bob.userId, customer_id: bob.userId, instance_id: bobInstance, outcome: 'succeeded' });
    const backups = await entries('instance-action.backup');
    expect(backups).toHaveLength(1);
    expect(backups[0]).toMatchObject({ actor: 'operator', actor_id: ada.userId, customer_id: alice.userId, instance_id: aliceInstance });
  });

  it('a refused operator replay is recorded as refused', async () => {
    expect((await post('/api/dead-letters', { trigger: 'no-such-trigger' }, ada.accessToken)).status).toBe(400);
    const [row] = await entries('dead-letters');
    expect(row).toMatchObject({ actor: 'operator', actor_id: ada.userId, outcome: 'refused' });
  });

  it("an operator's command-line grant and revoke (no HTTP, so no kit) each leave one entry on the account", async () => {
    const carol = await createTestUser();
    await setAdminRole(carol.email, 'admin');
    await setAdminRole(carol.email, 'customer');
    const [grant] = await entries('admin.grant');
    const revokes = (await entries('admin.revoke')).filter((r) => r.customer_id === carol.userId);
    expect(grant).toMatchObject({ actor: 'operator', actor_id: null, customer_id: carol.userId, outcome: 'succeeded' });
    expect(grant.detail).toMatch(/^role set to admin \(command line, user \S+\)$/);
    expect(revokes).toHaveLength(1);
    await expect(setAdminRole('nobody@example.test', 'admin')).rejects.toThrow('No account uses');
    expect(await entries('admin.grant')).toHaveLength(1); // a refused grant changed nothing and records nothing
  });

  it('billing’s decisions arrive through the broker, stored once however often delivered', async () => {
    const id = randomUUID();
    const event = {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'ce-specversion': '1.0',
        'ce-id': id,
        'ce-source': '/saasodoo/lifecycle',
        'ce-type': 'com.saasodoo.billing.status_changed',
      },
      body: JSON.stringify({ customerId: bob.userId, instanceId: bobInstance, status: 'overdue', reason: 'payment failed' }),
    };
    const ingress = `http://127.0.0.1:${p.env.BROKER_PORT}`;
    expect((await fetch(ingress, event)).status).toBe(202);
    expect((await fetch(ingress, event)).status).toBe(202);
    const rows = await entries('billing.overdue');
    await new Promise((r) => setTimeout(r, 500)); // give a second copy the chance to land, were it stored twice
    expect(await entries('billing.overdue')).toHaveLength(1);
    expect(rows[0]).toMatchObject({ actor: 'billing', customer_id: bob.userId, instance_id: bobInstance });
  });
});

describe('who reads what', () => {
  it('a customer sees only their own account’s entries and may not ask for another’s', async () => {
    await entries('instance-action.backup');
    const mine = await get('/api/audit-log?limit=200', bob.accessToken).then((r) => r.json());
    expect(mine.items.length).toBeGreaterThan(0);
    for (const e of mine.items) expect(e.customerId).toBe(bob.userId);
    const theirs = await get(`/api/audit-log?customerId=${alice.userId}`, bob.accessToken);
    expect(theirs.status).toBe(403);
    const bad = await get('/api/audit-log?from=yesterday', bob.accessToken);
    expect(bad.status).toBe(400);
    expect((await bad.json()).error.fields).toHaveProperty('from');
  });

  it('an operator searches by customer, actor and action, and exports JSON lines', async () => {
    const byCustomer = await get(`/api/audit-log?customerId=${alice.userId}&actor=operator`, ada.accessToken).then((r) => r.json());
    expect(byCustomer.items.map((e: { action: string }) => e.action)).toEqual(['instance-action.backup']);
    const byAction = await get('/api/audit-log?action=instance-action', ada.accessToken).then((r) => r.json());
    expect(new Set(byAction.items.map((e: { action: string }) => e.action))).toEqual(new Set(['instance-action.stop', 'instance-action.backup']));
    const res = await get(`/api/audit-log?format=jsonl&customerId=${alice.userId}`, ada.accessToken);
    expect(res.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    const lines = (await res.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.length).toBeGreaterThanOrEqual(6);
    for (const l of lines) expect(l.customerId).toBe(alice.userId);
  });

  it('dates with any ISO 8601 offset are searched in UTC (an offset PostgreSQL refuses was a 500)', async () => {
    // 22:27:32 at −21:16 is 19:43:32 UTC the next day: after every entry of this run, in the year 7242.
    const all = await get(`/api/audit-log?customerId=${alice.userId}&to=${encodeURIComponent('7242-12-08T22:27:32-21:16')}`, ada.accessToken);
    expect(all.status).toBe(200);
    expect((await all.json()).items.length).toBeGreaterThan(0);
    const none = await get(`/api/audit-log?customerId=${alice.userId}&from=${encodeURIComponent('7242-12-08T22:27:32-21:16')}`, ada.accessToken);
    expect((await none.json()).items).toEqual([]);
    expect((await get('/api/audit-log?to=2026-13-01T00:00:00Z', ada.accessToken)).status).toBe(400);
  });
});

describe('append-only', () => {
  it('the functions’ role can neither update nor delete entries, and pruning keeps the last 30 days', async () => {
    await expect(db('audit').none(`UPDATE audit_log SET action = 'forged'`)).rejects.toThrow(/permission denied/);
    await expect(db('audit').none('DELETE FROM audit_log')).rejects.toThrow(/permission denied/);
    await expect(db('audit').none('TRUNCATE audit_log')).rejects.toThrow(/permission denied/);
    const old = `old-${randomUUID()}`;
    const recent = `recent-${randomUUID()}`;
    for (const [id, days] of [
      [old, 100],
      [recent, 10],
    ] as const) {
      await db('audit').none(`INSERT INTO audit_log (id, at, actor, action, outcome) VALUES ($1, now() - make_interval(days => $2), 'system', 'test.prune', 'succeeded')`, [id, days]);
    }
    await db('audit').one('SELECT audit_prune(0)');
    const left = await db('audit').map('SELECT id FROM audit_log WHERE action = $1', ['test.prune'], (r: { id: string }) => r.id);
    expect(left).toEqual([recent]);
  });
});
