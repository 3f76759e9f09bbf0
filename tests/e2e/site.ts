/**
 * Every page of the portal with realistic data behind it, for the test that
 * checks each page at 1280 px and on a phone (every-page.test.ts) and for
 * `npm run screenshots`. `seedSite` signs a customer up through the portal,
 * saves a card on the card page, opens a Standard trial (with a backup, a
 * day of storage history and a staging copy) and a paid Basic instance
 * (stopped), makes an operator and a dead-lettered event, and signs up a
 * second customer who has nothing yet (the empty states).
 */
import { randomUUID } from 'node:crypto';
import type { BrowserContextOptions, Page } from 'playwright-core';
import { setAdminRole } from '@saasodoo/platform/cli/admin';
import { db } from '@saasodoo/platform/db/index';
import { seriousA11yViolations, type AxeViolation, type E2e } from './harness.ts';
import { accessTokenOf, customerIdOf, PASSWORD, ready, signUpVerifyLogIn, waitForStatus } from './flows.ts';

/** The two widths every page is looked at: a laptop and a phone (390×844). */
export const WIDTHS: { name: 'desktop' | 'phone'; options: BrowserContextOptions }[] = [
  { name: 'desktop', options: { viewport: { width: 1280, height: 800 } } },
  { name: 'phone', options: { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true } },
];

/** A page to visit: its name (a file name for a screenshot) and path. */
export type SitePage = [name: string, path: string];

export type Site = {
  /** Who sees which pages: a visitor, the customer, an operator, and a customer with nothing yet. */
  pages: Record<'visitor' | 'customer' | 'operator' | 'empty', SitePage[]>;
  emails: Record<'customer' | 'operator' | 'empty', string>;
};

/** Logs `email` in through the login form; ends on /instances. */
export async function logIn(e2e: E2e, page: Page, email: string): Promise<void> {
  await page.goto(`${e2e.portal}/login`);
  await ready(page);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL(`${e2e.portal}/instances`);
}

async function apiCall<T>(e2e: E2e, token: string, method: string, fn: string, body?: unknown): Promise<T> {
  const res = await fetch(`${e2e.gateway}/api/${fn}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} /api/${fn} answered ${res.status}: ${text.slice(0, 300)}`);
  return (text ? JSON.parse(text) : undefined) as T;
}

/** Sets up the data every page needs (a few minutes: two instances and a staging copy are provisioned). */
export async function seedSite(e2e: E2e): Promise<Site> {
  const u = (p: string) => `${e2e.portal}${p}`;
  const suffix = Date.now().toString(36);
  const emails = { customer: `ada.lovelace+${suffix}@example.com`, operator: `olga.ops+${suffix}@example.com`, empty: `grace.hopper+${suffix}@example.com` };

  const setup = await e2e.newPage({ viewport: { width: 1280, height: 800 } });
  await signUpVerifyLogIn(e2e, setup, emails.customer, false);
  // A card through the card page of the Stripe stand-in; the page it comes back to is one of the pages.
  await setup.goto(u('/billing'));
  await setup.getByRole('link', { name: 'Add card' }).click();
  await setup.waitForURL(/\/pay\/cs_test_/);
  await setup.getByLabel('Card number').fill('4242 4242 4242 4242');
  await setup.getByLabel('Expiry (MM / YY)').fill('12 / 34');
  await setup.getByLabel('CVC').fill('123');
  await setup.getByRole('button', { name: 'Save card' }).click();
  await setup.waitForURL(/\/billing\/card\?session=cs_test_/);
  const cardResult = new URL(setup.url()).pathname + new URL(setup.url()).search;

  const token = await accessTokenOf(e2e, emails.customer);
  // The trial first: an account that already bought a plan has no trial left.
  const trial = await apiCall<{ id: string }>(e2e, token, 'POST', 'instances', { name: 'Lovelace Engines', subdomain: `engines-${suffix}`, plan: 'standard-monthly', odooVersion: '17', trial: true });
  const paid = await apiCall<{ id: string }>(e2e, token, 'POST', 'instances', {
    name: 'Lovelace Analytics',
    subdomain: `analytics-${suffix}`,
    plan: 'basic-immediate',
    odooVersion: '17',
    trial: false,
  });
  await setup.goto(u(`/instances/${trial.id}`));
  await waitForStatus(setup, ['running'], 240_000);
  await apiCall(e2e, token, 'POST', 'instance-action', { id: trial.id, action: 'backup' });
  await setup.locator('tr[data-backup]').first().waitFor({ timeout: 120_000 });
  await waitForStatus(setup, ['running'], 120_000);
  const copy = await apiCall<{ id: string }>(e2e, token, 'POST', 'staging', { action: 'create', id: trial.id });
  await setup.goto(u(`/instances/${paid.id}`));
  await waitForStatus(setup, ['running'], 240_000);
  await apiCall(e2e, token, 'POST', 'instance-action', { id: paid.id, action: 'stop' });
  await waitForStatus(setup, ['stopped'], 120_000);
  await setup.goto(u(`/instances/${copy.id}`));
  await waitForStatus(setup, ['running'], 240_000);
  // Storage over the last day, growing to what a fresh instance uses now (the usage job measures hourly).
  await db('instance').none(
    `INSERT INTO storage_samples (instance_id, hour, used_bytes, limit_bytes)
     SELECT $1, date_trunc('hour', now()) - h * interval '1 hour', (6 + (24 - h) * 0.4 + (h % 5) * 0.3) * 1024, 20 * 1024 * 1024 * 1024::bigint
     FROM generate_series(1, 24) h ON CONFLICT DO NOTHING`,
    [trial.id],
  );
  await setup.goto(u('/billing'));
  const invoice = await setup
    .getByRole('link', { name: /^Open invoice \d+$/ })
    .first()
    .getAttribute('href');
  await setup.context().close();

  // The operator, and a dead-lettered event (a provision for an instance that does not exist).
  const ops = await e2e.newPage();
  await signUpVerifyLogIn(e2e, ops, emails.operator, false);
  await setAdminRole(emails.operator, 'admin');
  await ops.context().close();
  const res = await fetch(`http://127.0.0.1:${process.env.BROKER_PORT}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/cloudevents+json' },
    body: JSON.stringify({
      specversion: '1.0',
      id: randomUUID(),
      source: 'e2e/site',
      type: 'com.saasodoo.instance.provision',
      subject: 'ghost',
      datacontenttype: 'application/json',
      data: { instanceId: randomUUID(), customerId: randomUUID() },
    }),
  });
  if (res.status !== 202) throw new Error(`the broker refused the event: ${res.status}`);
  const empty = await e2e.newPage();
  await signUpVerifyLogIn(e2e, empty, emails.empty, false);
  await empty.context().close();
  const customerId = await customerIdOf(e2e, emails.customer);

  return {
    emails,
    pages: {
      visitor: [
        ['landing', '/'],
        ['pricing', '/pricing'],
        ['terms', '/terms'],
        ['privacy', '/privacy'],
        ['signup', '/signup'],
        ['login', '/login'],
        ['forgot-password', '/forgot-password'],
        ['reset-password', '/reset-password?token=x'],
        ['verify-email', `/verify-email?email=${encodeURIComponent(emails.customer)}`],
        ['not-found', '/no-such-page'],
      ],
      customer: [
        ['instances', '/instances'],
        ['instance-new', '/instances/new'],
        ['instance-trial', `/instances/${trial.id}`],
        ['instance-stopped', `/instances/${paid.id}`],
        ['instance-staging', `/instances/${copy.id}`],
        ['instance-domains', `/instances/${trial.id}/domains`],
        ['billing', '/billing'],
        ['invoice', invoice ?? '/billing'],
        ['card-result', cardResult],
        ['account', '/account'],
        ['account-activity', '/account/activity'],
        ['customer-not-found', '/instances/00000000-0000-4000-8000-000000000000'],
      ],
      operator: [
        ['admin', '/admin'],
        ['admin-failed', '/admin?status=error'],
        ['admin-customer', `/admin/customers/${customerId}`],
        ['admin-instance', `/instances/${trial.id}`],
        ['admin-dead-letters', '/admin/dead-letters'],
        ['admin-pools', '/admin/pools'],
        ['admin-activity', '/admin/activity'],
      ],
      empty: [
        ['instances-empty', '/instances'],
        ['billing-empty', '/billing'],
        ['account-empty', '/account'],
      ],
    },
  };
}

export type PageCheck = { name: string; path: string; width: string; violations: AxeViolation[]; sideways: boolean };

/**
 * Opens every page of `site` at one width, as the person who sees it, and
 * calls `each` on it once it is interactive; returns what axe-core and the
 * sideways-scroll check found on each.
 */
export async function visitAll(e2e: E2e, site: Site, width: (typeof WIDTHS)[number], each?: (page: Page, name: string) => Promise<void>): Promise<PageCheck[]> {
  const out: PageCheck[] = [];
  const who: [keyof Site['pages'], string | undefined][] = [
    ['visitor', undefined],
    ['customer', site.emails.customer],
    ['operator', site.emails.operator],
    ['empty', site.emails.empty],
  ];
  for (const [group, email] of who) {
    const page = await e2e.newPage(width.options);
    if (email) await logIn(e2e, page, email);
    for (const [name, path] of site.pages[group]) {
      await page.goto(`${e2e.portal}${path}`);
      await ready(page);
      await page.evaluate(() => document.fonts.ready);
      const violations = await seriousA11yViolations(page);
      const sideways = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
      out.push({ name, path, width: width.name, violations, sideways });
      if (each) await each(page, name);
    }
    await page.context().close();
  }
  return out;
}
