/**
 * Secret scan (issue 11, SPEC 12): the customer flow (signup → verify →
 * login → refresh → create a trial instance → Kill Bill webhook
 * notifications → logout) runs against the whole platform in a child
 * process, with every log line of the host and its functions (piped
 * stdout/stderr, LOG_LEVEL=debug), every event published on the broker (a
 * catch-all queue on the exchange, raw, before any redaction) and every
 * mail (DATA_DIR/mail) captured. None may contain the password, an access
 * or refresh token, the webhook token, the Odoo admin password or any
 * generated secret (database passwords, signing keys: every value of
 * DATA_DIR/secrets.json). The one-time verification link token is allowed
 * in its own event and mail only.
 */
import fs from 'node:fs';
import path from 'node:path';
import amqp, { type ChannelModel } from 'amqplib';
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { declareExchange, exchangeName } from '@saasodoo/platform/broker/topology';
import { eventHeaders } from '@saasodoo/platform/broker/message';
import { startPlatformProcess, type PlatformProcess } from '../../helpers/platform.ts';

type Captured = { type: string; raw: string };

let p: PlatformProcess;
let conn: ChannelModel;
const events: Captured[] = [];
const secrets = new Map<string, string>();
let verifyToken = '';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function api(method: 'GET' | 'POST', fn: string, o: { body?: unknown; token?: string; query?: string } = {}) {
  const res = await fetch(`${p.gateway}/api/${fn}${o.query ? `?${o.query}` : ''}`, {
    method,
    headers: { 'content-type': 'application/json', ...(o.token ? { authorization: `Bearer ${o.token}` } : {}) },
    body: method === 'POST' ? JSON.stringify(o.body ?? {}) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, text };
}

function mails(): { file: string; raw: string }[] {
  const dir = path.join(p.dataDir, 'mail');
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.eml'))
    .map((f) => ({ file: f, raw: fs.readFileSync(path.join(dir, f), 'utf8') }));
}

/** Mail bodies are quoted-printable or base64: the parsed text and HTML sit next to the raw source, so a secret cannot hide behind the transfer encoding. */
async function decodedMail(raw: string): Promise<string> {
  const parsed = await simpleParser(raw);
  return [raw, parsed.subject ?? '', parsed.text ?? '', typeof parsed.html === 'string' ? parsed.html : ''].join('\n');
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const v = await fn();
    if (v !== undefined) return v;
    await sleep(250);
  }
  throw new Error(`timed out waiting for ${what}`);
}

beforeAll(async () => {
  p = await startPlatformProcess({ env: { LOG_LEVEL: 'debug' } });
  conn = await amqp.connect(process.env.RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672');
  const ch = await conn.createChannel();
  await declareExchange(ch, process.env.BROKER_NAME!);
  const { queue } = await ch.assertQueue('', { exclusive: true, autoDelete: true, durable: false });
  await ch.bindQueue(queue, exchangeName(process.env.BROKER_NAME!), '', { 'x-match': 'all' });
  await ch.consume(
    queue,
    (m) => {
      if (!m) return;
      events.push({ type: eventHeaders(m).type, raw: `${JSON.stringify(m.properties.headers ?? {})}\n${m.content.toString('utf8')}` });
    },
    { noAck: true },
  );
}, 180_000);

afterAll(async () => {
  await conn?.close().catch(() => {});
  await p?.stop();
});

describe('secret scan over logs, events and mails of the customer flow', () => {
  it('runs the flow', { timeout: 150_000 }, async () => {
    const email = `scan-${Date.now().toString(36)}@example.com`;
    const password = `Scan secret ${Math.random().toString(36).slice(2)} horse`;
    secrets.set('password', password);

    expect((await api('POST', 'signup', { body: { email, password, firstName: 'Sec', lastName: 'Scan', acceptTerms: true } })).status).toBe(202);
    verifyToken = await waitFor('the verification mail', async () => {
      for (const m of mails()) {
        const parsed = await simpleParser(m.raw);
        const t = /verify-email\?token=([A-Za-z0-9_-]{43})/.exec(parsed.text ?? '');
        if (t && JSON.stringify(parsed.to ?? '').includes(email)) return t[1];
      }
      return undefined;
    });
    expect((await api('POST', 'verify-email', { body: { token: verifyToken } })).status).toBe(200);

    // A failed login first: its body passes through the logger.
    expect((await api('POST', 'login', { body: { email, password: `${password}-wrong` } })).status).toBe(401);
    secrets.set('wrong password', `${password}-wrong`);
    const login = await api('POST', 'login', { body: { email, password } });
    expect(login.status, login.text).toBe(200);
    secrets.set('access token (login)', login.body.accessToken);
    secrets.set('refresh token (login)', login.body.refreshToken);
    const refreshed = await api('POST', 'refresh', { body: { refreshToken: login.body.refreshToken } });
    expect(refreshed.status, refreshed.text).toBe(200);
    secrets.set('access token (refresh)', refreshed.body.accessToken);
    secrets.set('refresh token (refresh)', refreshed.body.refreshToken);
    const token = refreshed.body.accessToken as string;

    const created = await api('POST', 'instances', { token, body: { name: 'Scan Co', subdomain: `scan-${Date.now().toString(36)}`, plan: 'basic-test-trial', odooVersion: '17', trial: true } });
    expect(created.status, created.text).toBe(202);
    const id = created.body.id as string;

    // The simulator pushes SUBSCRIPTION_CREATION & co. to webhook-intake with the token in the URL; wait for them.
    await waitFor('a Kill Bill notification on the broker', () => events.find((e) => e.type.startsWith('org.killbill.')));
    // The instance runs (trial) and the owner's first read shows the Odoo admin password once.
    const adminPassword = await waitFor(
      'the instance to run',
      async () => {
        const r = await api('GET', 'instances', { token, query: `id=${id}` });
        return r.body?.status === 'running' ? (r.body.adminPassword ?? '') : undefined;
      },
      90_000,
    ).catch(() => '');
    if (adminPassword) secrets.set('Odoo admin password', adminPassword);

    expect((await api('POST', 'logout', { token })).status).toBe(204);
    await sleep(2000); // let the last events and mails land
  });

  it('finds no secret in any log line, event or mail', { timeout: 60_000 }, async () => {
    const secretsFile = path.join(p.dataDir, 'secrets.json');
    const generated = fs.existsSync(secretsFile) ? (JSON.parse(fs.readFileSync(secretsFile, 'utf8')) as Record<string, string>) : {};
    for (const [k, v] of Object.entries(generated)) if (typeof v === 'string' && v.length >= 12) secrets.set(`generated secret ${k}`, v);
    expect([...secrets.keys()].some((k) => k.startsWith('generated secret webhook'))).toBe(true);
    // Large PEM keys: look for a distinctive line rather than the whole block.
    for (const [k, v] of [...secrets]) if (v.includes('-----BEGIN')) secrets.set(k, v.split('\n').find((l) => l.length > 40 && !l.startsWith('-----')) ?? v);

    const logs = p.logs();
    const mailTexts = await Promise.all(mails().map(async (m) => ({ ...m, text: await decodedMail(m.raw) })));
    expect(logs.length).toBeGreaterThan(10);
    expect(events.length).toBeGreaterThan(3);
    expect(mailTexts.length).toBeGreaterThan(0);

    process.stdout.write(`secret scan: ${secrets.size} secrets (${[...secrets.keys()].join(', ')}) against ${logs.length} log lines, ${events.length} events, ${mailTexts.length} mails\n`);
    const leaks: string[] = [];
    for (const [name, value] of secrets) {
      for (const l of logs) if (l.includes(value)) leaks.push(`${name} in a log line: ${l.slice(0, 300)}`);
      for (const e of events) if (e.raw.includes(value)) leaks.push(`${name} in event ${e.type}: ${e.raw.slice(0, 300)}`);
      for (const m of mailTexts) if (m.text.includes(value)) leaks.push(`${name} in mail ${m.file}`);
    }
    // The verification token: only in its own event and its own mail.
    for (const l of logs) if (l.includes(verifyToken)) leaks.push(`verification token in a log line: ${l.slice(0, 300)}`);
    for (const e of events) if (e.raw.includes(verifyToken) && e.type !== 'com.saasodoo.user.verification_requested') leaks.push(`verification token in event ${e.type}`);
    const withToken = mailTexts.filter((m) => m.text.includes(verifyToken));
    if (withToken.length !== 1) leaks.push(`verification token in ${withToken.length} mails (expected its own one)`);
    expect(leaks, leaks.join('\n')).toEqual([]);
  });
});
