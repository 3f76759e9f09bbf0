/**
 * Mail content injection through the first name (issue 15.9): anyone can
 * sign up with someone else's address and a "first name" that is a sentence
 * ("Your account is locked, call ..."), and the verification mail (or a
 * password-reset mail asked for that account) greeted the stranger with it,
 * from our domain. A first name is now printed only once its owner verified
 * the address, and then on one line and cut short. The whole path is real:
 * gateway, signup / password-reset / verify-email functions, outbox, the
 * RabbitMQ broker, the email function, and a real SMTP server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestUser } from '../../helpers/auth.ts';
import { startPlatform, type Platform } from '../../helpers/platform.ts';
import { startTestSmtp, type ReceivedMail, type TestSmtp } from '../../helpers/smtp.ts';

const PHISH = 'Your account is locked. Call +1 555 0100 now';
let smtp: TestSmtp;
let p: Platform;
let n = 0;
const address = (tag: string) => `${tag}-${Date.now().toString(36)}-${++n}@example.test`;

async function api(fn: string, body: unknown): Promise<number> {
  const res = await fetch(`${p.gateway}/api/${fn}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  await res.body?.cancel();
  return res.status;
}

/** The first mail to `to` whose subject matches, once the broker and the email function delivered it. */
async function mailTo(to: string, subject: RegExp, timeoutMs = 60_000): Promise<ReceivedMail> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = smtp.mails.find((x) => x.rcptTo.includes(to) && subject.test(x.subject));
    if (m) return m;
    if (Date.now() > deadline) throw new Error(`no mail to ${to} with a subject matching ${subject} within ${timeoutMs} ms (got: ${smtp.mails.map((x) => `${x.rcptTo} ${x.subject}`).join('; ')})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function expectNoInjectedText(m: ReceivedMail) {
  for (const part of [m.subject, m.text, m.html]) {
    expect(part).not.toContain('locked');
    expect(part).not.toContain('555 0100');
  }
  expect(m.text).toMatch(/^Hello,\n/);
}

const signup = (email: string, firstName: string) => api('signup', { email, password: 'a sensible passphrase 42', firstName, lastName: 'Doe', acceptTerms: true });

beforeAll(async () => {
  smtp = await startTestSmtp();
  p = await startPlatform({
    env: { SMTP_URL: smtp.url },
    only: ['signup', 'verify-email', 'password-reset', 'email'],
    skip: ['portal', 'killbill-sim', 'runtime', 'schedules'],
  });
});

afterAll(async () => {
  await p?.stop();
  await smtp?.close();
});

describe('a first name chosen by whoever signed up', () => {
  it('is not in the verification mail to the (unproven) address, nor in a reset mail asked for that account', async () => {
    const victim = address('victim');
    expect(await signup(victim, PHISH)).toBe(202);
    expectNoInjectedText(await mailTo(victim, /confirm your email/i));
    expect(await api('password-reset', { email: victim })).toBe(202);
    expectNoInjectedText(await mailTo(victim, /reset your/i));
  });

  it('is not in the "someone tried to sign up" mail to the owner of a taken address', async () => {
    const owner = await createTestUser({ email: address('owner'), firstName: 'Vic' });
    expect(await signup(owner.email, PHISH)).toBe(202);
    const m = await mailTo(owner.email, /tried to sign up/i);
    expectNoInjectedText(m);
  });

  it('is printed once its owner verified the address (welcome, then reset)', async () => {
    const ada = address('ada');
    expect(await signup(ada, 'Ada')).toBe(202);
    const verify = await mailTo(ada, /confirm your email/i);
    expect(verify.text).toMatch(/^Hello,\n/);
    const token = new URL(verify.text.match(/https?:\/\/\S+verify-email\?token=\S+/)![0]).searchParams.get('token')!;
    expect(await api('verify-email', { token })).toBe(200);
    expect((await mailTo(ada, /welcome/i)).text).toMatch(/^Hello Ada,\n/);
    expect(await api('password-reset', { email: ada })).toBe(202);
    expect((await mailTo(ada, /reset your/i)).text).toMatch(/^Hello Ada,\n/);
  });
});
