/**
 * The `email` function when PostgreSQL drops right after the SMTP server
 * accepted a mail (a database restart at the worst moment). The function's
 * pool reaches PostgreSQL through a TCP proxy; the test SMTP server cuts it
 * the instant it catches the mail, before answering 250, so the transaction
 * holding the reservation dies with the mail already out. The mail must still
 * be recorded and the event answered 2xx, or the broker's redelivery would
 * send it twice.
 */
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { HTTP } from 'cloudevents';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import emailFn from '@saasodoo/fn-email';
import { config, resetConfig } from '@saasodoo/platform/config';
import { closeDatabases, databaseName, DATABASE_ROLE, pgp, type Db } from '@saasodoo/platform/db/index';
import { connectionFor } from '@saasodoo/platform/db/services';
import { dropNamespace, migrate } from '@saasodoo/platform/db/migrate';
import { buildEvent } from '@saasodoo/platform/emit';
import { startFunction } from '@saasodoo/platform/host/run-function';
import { closeMailTransport } from '@saasodoo/platform/mail/transport';
import { freePort } from '../../helpers/ports.ts';
import { startTestSmtp, type TestSmtp } from '../../helpers/smtp.ts';
import { tcpProxy, type TcpProxy } from '../../helpers/tcp-proxy.ts';

let smtp: TestSmtp;
let proxy: TcpProxy;
let server: Server;
let base: string;
/** The test's own view of the communication database, straight to PostgreSQL (never through the proxy). */
let direct: Db;
/** Runs once, on the next mail the SMTP server catches (before it answers 250). */
let onNextMail: (() => void) | undefined;
const realPort = process.env.DATABASE_PORT;
const customerId = randomUUID();
const email = 'ada@example.test';

async function deliver(type: string, data: unknown, id: string): Promise<number> {
  const msg = HTTP.binary(buildEvent(`com.saasodoo.${type}`, data, { id, source: '/saasodoo/test' }));
  const res = await fetch(base, { method: 'POST', headers: msg.headers as Record<string, string>, body: msg.body as string });
  await res.text();
  return res.status;
}

const resetRequested = (id: string) => deliver('user.password_reset_requested', { customerId, email, resetUrl: `https://portal.example.test/reset-password?token=${id}` }, id);

const mailRows = (eventId: string) =>
  direct.any<{ status: string; message_id: string | null; sent: boolean }>('SELECT status, message_id, sent_at IS NOT NULL AS sent FROM mails WHERE event_id = $1', [eventId]);

/** Cuts the database off the moment the next mail is accepted; with `restoreAfterMs`, brings it back that much later. */
function dropDatabaseOnNextMail(restoreAfterMs?: number): { fired: boolean; restored: Promise<void> } {
  const drop = { fired: false, restored: Promise.resolve() };
  onNextMail = () => {
    drop.fired = true;
    proxy.cut();
    if (restoreAfterMs !== undefined) drop.restored = sleep(restoreAfterMs).then(() => proxy.restore());
  };
  return drop;
}

beforeAll(async () => {
  smtp = await startTestSmtp({
    onMail: () => {
      const hook = onNextMail;
      onNextMail = undefined;
      hook?.();
    },
  });
  await migrate({ databases: ['communication'] });
  direct = pgp({ ...connectionFor(DATABASE_ROLE.communication, databaseName('communication')), max: 2 });
  proxy = await tcpProxy(config().DATABASE_HOST, config().DATABASE_PORT);
  // From here on, pools opened in this process (the function's) go through the proxy.
  process.env.DATABASE_PORT = String(proxy.port);
  process.env.SMTP_URL = smtp.url;
  process.env.PUBLIC_URL = 'https://portal.example.test';
  resetConfig();
  server = await startFunction(emailFn, await freePort());
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  expect(await deliver('user.registered', { customerId, email, firstName: 'Ada', lastName: 'Lovelace' }, randomUUID())).toBe(204);
});

afterAll(async () => {
  onNextMail = undefined;
  await new Promise((r) => server?.close(r));
  closeMailTransport();
  await closeDatabases();
  await proxy?.close();
  await direct?.$pool.end();
  await smtp?.close();
  if (realPort === undefined) delete process.env.DATABASE_PORT;
  else process.env.DATABASE_PORT = realPort;
  delete process.env.MAIL_RECORD_RETRY_MS;
  resetConfig();
  await dropNamespace();
});

describe('database drops after the SMTP server accepted the mail', () => {
  it('records the mail once the database is back, answers 2xx, and a redelivery sends nothing', async () => {
    const id = randomUUID();
    const before = smtp.mails.length;
    const drop = dropDatabaseOnNextMail(1500);
    try {
      expect(await resetRequested(id)).toBe(204);
    } finally {
      await drop.restored;
      proxy.restore();
    }
    expect(drop.fired).toBe(true);
    expect(smtp.mails.length).toBe(before + 1);
    const messageId = smtp.mails.at(-1)!.parsed.messageId;
    expect(messageId).toMatch(/^<[0-9a-f]{32}@portal\.example\.test>$/);
    expect(await mailRows(id)).toEqual([{ status: 'sent', message_id: messageId, sent: true }]);

    expect(await resetRequested(id)).toBe(204);
    expect(smtp.mails.length).toBe(before + 1);
  });

  it('gives up after MAIL_RECORD_RETRY_MS with 5xx (at-least-once: the redelivery sends again)', async () => {
    process.env.MAIL_RECORD_RETRY_MS = '600';
    resetConfig();
    const id = randomUUID();
    const before = smtp.mails.length;
    const drop = dropDatabaseOnNextMail(); // stays down past the bound
    try {
      expect(await resetRequested(id)).toBe(503);
      expect(drop.fired).toBe(true);
      expect(smtp.mails.length).toBe(before + 1);
    } finally {
      proxy.restore();
      delete process.env.MAIL_RECORD_RETRY_MS;
      resetConfig();
    }
    expect(await mailRows(id)).toEqual([]); // the reservation rolled back with the lost transaction
    expect(await resetRequested(id)).toBe(204);
    expect(smtp.mails.length).toBe(before + 2);
    expect(await mailRows(id)).toEqual([expect.objectContaining({ status: 'sent' })]);
  });
});
