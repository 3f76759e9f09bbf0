/**
 * SMTP down, end to end through the real broker (RabbitMQ): the `email`
 * function answers 503, the broker retries with backoff, then dead-letters
 * the event; `platform dlq list` shows it and `platform dlq replay` sends the
 * mail exactly once when SMTP is back (through the functions behind those
 * commands, not a spawned CLI: cheap and the same code). Uses the real
 * trigger row of events/triggers.yaml with a shortened retry policy.
 */
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HTTP } from 'cloudevents';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTriggers, type Trigger } from '@saasodoo/events/triggers';
import emailFn from '@saasodoo/fn-email';
import { startBroker, type Broker } from '@saasodoo/platform/broker/broker';
import { listDeadLetters, replayDeadLetters, withAmqp } from '@saasodoo/platform/broker/dlq';
import { config, resetConfig } from '@saasodoo/platform/config';
import { closeDatabases, db } from '@saasodoo/platform/db/index';
import { dropNamespace, migrate } from '@saasodoo/platform/db/migrate';
import { buildEvent } from '@saasodoo/platform/emit';
import { startFunction } from '@saasodoo/platform/host/run-function';
import { closeMailTransport } from '@saasodoo/platform/mail/transport';
import { eventually, removeBroker } from '../../helpers/broker-test-kit.ts';
import { freePort } from '../../helpers/ports.ts';
import { startTestSmtp, type TestSmtp } from '../../helpers/smtp.ts';

const TRIGGER = 'email-on-user-password-reset-requested';
let smtp: TestSmtp;
let server: Server;
let broker: Broker;

beforeAll(async () => {
  smtp = await startTestSmtp();
  process.env.SMTP_URL = smtp.url;
  resetConfig();
  await migrate({ databases: ['communication'] });
  server = await startFunction(emailFn, await freePort()); // faas-js-runtime treats port 0 as 8080
  const real = loadTriggers().find((t) => t.name === TRIGGER);
  if (!real) throw new Error(`events/triggers.yaml has no ${TRIGGER} row`);
  // The real routing row; only the retry policy is shortened so the test does not wait minutes.
  const trigger: Trigger = { ...real, delivery: { ...real.delivery, retry: 2, backoffPolicy: 'linear', backoffDelay: 'PT0.1S' } };
  const fnUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  broker = await startBroker({
    rabbitUrl: config().RABBITMQ_URL,
    name: config().BROKER_NAME,
    port: 0,
    triggers: [trigger],
    resolve: async (fn) => {
      if (fn !== 'email') throw new Error(`unexpected subscriber ${fn}`);
      return fnUrl;
    },
  });
});

afterAll(async () => {
  await broker?.stop();
  await removeBroker(config().RABBITMQ_URL, config().BROKER_NAME, [TRIGGER]).catch(() => {});
  await new Promise((r) => server?.close(r));
  closeMailTransport();
  await closeDatabases();
  await smtp?.close();
  await dropNamespace();
});

const dead = () => withAmqp(config().RABBITMQ_URL, (conn) => listDeadLetters(conn, config().BROKER_NAME, TRIGGER));

describe('SMTP down through the broker', () => {
  it('retries, dead-letters, and `dlq replay` sends the mail once', async () => {
    const id = randomUUID();
    const resetUrl = `${config().PUBLIC_URL}/reset-password?token=${randomUUID()}`;
    const msg = HTTP.binary(buildEvent('com.saasodoo.user.password_reset_requested', { customerId: randomUUID(), email: 'bob@example.test', resetUrl }, { id }));

    smtp.refuse(true);
    const accepted = await fetch(broker.url, { method: 'POST', headers: msg.headers as Record<string, string>, body: msg.body as string });
    expect(accepted.status).toBe(202);
    const [letter] = await eventually(async () => ((await dead()).length === 1 ? dead() : undefined));
    expect(letter.id).toBe(id);
    expect(letter.status).toBe(503);
    expect(smtp.refusals()).toBe(3); // first attempt + 2 retries
    expect(smtp.mails).toHaveLength(0);

    smtp.refuse(false);
    // What `platform dlq replay <trigger> --id <id>` runs.
    const replayed = await withAmqp(config().RABBITMQ_URL, (conn) => replayDeadLetters(conn, config().BROKER_NAME, TRIGGER, id));
    expect(replayed).toEqual([id]);
    await eventually(() => smtp.mails.length === 1);
    expect(smtp.mails[0].rcptTo).toEqual(['bob@example.test']);
    expect(smtp.mails[0].text).toContain(resetUrl);
    expect(await dead()).toEqual([]);

    // The broker delivering the same event again (at least once) sends nothing more. The trigger keeps
    // order (parallelism 1), so once a later event's mail is here the duplicate has been handled.
    const post = (m: typeof msg) => fetch(broker.url, { method: 'POST', headers: m.headers as Record<string, string>, body: m.body as string });
    expect((await post(msg)).status).toBe(202);
    const later = HTTP.binary(buildEvent('com.saasodoo.user.password_reset_requested', { customerId: randomUUID(), email: 'carol@example.test', resetUrl }));
    expect((await post(later)).status).toBe(202);
    await eventually(() => smtp.mails.length === 2);
    expect(smtp.mails.map((m) => m.rcptTo[0])).toEqual(['bob@example.test', 'carol@example.test']);
    expect(await db('communication').one('SELECT count(*)::int AS n FROM mails WHERE event_id = $1', [id])).toEqual({ n: 1 });
  });
});
