/**
 * The admin `dead-letters` function (what the operator portal calls): lists
 * a trigger's dead letters with secrets redacted, replays one to the
 * trigger's own queue, and refuses non-admins and unknown triggers.
 */
import type { Server } from 'node:http';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTriggers } from '@saasodoo/events/triggers';
import { config } from '@saasodoo/platform/config';
import { closeDatabases } from '@saasodoo/platform/db/index';
import { dropNamespace, migrate } from '@saasodoo/platform/db/migrate';
import { closeRedis } from '@saasodoo/platform/redis';
import { startFunction } from '@saasodoo/platform/host/run-function';
import { declareTrigger, queueNames } from '@saasodoo/platform/broker/topology';
import fn from '@saasodoo/fn-dead-letters';
import { createTestUser, type TestUser } from '../../helpers/auth.ts';
import { removeBroker } from '../../helpers/broker-test-kit.ts';
import { freePort } from '../../helpers/ports.ts';

const c = config();
const trigger = loadTriggers()[0];
let server: Server;
let url: string;
let admin: TestUser;
let customer: TestUser;

beforeAll(async () => {
  await migrate({ databases: ['auth'] });
  admin = await createTestUser({ role: 'admin' });
  customer = await createTestUser();
  const port = await freePort();
  server = await startFunction(fn, port);
  url = `http://127.0.0.1:${port}`;
  if (!trigger) return;
  // A dead letter as the dispatcher writes it.
  const conn = await amqp.connect(c.RABBITMQ_URL);
  const ch = await conn.createConfirmChannel();
  await declareTrigger(ch, c.BROKER_NAME, trigger);
  ch.sendToQueue(queueNames(c.BROKER_NAME, trigger.name).dlq, Buffer.from(JSON.stringify({ email: 'a@example.test', password: 'hunter2hunter2' })), {
    persistent: true,
    contentType: 'application/json',
    headers: {
      id: 'dead-1',
      type: trigger.filter.attributes.type,
      source: '/tests',
      specversion: '1.0',
      'x-attempt': 1,
      'x-dead-status': 422,
      'x-dead-reason': 'HTTP 422 (not retryable)',
      'x-dead-body': 'nope',
      'x-dead-trigger': trigger.name,
    },
  });
  await ch.waitForConfirms();
  await conn.close();
});

afterAll(async () => {
  await new Promise((r) => server?.close(r));
  if (trigger) await removeBroker(c.RABBITMQ_URL, c.BROKER_NAME, [trigger.name]).catch(() => {});
  await closeRedis();
  await closeDatabases();
  await dropNamespace();
});

const call = (token: string | undefined, init: RequestInit & { query?: string } = {}) =>
  fetch(`${url}/${init.query ? `?${init.query}` : ''}`, {
    ...init,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(init.body ? { 'content-type': 'application/json' } : {}) },
  });

describe('dead-letters function', () => {
  it('is for admins only', async () => {
    expect((await call(undefined)).status).toBe(401);
    expect((await call(customer.accessToken)).status).toBe(403);
  });

  it('names the field of a bad request', async () => {
    const r = await call(admin.accessToken, { query: 'trigger=no-such-trigger' });
    expect(r.status).toBe(400);
    expect((await r.json()).error.fields).toEqual({ trigger: 'no such trigger' });
    const b = await call(admin.accessToken, { method: 'POST', body: JSON.stringify({}) });
    expect(b.status).toBe(400);
    expect((await b.json()).error.fields).toHaveProperty('trigger');
  });

  it.skipIf(!trigger)('lists dead letters with secrets redacted, then replays one', async () => {
    const list = await call(admin.accessToken, { query: `trigger=${trigger.name}` });
    expect(list.status).toBe(200);
    const { items } = await list.json();
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ id: 'dead-1', trigger: trigger.name, status: 422, body: 'nope', attempts: 1 });
    expect(items[0].data).toEqual({ email: 'a@example.test', password: '[redacted]' });

    const missing = await call(admin.accessToken, { method: 'POST', body: JSON.stringify({ trigger: trigger.name, id: 'nope' }) });
    expect(missing.status).toBe(404);

    const replay = await call(admin.accessToken, { method: 'POST', body: JSON.stringify({ trigger: trigger.name, id: 'dead-1' }) });
    expect(replay.status).toBe(200);
    expect((await replay.json()).replayed).toEqual(['dead-1']);
    const after = await (await call(admin.accessToken, { query: `trigger=${trigger.name}` })).json();
    expect(after.items).toEqual([]);
    const conn = await amqp.connect(c.RABBITMQ_URL);
    const ch = await conn.createChannel();
    expect((await ch.checkQueue(queueNames(c.BROKER_NAME, trigger.name).main)).messageCount).toBe(1);
    await conn.close();
  });
});
