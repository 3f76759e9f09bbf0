/**
 * The `email` function against a real PostgreSQL and a real SMTP server:
 * every template's subject, recipient and links, no secret in any mail,
 * exactly once per event (also with concurrent redeliveries), SMTP down → 5xx
 * then sent once when it is back, and trial warnings once per day-mark.
 */
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HTTP } from 'cloudevents';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import emailFn from '@saasodoo/fn-email';
import { config, resetConfig } from '@saasodoo/platform/config';
import { closeDatabases, db } from '@saasodoo/platform/db/index';
import { rolePassword } from '@saasodoo/platform/db/services';
import { dropNamespace, migrate } from '@saasodoo/platform/db/migrate';
import { buildEvent } from '@saasodoo/platform/emit';
import { startFunction } from '@saasodoo/platform/host/run-function';
import { closeMailTransport } from '@saasodoo/platform/mail/transport';
import { freePort } from '../../helpers/ports.ts';
import { startTestSmtp, type ReceivedMail, type TestSmtp } from '../../helpers/smtp.ts';

const PUBLIC_URL = 'https://portal.example.test';
let smtp: TestSmtp;
let server: Server;
let base: string;

const customerId = randomUUID();
const email = 'ada@example.test';
const instanceId = randomUUID();
const subscriptionId = randomUUID();
const verifyToken = `vt_${randomUUID().replace(/-/g, '')}`;
const resetToken = `rt_${randomUUID().replace(/-/g, '')}`;
const leakyReason = 'pg_restore failed: password=Hunter2Secret! postgres://odoo_x:Sup3rSecret@db/odoo';

/** Delivers one CloudEvent (binary mode) to the function; answers the HTTP status. */
async function deliver(type: string, data: unknown, id = randomUUID()): Promise<number> {
  const msg = HTTP.binary(buildEvent(`com.saasodoo.${type}`, data, { id, source: '/saasodoo/test' }));
  const res = await fetch(base, { method: 'POST', headers: msg.headers as Record<string, string>, body: msg.body as string });
  await res.text();
  return res.status;
}

/** Delivers an event that must produce exactly one new mail, and returns it. */
async function mailFor(type: string, data: unknown): Promise<ReceivedMail> {
  const before = smtp.mails.length;
  expect(await deliver(type, data)).toBe(204);
  expect(smtp.mails.length).toBe(before + 1);
  return smtp.mails.at(-1)!;
}

function links(m: ReceivedMail): string[] {
  return [...m.text.matchAll(/https?:\/\/[^\s"<>]+/g)].map((x) => x[0]);
}

beforeAll(async () => {
  smtp = await startTestSmtp();
  process.env.SMTP_URL = smtp.url;
  process.env.PUBLIC_URL = PUBLIC_URL;
  process.env.MAIL_FROM = 'SaaSOdoo <no-reply@example.test>';
  process.env.OPERATOR_NAME = 'Acme Hosting Ltd';
  process.env.OPERATOR_POSTAL_ADDRESS = '12 Quay Street, Dublin D02, Ireland';
  process.env.SUPPORT_CONTACT = 'help@acme-hosting.test';
  process.env.OPERATOR_EMAIL = 'ops@acme-hosting.test';
  resetConfig();
  await migrate({ databases: ['communication'] });
  server = await startFunction(emailFn, await freePort()); // faas-js-runtime treats port 0 as 8080
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  expect(await deliver('user.registered', { customerId, email, firstName: 'Ada', lastName: 'Lovelace' })).toBe(204);
  expect(await deliver('instance.requested', { instanceId, customerId, plan: 'basic-monthly', trial: true, subdomain: 'acme', name: 'Acme Books' })).toBe(204);
});

afterAll(async () => {
  await new Promise((r) => server?.close(r));
  closeMailTransport();
  await closeDatabases();
  await smtp?.close();
  await dropNamespace();
});

describe('trial end', () => {
  it('the one trial-end notice becomes one mail telling the trial, the first invoice and its failed payment, with the footer', async () => {
    const m = await mailFor('billing.status_changed', { customerId, instanceId, subscriptionId: randomUUID(), status: 'overdue', reason: 'trial_ended' });
    expect(m.subject).toMatch(/trial has ended: the first payment failed/);
    expect(m.text).toMatch(/first invoice/);
    expect(m.text).toMatch(/Acme Hosting Ltd · 12 Quay Street/);
    expect(m.text).toMatch(/Questions\? Contact us: help@acme-hosting\.test/);
  });
});

describe('templates: subject, recipient, links', () => {
  const instanceUrl = 'http://acme.localhost:8080';
  const page = `${PUBLIC_URL}/instances/${instanceId}`;
  const billing = `${PUBLIC_URL}/billing`;
  const cases: { template: string; type: string; data: () => unknown; subject: RegExp; link: string }[] = [
    {
      template: 'verify-email',
      type: 'user.verification_requested',
      data: () => ({ customerId, email, firstName: 'Ada', verifyUrl: `${PUBLIC_URL}/verify-email?token=${verifyToken}` }),
      subject: /confirm your email/i,
      link: `${PUBLIC_URL}/verify-email?token=${verifyToken}`,
    },
    { template: 'welcome', type: 'user.verified', data: () => ({ customerId, email, firstName: 'Ada' }), subject: /welcome/i, link: `${PUBLIC_URL}/instances` },
    {
      template: 'password-reset',
      type: 'user.password_reset_requested',
      data: () => ({ customerId, email, resetUrl: `${PUBLIC_URL}/reset-password?token=${resetToken}` }),
      subject: /reset your .*password/i,
      link: `${PUBLIC_URL}/reset-password?token=${resetToken}`,
    },
    { template: 'password-changed', type: 'user.password_changed', data: () => ({ customerId, email }), subject: /password was changed/i, link: `${PUBLIC_URL}/forgot-password` },
    { template: 'instance-ready', type: 'instance.ready', data: () => ({ instanceId, customerId, url: instanceUrl }), subject: /Acme Books is ready/, link: page },
    { template: 'instance-failed', type: 'instance.failed', data: () => ({ instanceId, customerId, step: 'database', reason: leakyReason }), subject: /could not set up .*Acme Books/, link: page },
    {
      template: 'trial-ending',
      type: 'billing.trial_ending',
      data: () => ({ customerId, subscriptionId: randomUUID(), daysLeft: 3, trialEndsAt: '2026-12-10T00:00:00Z' }),
      subject: /trial ends in 3 days/,
      link: `${billing}/card/new`,
    },
    {
      template: 'backup-completed',
      type: 'instance.backup_completed',
      data: () => ({ instanceId, customerId, backupId: randomUUID(), sizeBytes: 5 * 1024 * 1024, kind: 'manual' }),
      subject: /Backup of Acme Books completed/,
      link: page,
    },
    {
      template: 'backup-failed',
      type: 'instance.backup_failed',
      data: () => ({ instanceId, customerId, backupId: randomUUID(), reason: leakyReason }),
      subject: /Backup of Acme Books failed/,
      link: page,
    },
    { template: 'restore-completed', type: 'instance.restore_completed', data: () => ({ instanceId, customerId, backupId: randomUUID() }), subject: /Restore of Acme Books completed/, link: page },
    {
      template: 'restore-failed',
      type: 'instance.restore_failed',
      data: () => ({ instanceId, customerId, backupId: randomUUID(), reason: leakyReason }),
      subject: /Restore of Acme Books failed/,
      link: page,
    },
    {
      template: 'instance-terminated',
      type: 'instance.status_changed',
      data: () => ({ instanceId, customerId, from: 'terminating', to: 'terminated' }),
      subject: /Acme Books was deleted/,
      link: `${PUBLIC_URL}/instances`,
    },
    ...(
      [
        ['trial_ended', 'trial-ended', /trial has ended/, billing],
        ['invoice_created', 'invoice-created', /new SaaSOdoo invoice/i, billing],
        ['payment_succeeded', 'payment-succeeded', /payment received/i, billing],
        ['payment_failed', 'payment-failed', /payment failed/i, billing],
        ['overdue_warning', 'overdue-warning', /overdue/i, billing],
        ['suspended', 'instance-suspended', /Acme Books is suspended/, billing],
        ['resumed', 'instance-resumed', /Acme Books is running again/, page],
        ['cancellation_scheduled', 'cancellation-scheduled', /subscription will end/i, billing],
      ] as const
    ).map(([reason, template, subject, link]) => ({
      template,
      type: 'billing.status_changed',
      data: () => ({ customerId, instanceId, subscriptionId, status: 'paid', reason, effectiveDate: '2027-01-31' }),
      subject,
      link,
    })),
  ];

  const sent = new Map<string, ReceivedMail>();

  it.each(cases)('$template ($type)', async (c) => {
    const m = await mailFor(c.type, c.data());
    sent.set(c.template, m);
    // every mail carries the operator's name, postal address and support contact (settings)
    for (const part of [m.text, m.html]) {
      expect(part).toContain('Acme Hosting Ltd');
      expect(part).toContain('12 Quay Street, Dublin D02, Ireland');
      expect(part).toContain('help@acme-hosting.test');
    }
    expect(m.subject).toMatch(c.subject);
    expect(m.rcptTo).toEqual([email]);
    expect(m.to).toEqual([email]);
    expect(m.parsed.from?.value[0]?.address).toBe('no-reply@example.test');
    expect(links(m)).toContain(c.link);
    expect(m.html).toContain(`href="${c.link.replace(/&/g, '&amp;')}"`);
    expect(m.text.length).toBeGreaterThan(40);
    for (const l of links(m)) {
      // Every link points at the portal or at the customer's own instance.
      expect(l.startsWith(`${PUBLIC_URL}/`) || l.startsWith(instanceUrl)).toBe(true);
    }
  });

  it('a database pool turning unhealthy, then recovering, mails the operator (OPERATOR_EMAIL) once per event, with the reason and a link to the pools page', async () => {
    const id = randomUUID();
    const before = smtp.mails.length;
    for (let i = 0; i < 2; i++) expect(await deliver('pool.unhealthy', { pool: 'second', failures: 3, reason: 'connect ECONNREFUSED 127.0.0.1:6543' }, id)).toBe(204);
    expect(smtp.mails.length).toBe(before + 1);
    const down = smtp.mails.at(-1)!;
    expect(down.rcptTo).toEqual(['ops@acme-hosting.test']);
    expect(down.subject).toBe('Database server second is unhealthy');
    expect(down.text).toContain('ECONNREFUSED');
    expect(links(down)).toContain(`${PUBLIC_URL}/admin/pools`);
    const up = await mailFor('pool.recovered', { pool: 'second' });
    expect(up.rcptTo).toEqual(['ops@acme-hosting.test']);
    expect(up.subject).toBe('Database server second answers again');
  });

  it('signup-attempt goes to the address in the event, with sign-in and reset links', async () => {
    const m = await mailFor('user.signup_attempted', { email: 'taken@example.test' });
    sent.set('signup-attempt', m);
    expect(m.subject).toMatch(/tried to sign up/i);
    expect(m.rcptTo).toEqual(['taken@example.test']);
    expect(links(m)).toEqual(expect.arrayContaining([`${PUBLIC_URL}/login`, `${PUBLIC_URL}/forgot-password`]));
  });

  it('cancellation-scheduled names the effective date; instance-ready the address and no password', () => {
    expect(sent.get('cancellation-scheduled')!.text).toContain('31 January 2027');
    const ready = sent.get('instance-ready')!;
    expect(ready.text).toContain('http://acme.localhost:8080');
    expect(ready.text).toMatch(/never send it by mail/);
  });

  it('no mail carries a secret; each one-time token appears only in its own mail', () => {
    expect(sent.size).toBe(cases.length + 1);
    const secrets = ['Hunter2Secret', 'Sup3rSecret', rolePassword('communication_service'), config().KILLBILL_API_SECRET, config().KILLBILL_PASSWORD].filter((s) => s.length >= 12); // a short default such as Kill Bill's "password" is a word, not a findable secret
    for (const [template, m] of sent) {
      const all = `${m.subject}\n${m.text}\n${m.html}`;
      for (const s of secrets) expect(all, `${template} leaks a secret`).not.toContain(s);
      if (template !== 'verify-email') expect(all).not.toContain(verifyToken);
      if (template !== 'password-reset') expect(all).not.toContain(resetToken);
    }
  });
});

describe('exactly once', () => {
  it('the same event delivered three times (one after the other) sends one mail', async () => {
    const id = randomUUID();
    const data = { customerId, email, firstName: 'Ada', verifyUrl: `${PUBLIC_URL}/verify-email?token=again` };
    const before = smtp.mails.length;
    for (let i = 0; i < 3; i++) expect(await deliver('user.verification_requested', data, id)).toBe(204);
    expect(smtp.mails.length).toBe(before + 1);
    const rows = await db('communication').any('SELECT status FROM mails WHERE event_id = $1', [id]);
    expect(rows).toEqual([{ status: 'sent' }]);
  });

  it('three concurrent deliveries of one event send one mail', async () => {
    const id = randomUUID();
    const data = { instanceId, customerId, backupId: randomUUID() };
    const before = smtp.mails.length;
    const statuses = await Promise.all([1, 2, 3].map(() => deliver('instance.restore_completed', data, id)));
    expect(statuses).toEqual([204, 204, 204]);
    expect(smtp.mails.length).toBe(before + 1);
  });

  it('trial warnings go out at 7, 3 and 1 days, each once even when two events announce the same day', async () => {
    const sub = randomUUID();
    const before = smtp.mails.length;
    for (const daysLeft of [7, 3, 1]) {
      for (let copy = 0; copy < 2; copy++) {
        // Two distinct events (different ids) for the same subscription and day.
        expect(await deliver('billing.trial_ending', { customerId, subscriptionId: sub, daysLeft, trialEndsAt: '2026-12-10T00:00:00Z' })).toBe(204);
      }
    }
    const mails = smtp.mails.slice(before);
    expect(mails.map((m) => m.subject)).toEqual(['Your SaaSOdoo trial ends in 7 days', 'Your SaaSOdoo trial ends in 3 days', 'Your SaaSOdoo trial ends in 1 day']);
  });

  it('welcome goes once per customer and instance-ready once per instance', async () => {
    const before = smtp.mails.length;
    expect(await deliver('user.verified', { customerId, email, firstName: 'Ada' })).toBe(204);
    expect(await deliver('instance.ready', { instanceId, customerId, url: 'http://acme.localhost:8080' })).toBe(204);
    expect(smtp.mails.length).toBe(before);
  });

  it('a staging copy is announced once per copy of its data (made, then each refresh), never as a new instance', async () => {
    const copyId = randomUUID();
    const ready = (copiedAt: string) => ({ instanceId: copyId, customerId, url: 'http://acme-staging.localhost:8080', name: 'Acme Books (staging)', stagingOf: { name: 'Acme Books', copiedAt } });
    const before = smtp.mails.length;
    expect(await deliver('instance.ready', ready('2026-12-07T03:40:00Z'))).toBe(204);
    expect(await deliver('instance.ready', ready('2026-12-07T03:40:00Z'))).toBe(204); // the same copy announced again
    expect(await deliver('instance.ready', ready('2026-12-08T09:15:00Z'))).toBe(204); // a refresh
    expect(smtp.mails.slice(before).map((m) => m.subject)).toEqual(['Your staging copy of Acme Books is ready', 'Your staging copy of Acme Books is ready']);
    expect(smtp.mails[before + 1].text).toContain('8 December 2026 at 09:15 UTC');
  });
});

describe('what sends nothing', () => {
  it('status changes other than terminated, other billing reasons and routine backups send no mail', async () => {
    const before = smtp.mails.length;
    expect(await deliver('instance.status_changed', { instanceId, customerId, from: 'running', to: 'stopped' })).toBe(204);
    expect(await deliver('billing.status_changed', { customerId, status: 'paid', reason: 'plan_changed' })).toBe(204);
    expect(await deliver('instance.backup_completed', { instanceId, customerId, backupId: randomUUID(), sizeBytes: 1, kind: 'daily' })).toBe(204);
    expect(smtp.mails.length).toBe(before);
  });

  it('data that does not match the catalogue is refused with 400 (dead-lettered at once)', async () => {
    const res = await fetch(base, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'ce-specversion': '1.0', 'ce-id': randomUUID(), 'ce-type': 'com.saasodoo.billing.trial_ending', 'ce-source': '/t' },
      body: JSON.stringify({ customerId, daysLeft: 5 }),
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { fields: Record<string, string> } };
    expect(Object.keys(body.error.fields)).toEqual(expect.arrayContaining(['daysLeft', 'subscriptionId', 'trialEndsAt']));
  });

  it('a customer without a known address answers 503 (retried until user.registered arrives)', async () => {
    const stranger = randomUUID();
    const id = randomUUID();
    const data = { customerId: stranger, status: 'overdue', reason: 'payment_failed' };
    expect(await deliver('billing.status_changed', data, id)).toBe(503);
    expect(await deliver('user.registered', { customerId: stranger, email: 'late@example.test', firstName: 'Late', lastName: 'Comer' })).toBe(204);
    expect(await deliver('user.verified', { customerId: stranger, email: 'late@example.test', firstName: 'Late' })).toBe(204); // names are printed once verified
    const before = smtp.mails.length;
    expect(await deliver('billing.status_changed', data, id)).toBe(204);
    expect(await deliver('billing.status_changed', data, id)).toBe(204);
    expect(smtp.mails.length).toBe(before + 1);
    expect(smtp.mails.at(-1)!.rcptTo).toEqual(['late@example.test']);
    expect(smtp.mails.at(-1)!.text).toContain('Hello Late,');
  });
});

describe('SMTP down', () => {
  it('answers 5xx while the server refuses, then sends exactly once when it is back', async () => {
    const id = randomUUID();
    const data = { customerId, email, resetUrl: `${PUBLIC_URL}/reset-password?token=retry` };
    const before = smtp.mails.length;
    smtp.refuse(true);
    try {
      expect(await deliver('user.password_reset_requested', data, id)).toBe(503);
      expect(await deliver('user.password_reset_requested', data, id)).toBe(503);
    } finally {
      smtp.refuse(false);
    }
    expect(smtp.refusals()).toBeGreaterThanOrEqual(2);
    expect(smtp.mails.length).toBe(before);
    // The failed attempts left no reservation behind.
    expect(await db('communication').any('SELECT 1 FROM mails WHERE event_id = $1', [id])).toEqual([]);
    expect(await deliver('user.password_reset_requested', data, id)).toBe(204);
    expect(await deliver('user.password_reset_requested', data, id)).toBe(204);
    expect(smtp.mails.length).toBe(before + 1);
  });
});
