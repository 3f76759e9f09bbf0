/**
 * `npm run screenshots` (outside CI): every page of the portal, with
 * realistic data, at 1280 px and on a phone (390×844), for a person to look
 * at, plus the README's pictures of the main pages.
 *
 * It starts the whole platform as the browser tests do (tests/e2e/harness.ts,
 * its own namespace, real plans: TEST_PLANS off), signs a customer up through
 * the portal, saves a card on the card page, opens a paid Basic instance and
 * a Standard trial with a backup, storage history and a staging copy, stops
 * the Basic one, then visits every page as a visitor, as the customer and as
 * an operator. For each page and width it saves a full-page PNG under
 * test-artifacts/screenshots/<width>/ and prints what it found: axe-core's
 * serious or critical violations and whether the page scrolls sideways.
 * The README's pictures (the top of the page at 1280×800) go to
 * web/screenshots/. Exits 1 if a page had a violation or scrolled sideways.
 */
import '../helpers/setup-env.ts';
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Page } from 'playwright-core';
import { repoRoot } from '@saasodoo/platform/config';
import { setAdminRole } from '@saasodoo/platform/cli/admin';
import { closeDatabases, db } from '@saasodoo/platform/db/index';
import { seriousA11yViolations, startE2e, type E2e } from '../e2e/harness.ts';
import { accessTokenOf, customerIdOf, PASSWORD, ready, signUpVerifyLogIn, waitForStatus } from '../e2e/flows.ts';

const OUT = path.join(repoRoot, 'test-artifacts/screenshots');
const README_DIR = path.join(repoRoot, 'web/screenshots');
const WIDTHS = [
  { name: 'desktop', viewport: { width: 1280, height: 800 } },
  { name: 'phone', viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true },
] as const;
/** The README's pictures: page name → file name. */
const README: Record<string, string> = {
  landing: 'landing',
  pricing: 'pricing',
  instances: 'instances',
  'instance-trial': 'instance',
  billing: 'billing',
  'admin-customer': 'operator-customer',
};

const log = (msg: string) => process.stdout.write(`[screenshots] ${msg}\n`);
const problems: string[] = [];

/** Opens `url` on `page`, waits until it is interactive, and saves it at the page's width. */
async function shoot(page: Page, width: string, name: string, url: string, settle?: (p: Page) => Promise<unknown>): Promise<void> {
  await page.goto(url);
  await ready(page).catch(() => {}); // the card page of the Stripe stand-in is not the portal
  if (settle) await settle(page);
  await page.evaluate(() => document.fonts.ready);
  const violations = await seriousA11yViolations(page);
  const sideways = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
  for (const v of violations) problems.push(`${name} (${width}): ${v.id}: ${v.help} at ${v.nodes.join(', ')}`);
  if (sideways) problems.push(`${name} (${width}): scrolls sideways`);
  fs.mkdirSync(path.join(OUT, width), { recursive: true });
  await page.screenshot({ path: path.join(OUT, width, `${name}.png`), fullPage: true });
  if (width === 'desktop' && README[name]) await page.screenshot({ path: path.join(README_DIR, `${README[name]}.png`) });
  log(`${width} ${name}${violations.length ? ` axe:${violations.map((v) => v.id).join(',')}` : ''}${sideways ? ' SIDEWAYS' : ''}`);
}

async function logIn(e2e: E2e, page: Page, email: string): Promise<void> {
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

async function main(): Promise<void> {
  const e2e = await startE2e('screenshots', { TEST_PLANS: 'false' });
  try {
    const u = (p: string) => `${e2e.portal}${p}`;
    const suffix = Date.now().toString(36);
    const email = `ada.lovelace+${suffix}@example.com`;

    // The customer: signs up and logs in through the portal; empty pages first.
    const setup = await e2e.newPage({ viewport: { width: 1280, height: 800 } });
    await signUpVerifyLogIn(e2e, setup, email, false);
    const empty: [string, string][] = [
      ['instances-empty', '/instances'],
      ['billing-empty', '/billing'],
    ];
    // A card through the card page of the Stripe stand-in; the result page is one of the pages.
    await setup.goto(u('/billing'));
    await setup.getByRole('link', { name: 'Add card' }).click();
    await setup.waitForURL(/\/pay\/cs_test_/);
    await setup.getByLabel('Card number').fill('4242 4242 4242 4242');
    await setup.getByLabel('Expiry (MM / YY)').fill('12 / 34');
    await setup.getByLabel('CVC').fill('123');
    await setup.getByRole('button', { name: 'Save card' }).click();
    await setup.waitForURL(/\/billing\/card\?session=cs_test_/);
    const cardResult = new URL(setup.url()).pathname + new URL(setup.url()).search;

    const token = await accessTokenOf(e2e, email);
    // The trial first: an account that already bought a plan has no trial left.
    const trial = await apiCall<{ id: string }>(e2e, token, 'POST', 'instances', {
      name: 'Lovelace Engines',
      subdomain: `engines-${suffix}`,
      plan: 'standard-monthly',
      odooVersion: '17',
      trial: true,
    });
    const paid = await apiCall<{ id: string }>(e2e, token, 'POST', 'instances', {
      name: 'Lovelace Analytics',
      subdomain: `analytics-${suffix}`,
      plan: 'basic-immediate',
      odooVersion: '17',
      trial: false,
    });
    log('waiting for the two instances to run');
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
    const invoiceHref = await setup
      .getByRole('link', { name: /^Open invoice \d+$/ })
      .first()
      .getAttribute('href');

    // The operator, and a dead-lettered event (a provision for an instance that does not exist).
    const opsEmail = `olga.ops+${suffix}@example.com`;
    const ops = await e2e.newPage();
    await signUpVerifyLogIn(e2e, ops, opsEmail, false);
    await setAdminRole(opsEmail, 'admin');
    await fetch(`http://127.0.0.1:${process.env.BROKER_PORT}/`, {
      method: 'POST',
      headers: { 'content-type': 'application/cloudevents+json' },
      body: JSON.stringify({
        specversion: '1.0',
        id: randomUUID(),
        source: 'screenshots',
        type: 'com.saasodoo.instance.provision',
        subject: 'ghost',
        datacontenttype: 'application/json',
        data: { instanceId: randomUUID(), customerId: randomUUID() },
      }),
    });
    const customerId = await customerIdOf(e2e, email);
    const freshEmail = `grace.hopper+${suffix}@example.com`;
    await signUpVerifyLogIn(e2e, await e2e.newPage(), freshEmail, false);
    await new Promise((r) => setTimeout(r, 5000)); // the dead letter and the audit log go through the broker

    const pages = {
      visitor: [
        ['landing', '/'],
        ['pricing', '/pricing'],
        ['terms', '/terms'],
        ['privacy', '/privacy'],
        ['signup', '/signup'],
        ['login', '/login'],
        ['forgot-password', '/forgot-password'],
        ['reset-password', '/reset-password?token=x'],
        ['verify-email', `/verify-email?email=${encodeURIComponent(email)}`],
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
        ['invoice', invoiceHref ?? '/billing'],
        ['card-result', cardResult],
        ['account', '/account'],
        ['account-activity', '/account/activity'],
      ],
      operator: [
        ['admin', '/admin'],
        ['admin-customer', `/admin/customers/${customerId}`],
        ['admin-instance', `/instances/${trial.id}`],
        ['admin-dead-letters', '/admin/dead-letters'],
        ['admin-pools', '/admin/pools'],
        ['admin-activity', '/admin/activity'],
      ],
    } as Record<string, [string, string][]>;
    for (const w of WIDTHS) {
      const { name: width, ...opts } = w;
      const visitor = await e2e.newPage(opts);
      for (const [name, p] of pages.visitor) await shoot(visitor, width, name, u(p));
      const customer = await e2e.newPage(opts);
      await logIn(e2e, customer, email);
      for (const [name, p] of pages.customer) await shoot(customer, width, name, u(p));
      const operator = await e2e.newPage(opts);
      await logIn(e2e, operator, opsEmail);
      for (const [name, p] of pages.operator) await shoot(operator, width, name, u(p));
      // The empty states, for a customer with nothing yet.
      const fresh = await e2e.newPage(opts);
      await logIn(e2e, fresh, freshEmail);
      for (const [name, p] of empty) await shoot(fresh, width, name, u(p));
    }
    log(`saved under ${path.relative(repoRoot, OUT)}/; README pictures in ${path.relative(repoRoot, README_DIR)}/`);
  } finally {
    await closeDatabases().catch(() => {});
    await e2e.stop();
  }
  if (problems.length) {
    log(`problems:\n  ${problems.join('\n  ')}`);
    process.exitCode = 1;
  }
}

await main();
