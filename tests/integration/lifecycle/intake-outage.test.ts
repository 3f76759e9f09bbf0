/**
 * webhook-intake while its database is down (issue 6): the intake's pool
 * reaches PostgreSQL through a TCP proxy the test cuts (the machine's
 * PostgreSQL keeps running for everyone else). A notification then gets 503
 * with Retry-After and nothing is stored; the Kill Bill simulator keeps the
 * refused notification and its retry, once the database is back, is accepted
 * and stored exactly once with its CloudEvent.
 */
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropNamespace, migrate } from '@saasodoo/platform/db/migrate';
import { closeDatabases, databaseName, DATABASE_ROLE, pgp, type Db } from '@saasodoo/platform/db/index';
import { connectionFor } from '@saasodoo/platform/db/services';
import { closeRedis } from '@saasodoo/platform/redis';
import { config, resetConfig } from '@saasodoo/platform/config';
import { callbackUrl } from '@saasodoo/platform/billing/webhook';
import { startFunction } from '@saasodoo/platform/host/run-function';
import intakeFn from '@saasodoo/fn-webhook-intake';
import { startTestKillbill, waitFor, type TestKillbill } from '../../helpers/killbill.ts';
import { tcpProxy, type TcpProxy } from '../../helpers/tcp-proxy.ts';

let kb: TestKillbill;
let proxy: TcpProxy;
let intake: Server;
let hookUrl: string;
/** The test's own view of the billing database, straight to PostgreSQL (never through the proxy). */
let direct: Db;
const realPort = process.env.DATABASE_PORT;

beforeAll(async () => {
  await migrate({ databases: ['billing', 'killbill'] });
  // Kill Bill's notification retry schedule, shortened: 1 attempt + 5 retries over ~8 s.
  kb = await startTestKillbill({ retries: '250ms,500ms,1s,2s,4s' }); // its own pool is open, straight to PostgreSQL
  direct = pgp({ ...connectionFor(DATABASE_ROLE.billing, databaseName('billing')), max: 2 });
  proxy = await tcpProxy(config().DATABASE_HOST, config().DATABASE_PORT);
  // From here on, pools opened in this process (the intake's billing pool) go through the proxy.
  process.env.DATABASE_PORT = String(proxy.port);
  resetConfig();
  intake = await startFunction(intakeFn, 0);
  process.env.KILLBILL_CALLBACK_BASE = `http://127.0.0.1:${(intake.address() as { port: number }).port}/`;
  resetConfig();
  hookUrl = callbackUrl();
  await kb.adapter.registerCallback(hookUrl);
});

afterAll(async () => {
  await new Promise((r) => intake?.close(r));
  await kb?.stop();
  await proxy?.close();
  await direct?.$pool.end();
  if (realPort === undefined) delete process.env.DATABASE_PORT;
  else process.env.DATABASE_PORT = realPort;
  delete process.env.KILLBILL_CALLBACK_BASE;
  resetConfig();
  await closeRedis();
  await closeDatabases();
  await dropNamespace();
});

const post = (body: unknown) => fetch(hookUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const notification = () => ({ eventType: 'TAG_CREATION', accountId: randomUUID(), objectType: 'TAG', objectId: randomUUID(), metaData: '{"tagDefinitionName":"AUTO_PAY_OFF"}' });
const stored = async (objectId: string) => (await direct.one<{ n: number }>('SELECT count(*) AS n FROM kb_inbox WHERE object_id = $1', [objectId])).n;

describe('webhook-intake with its database down', () => {
  it('answers 503 with Retry-After, stores nothing; the same notification is accepted once the database is back', async () => {
    const warm = notification();
    expect((await post(warm)).status).toBe(200); // the pool holds live connections through the proxy now
    const n = notification();
    proxy.cut();
    try {
      const down = await post(n);
      expect(down.status).toBe(503);
      expect(down.headers.get('retry-after')).toMatch(/^[1-9][0-9]*$/);
      const body = await down.json();
      expect(body.error.code).toBe('unavailable');
      expect(JSON.stringify(body)).not.toContain(new URL(hookUrl).searchParams.get('token')!);
      expect(await stored(n.objectId)).toBe(0);
    } finally {
      proxy.restore();
    }
    const up = await post(n);
    expect(up.status).toBe(200);
    expect((await up.json()).duplicate).toBe(false);
    expect(await stored(n.objectId)).toBe(1);
    expect(await stored(warm.objectId)).toBe(1);
  });

  it("the simulator's notification refused with 503 is retried on Kill Bill's schedule and stored once the database is back", async () => {
    const customerId = randomUUID();
    proxy.cut();
    let accountId: string;
    try {
      // ACCOUNT_CREATION is queued by the simulator (its own database is up) and posted to the intake
      accountId = (await kb.adapter.ensureAccount({ customerId })).accountId!;
      const refused = async () => {
        const rows = await kb.sim.db.manyOrNone<{ attempt: number; last_status: string | null; delivered_at: Date | null }>(
          `SELECT attempt, last_status, delivered_at FROM kb_notifications WHERE body::jsonb->>'eventType' = 'ACCOUNT_CREATION' AND body::jsonb->>'accountId' = $1`,
          [accountId],
        );
        return rows.length === 1 && rows[0].attempt >= 1 && rows[0].last_status === '503' && !rows[0].delivered_at;
      };
      await waitFor(refused, 10_000, 'the intake to refuse the notification with 503');
      expect(await direct.one('SELECT count(*) AS n FROM kb_inbox WHERE account_id = $1', [accountId])).toEqual({ n: 0 });
    } finally {
      proxy.restore();
    }
    await waitFor(
      async () => {
        const r = await kb.sim.db.oneOrNone<{ delivered_at: Date | null }>(
          `SELECT delivered_at FROM kb_notifications WHERE body::jsonb->>'eventType' = 'ACCOUNT_CREATION' AND body::jsonb->>'accountId' = $1`,
          [accountId],
        );
        return !!r?.delivered_at;
      },
      15_000,
      'the retry to be accepted',
    );
    const delivery = await kb.sim.db.one<{ attempt: number; last_status: string }>(
      `SELECT attempt, last_status FROM kb_notifications WHERE body::jsonb->>'eventType' = 'ACCOUNT_CREATION' AND body::jsonb->>'accountId' = $1`,
      [accountId],
    );
    expect(delivery.attempt).toBeGreaterThanOrEqual(2);
    expect(delivery.last_status).toBe('200');
    const inbox = await direct.many<{ dedupe_key: string; event_type: string; deliveries: number }>('SELECT dedupe_key, event_type, deliveries FROM kb_inbox WHERE account_id = $1', [accountId]);
    expect(inbox).toEqual([{ dedupe_key: expect.any(String), event_type: 'ACCOUNT_CREATION', deliveries: 1 }]);
    const event = await direct.one<{ type: string; extensions: Record<string, string> }>('SELECT type, extensions FROM outbox WHERE id = $1', [inbox[0].dedupe_key]);
    expect(event.type).toBe('org.killbill.account_creation');
    expect(event.extensions).toMatchObject({ kbaccountid: accountId, kbobjecttype: 'ACCOUNT', kbobjectid: accountId });
  });
});
