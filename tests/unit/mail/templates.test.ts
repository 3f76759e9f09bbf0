/** Mail templates and rendering: every SPEC 9 template renders both parts, escapes, and links only to the portal. */
import { describe, expect, it } from 'vitest';
import { escapeHtml, renderMail } from '@saasodoo/platform/mail/render';
import { formatBytes, formatDate, GREETING_NAME_MAX, portalLink, renderTemplate, TEMPLATE_NAMES, type TemplateName, type TemplateVars } from '@saasodoo/platform/mail/templates';

const ctx = { publicUrl: 'https://example.test/portal/' };
const instance = { id: '5f0c1b7e-1111-4222-8333-944445555666', label: 'Acme <Books>', url: 'https://acme.example.test' };

const samples: { [T in TemplateName]: TemplateVars[T] } = {
  'verify-email': { verifyUrl: 'https://example.test/portal/verify-email?token=abc' },
  welcome: { firstName: 'Ada' },
  'signup-attempt': {},
  'password-reset': { resetUrl: 'https://example.test/portal/reset-password?token=def' },
  'password-changed': {},
  'instance-ready': { instance },
  'staging-ready': { instance, original: 'Acme Books', copiedAt: '2026-12-07T03:40:12Z' },
  'instance-failed': { instance, step: 'database' },
  'trial-ending': { daysLeft: 1, trialEndsAt: '2026-12-03T00:00:00Z' },
  'trial-ended': {},
  'invoice-created': {},
  'payment-succeeded': {},
  'payment-failed': {},
  'overdue-warning': {},
  'instance-suspended': { instance },
  'instance-resumed': {},
  'cancellation-scheduled': { effectiveDate: '2027-01-31' },
  'instance-terminated': { instance },
  'backup-completed': { instance, sizeBytes: 3 * 1024 ** 3 },
  'backup-failed': { instance },
  'restore-completed': { instance },
  'restore-failed': { instance },
  'pool-unhealthy': { pool: 'second', failures: 3, reason: 'connect ECONNREFUSED 10.0.0.5:5432' },
  'pool-recovered': { pool: 'second' },
};

describe('templates', () => {
  it('cover every mail of SPEC 9', () => {
    expect([...TEMPLATE_NAMES].sort()).toEqual([
      'backup-completed',
      'backup-failed',
      'cancellation-scheduled',
      'instance-failed',
      'instance-ready',
      'instance-resumed',
      'instance-suspended',
      'instance-terminated',
      'invoice-created',
      'overdue-warning',
      'password-changed',
      'password-reset',
      'payment-failed',
      'payment-succeeded',
      'pool-recovered',
      'pool-unhealthy',
      'restore-completed',
      'restore-failed',
      'signup-attempt',
      'staging-ready',
      'trial-ended',
      'trial-ending',
      'verify-email',
      'welcome',
    ]);
  });

  it.each(TEMPLATE_NAMES)('%s renders a subject, a text part and an HTML part with the same links', (name) => {
    const m = renderTemplate(name, samples[name] as never, ctx);
    expect(m.subject.length).toBeGreaterThan(5);
    expect(m.subject).not.toMatch(/undefined|null|\[object/);
    expect(m.text).not.toMatch(/undefined|null|\[object/);
    expect(m.html).toMatch(/^<!doctype html>/);
    const textLinks = [...m.text.matchAll(/https?:\/\/[^\s]+/g)].map((x) => x[0]);
    expect(textLinks.length).toBeGreaterThan(0);
    for (const l of textLinks) {
      expect(l.startsWith('https://example.test/portal/') || l.startsWith(instance.url)).toBe(true);
      expect(m.html).toContain(escapeHtml(l));
    }
    // Instance names are escaped in HTML, plain in text.
    if ('instance' in samples[name]) {
      expect(m.html).not.toContain('<Books>');
      if (m.text.includes('Acme')) expect(m.text).toContain('Acme <Books>');
    }
  });

  it('links keep the path prefix of PUBLIC_URL', () => {
    expect(portalLink('https://example.test/portal/', '/billing')).toBe('https://example.test/portal/billing');
    expect(portalLink('http://localhost:3000', '/instances/x')).toBe('http://localhost:3000/instances/x');
    const m = renderTemplate('instance-failed', { instance, step: 'runtime' }, ctx);
    expect(m.text).toContain(`https://example.test/portal/instances/${instance.id}`);
  });

  it('says days correctly and formats dates and sizes for people', () => {
    expect(renderTemplate('trial-ending', { daysLeft: 7, trialEndsAt: '2026-12-03T00:00:00Z' }, ctx).subject).toBe('Your SaaSOdoo trial ends in 7 days');
    expect(renderTemplate('trial-ending', { daysLeft: 1, trialEndsAt: '2026-12-03T00:00:00Z' }, ctx).subject).toBe('Your SaaSOdoo trial ends in 1 day');
    expect(formatDate('2026-12-03T00:00:00Z')).toMatch(/^Thursday,? 3 December 2026$/); // ICU versions differ on the comma
    expect(formatDate('soon')).toBe('soon');
    expect(formatBytes(512)).toBe('512 bytes');
    expect(formatBytes(3 * 1024 ** 3)).toBe('3.0 GiB');
  });

  it('billing mails state the invoice number, amount and due date; dunning mails link to pay now, trial warnings to adding a card', () => {
    const invoice = { number: '42', amount: 8, balance: 8, currency: 'USD', dueDate: '2026-12-03' };
    for (const name of ['invoice-created', 'payment-succeeded', 'payment-failed', 'overdue-warning', 'instance-suspended'] as const) {
      const m = renderTemplate(name, { invoice }, ctx);
      expect(m.text, name).toMatch(/Invoice: 42/);
      expect(m.text, name).toMatch(/Amount: \$8\.00/);
      expect(m.text, name).toMatch(/Due: Thursday,? 3 December 2026/);
      expect(m.html, name).toContain('$8.00');
    }
    expect(renderTemplate('payment-failed', { invoice: { ...invoice, balance: 3 } }, ctx).text).toMatch(/Still to pay: \$3\.00/);
    for (const name of ['payment-failed', 'overdue-warning', 'instance-suspended'] as const) {
      expect(renderTemplate(name, { invoice }, ctx).text, name).toContain('https://example.test/portal/billing');
    }
    expect(renderTemplate('trial-ending', { daysLeft: 3, trialEndsAt: '2026-12-03T00:00:00Z' }, ctx).text).toContain('https://example.test/portal/billing/card/new');
  });

  it('greets by name when known; a failed setup names the step', () => {
    expect(renderTemplate('welcome', { firstName: 'Ada' }, ctx).text).toMatch(/^Hello Ada,/);
    expect(renderTemplate('welcome', {}, ctx).text).toMatch(/^Hello,/);
    // The verification mail goes to an address nobody has proved yet: never a name, whatever is passed.
    expect(renderTemplate('verify-email', { firstName: 'Ada', verifyUrl: 'https://example.test/v' } as never, ctx).text).toMatch(/^Hello,\n/);
    const failed = renderTemplate('instance-failed', { instance, step: 'database' }, ctx);
    expect(failed.text).toContain('"database"');
  });
});

describe('mails say what happened', () => {
  const operator = { name: 'Acme Hosting Ltd', postalAddress: '12 Quay Street, Dublin D02, Ireland', support: 'help@acme-hosting.test' };

  it('every mail ends with the operator’s name, postal address and support contact', () => {
    for (const name of TEMPLATE_NAMES) {
      const m = renderTemplate(name, samples[name] as never, { ...ctx, operator });
      for (const part of [m.text, m.html]) {
        expect(part, name).toContain('Acme Hosting Ltd');
        expect(part, name).toContain('12 Quay Street, Dublin D02, Ireland');
        expect(part, name).toContain('help@acme-hosting.test');
      }
    }
  });

  it('the trial-end mail tells the trial, the first invoice and how its payment went, in one mail', () => {
    const failed = renderTemplate('trial-ended', { status: 'overdue' }, ctx);
    expect(failed.subject).toMatch(/trial has ended: the first payment failed/);
    expect(failed.text).toMatch(/first invoice/);
    const paid = renderTemplate('trial-ended', { status: 'paid' }, ctx);
    expect(paid.subject).toMatch(/first payment received/);
    expect(renderTemplate('trial-ended', { status: 'payment_required' }, ctx).text).not.toMatch(/payment failed|received/);
  });

  it('a restore of a stopped instance says it stays stopped; of a running one that it runs again', () => {
    expect(renderTemplate('restore-completed', { instance, status: 'stopped' }, ctx).text).toMatch(/stays stopped/);
    expect(renderTemplate('restore-completed', { instance, status: 'stopped' }, ctx).text).not.toMatch(/running again/);
    expect(renderTemplate('restore-completed', { instance, status: 'running' }, ctx).text).toMatch(/running again/);
  });

  it('a staging copy is announced as a copy of its original, with the moment of the copy, not as a new instance', () => {
    const m = renderTemplate('staging-ready', samples['staging-ready'], ctx);
    expect(m.subject).toBe('Your staging copy of Acme Books is ready');
    expect(m.text).toContain('Monday, 7 December 2026 at 03:40 UTC');
    expect(m.text).toMatch(/same users and passwords/);
    expect(m.text).not.toMatch(/password shown in the portal/);
  });

  it('a cancellation while suspended does not promise that everything keeps working', () => {
    const suspended = renderTemplate('cancellation-scheduled', { status: 'suspended', effectiveDate: '2027-01-31' }, ctx).text;
    expect(suspended).not.toMatch(/keeps working/);
    expect(suspended).toMatch(/suspended/);
    expect(renderTemplate('cancellation-scheduled', { status: 'paid', effectiveDate: '2027-01-31' }, ctx).text).toMatch(/keeps working/);
  });

  it('reset links lead to the page that asks for a reset link, never to the token page without a token', () => {
    for (const name of ['password-changed', 'signup-attempt'] as const) {
      const text = renderTemplate(name, {} as never, ctx).text;
      expect(text, name).toContain('https://example.test/portal/forgot-password');
      expect(text, name).not.toMatch(/reset-password(?!\?token=)/);
    }
  });
});

describe('greeting names', () => {
  it('prints a name on one line and cut short, so a name cannot carry a message', () => {
    const typed = 'Ada\r\n\r\nYour account is locked.\u202e Call +1 555 0100 now to keep it: support desk';
    const text = renderTemplate('welcome', { firstName: typed }, ctx).text;
    const greeting = text.split('\n')[0];
    expect(greeting).toMatch(/^Hello Ada Your account is locked\. Call \+1 .*…,$/);
    expect([...greeting.slice('Hello '.length, -1)].length).toBeLessThanOrEqual(GREETING_NAME_MAX);
    expect(text).not.toContain('support desk');
    expect(renderTemplate('welcome', { firstName: ' \t\u200b ' }, ctx).text).toMatch(/^Hello,\n/);
  });
});

describe('renderMail', () => {
  it('escapes every value in HTML and refuses non-web links', () => {
    const m = renderMail({ subject: 'a & b', greeting: 'Hello <script>x</script>,', paragraphs: ['"quoted"'], details: [['k', 'v<i>']], action: { label: 'Go', url: 'https://x.test/?a=1&b=2' } });
    expect(m.html).not.toContain('<script>');
    expect(m.html).toContain('&lt;script&gt;');
    expect(m.html).toContain('href="https://x.test/?a=1&amp;b=2"');
    expect(m.text).toContain('https://x.test/?a=1&b=2');
    expect(() => renderMail({ subject: 's', paragraphs: [], action: { label: 'x', url: 'javascript:alert(1)' } })).toThrow(/javascript/);
  });
});
