/**
 * SMTP down, end to end through the real broker (RabbitMQ): the `email`
 * function answers 503, the broker retries with backoff, then dead-letters
 * the event; `platform dlq list` shows it and `platform dlq replay` sends the
 * mail exactly once when SMTP is back. Uses the real trigger row of
 * events/triggers.yaml with a shortened retry policy.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { HTTP } from 'cloudevents';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTriggers, type Trigger } from '@saasodoo/events/triggers';
import emailFn from '../../../functions/email/index.ts';
import { startBroker, type Broker } from '../../../platform/src/broker/broker.ts';
import { listDeadLetters, withAmqp } from '../../../platform/src/broker/dlq.ts';
import { config, repoRoot, resetConfig } from '../../../platform/src/config.ts';
import { closeDatabases, db } from '../../../platform/src/db/index.ts';
import { dropNamespace, migrate } from '../../../platform/src/db/migrate.ts';
import { buildEvent } from '../../../platform/src/emit.ts';
import { startFunction } from '../../../platform/src/host/run-function.ts';
import { closeMailTransport } from '../../../platform/src/mail/transport.ts';
import { eventually, removeBroker } from '../../helpers/broker-test-kit.ts';
import { startTestSmtp, type TestSmtp } from '../../helpers/smtp.ts';

const run = promisify(execFile);
/** Runs the real `platform` CLI with this test's environment (broker name, RabbitMQ URL). */
async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'platform/src/cli.ts'), ...args], { cwd: repoRoot, env: process.env });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const TRIGGER = 'email-on-user-password-reset-requested';
let smtp: TestSmtp;
let server: Server;
let broker: Broker;

beforeAll(async () => {
  smtp = await startTestSmtp();
  process.env.SMTP_URL = smtp.url;
  resetConfig();
  await migrate({ databases: ['communication'] });
  server = await startFunction(emailFn, 0);
  const real = loadTriggers().find((t) => t.name === TRIGGER);
  if (!real) throw new Error(`events/triggers.yaml has no ${TRIGGER} row`);
  // The real routing row; only the retry policy is shortened so the test does not wait minutes.
  const trigger: Trigger = { ...real, delivery: { ...real.delivery, retry: 2, backoffPolicy: 'linear', backoffDelay: 'PT0.1S' } };
  const fnUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  broker = await startBroker({
    rabbitUrl: config().RABBITMQ_URL, name: config().BROKER_NAME, port: 0, triggers: [trigger],
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

    const listed = await cli('dlq', 'list', TRIGGER);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain(id);

    smtp.refuse(false);
    const replay = await cli('dlq', 'replay', TRIGGER, '--id', id);
    expect(replay.stdout).toContain(id);
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
