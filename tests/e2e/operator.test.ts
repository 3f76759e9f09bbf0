/**
 * Operator pages in headless Chromium: a provisioning that failed (its
 * storage could not be created) shows as failed to the customer with the
 * step and reason; once the cause is fixed, an admin retries it from the
 * operator page and the customer's instance comes up.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setAdminRole } from '@saasodoo/platform/cli/admin';
import { e2eUnavailable, seriousA11yViolations, startE2e, uniqueEmail, type E2e } from './harness.ts';
import { signUpVerifyLogIn, waitForBadge, waitForStatus } from './flows.ts';

const unavailable = e2eUnavailable();
if (unavailable) console.warn(`skipping operator e2e: ${unavailable}`);

describe.skipIf(!!unavailable)('operator pages', () => {
  let e2e: E2e;
  beforeAll(async () => {
    e2e = await startE2e('operator');
  });
  afterAll(async () => {
    await e2e?.stop();
  });

  it('a customer never reaches the operator pages', async () => {
    const page = await e2e.newPage();
    await signUpVerifyLogIn(e2e, page, uniqueEmail('cust'), false);
    expect(await page.getByRole('link', { name: 'Operator' }).count()).toBe(0);
    const res = await page.goto(`${e2e.portal}/admin`);
    expect(res?.status()).toBe(404);

    // A purchase without a trial never speaks of a trial, while it waits for payment or once paid.
    await page.goto(`${e2e.portal}/instances/new`);
    await page.getByLabel('Name').fill('Paid Co');
    await page.getByLabel('Subdomain').fill(`paid-${Date.now().toString(36)}`);
    await page.locator('[data-plan="basic"] input[type=radio]').check();
    if (await page.getByLabel('Start with the free trial').count()) await page.getByLabel('Start with the free trial').uncheck();
    await page.getByRole('button', { name: 'Create instance' }).click();
    await page.waitForURL(/\/instances\/[0-9a-f-]{36}$/, { timeout: 60_000 });
    expect(await page.locator('main').innerText()).not.toMatch(/trial/i);
    await waitForBadge(page, 'billing', 'paid', 60_000);
    expect(await page.locator('main').innerText()).not.toMatch(/trial/i);
    await e2e.shot(page, 'no-trial-purchase');
  });

  it('retries a failed provisioning from the operator page', async () => {
    const customer = await e2e.newPage();
    const customerEmail = uniqueEmail('failing');
    await signUpVerifyLogIn(e2e, customer, customerEmail, false);

    // Break the instance storage root: the provisioning step `storage` fails.
    const root = path.join(e2e.dataDir, 'instances');
    fs.rmSync(root, { recursive: true, force: true });
    fs.writeFileSync(root, 'not a directory');

    await customer.goto(`${e2e.portal}/instances/new`);
    await customer.getByLabel('Name').fill('Broken Co');
    await customer.getByLabel('Subdomain').fill(`broken-${Date.now().toString(36)}`);
    await customer.locator('[data-plan="basic-test-trial"] input[type=radio]').check();
    await customer.getByRole('button', { name: 'Create instance' }).click();
    await customer.waitForURL(/\/instances\/[0-9a-f-]{36}$/, { timeout: 60_000 });
    await waitForStatus(customer, ['error'], 120_000);
    expect(await customer.getByRole('alert').first().innerText()).toMatch(/storage/i);
    await e2e.shot(customer, 'customer-sees-failure');

    // The operator fixes the cause and retries.
    fs.rmSync(root, { force: true });
    fs.mkdirSync(root, { recursive: true, mode: 0o700 });
    const adminEmail = uniqueEmail('ops');
    const admin = await e2e.newPage();
    await signUpVerifyLogIn(e2e, admin, adminEmail, false);
    await setAdminRole(adminEmail, 'admin');
    await admin.getByRole('button', { name: 'Log out', exact: true }).click();
    await admin.getByLabel('Email').fill(adminEmail);
    await admin.getByLabel('Password').fill('correct horse battery staple');
    await admin.getByRole('button', { name: 'Log in' }).click();
    await admin.getByRole('link', { name: 'Operator' }).click();
    await admin.getByRole('heading', { name: 'All instances' }).waitFor();
    await admin.getByLabel('Status').selectOption('error');
    await admin.getByRole('button', { name: 'Filter' }).click();
    const row = admin.locator('tr', { hasText: 'Broken Co' });
    await row.waitFor();
    // the "Failed" filter narrows the instances, not the customers
    expect(await admin.locator('tr[data-customer]').count()).toBeGreaterThanOrEqual(3);
    expect(await row.innerText()).toContain(customerEmail);
    expect(await seriousA11yViolations(admin)).toEqual([]);
    await e2e.shot(admin, 'operator-failed-list');
    await row.getByRole('button', { name: /Retry/ }).click();
    await admin.getByText('Retry started').waitFor();
    await e2e.shot(admin, 'operator-retried');

    await waitForStatus(customer, ['running'], 180_000);
    await e2e.shot(customer, 'customer-running-after-retry');

    await admin.goto(`${e2e.portal}/admin/dead-letters`);
    await admin.getByRole('heading', { name: 'Dead-lettered events' }).waitFor();
    expect(await seriousA11yViolations(admin)).toEqual([]);
    await e2e.shot(admin, 'dead-letters');

    // The database servers: the platform's own shared pool, healthy, holding the retried instance.
    await admin.goto(`${e2e.portal}/admin/pools`);
    await admin.getByRole('heading', { name: 'Database servers' }).waitFor();
    const pool = admin.locator('section', { has: admin.getByRole('heading', { name: /^default/ }) });
    await pool.getByRole('link', { name: 'Broken Co' }).waitFor();
    expect(await pool.locator('dd[data-value]').first().getAttribute('data-value')).toBe('active');
    expect(await pool.innerText()).toMatch(/healthy, takes new databases/);
    expect(await seriousA11yViolations(admin)).toEqual([]);
    await e2e.shot(admin, 'operator-database-servers');

    // Search by email finds the customer; their page shows instances, subscriptions and sessions, as operator.
    await admin.goto(`${e2e.portal}/admin`);
    await admin.getByLabel('Search').fill(customerEmail.toUpperCase().slice(0, 14));
    await admin.getByRole('button', { name: 'Filter' }).click();
    await admin.waitForURL(/[?&]q=/);
    const found = admin.locator('tr[data-customer]', { hasText: customerEmail });
    await found.waitFor();
    expect(await admin.locator('tr[data-customer]').count()).toBe(1);
    await e2e.shot(admin, 'operator-search-by-email');
    await found.getByRole('link', { name: customerEmail }).click();
    await admin.locator('#operator-banner').waitFor();
    expect(await admin.getByTestId('customer-email').innerText()).toContain(customerEmail);
    await admin.getByRole('link', { name: 'Broken Co' }).waitFor();
    await admin
      .locator('#sessions-title')
      .locator('..')
      .getByText(/Chrome \d+ on Linux/)
      .first()
      .waitFor();
    const subscriptions = await admin.locator('#subscriptions-title').locator('..').innerText();
    expect(subscriptions).toMatch(/Broken Co · Basic \(test trial\) · active · free trial/);
    expect(subscriptions).not.toContain('basic-test-trial'); // the plan's name, not the catalogue's id
    expect(await seriousA11yViolations(admin)).toEqual([]);
    await e2e.shot(admin, 'operator-customer-page');
    // …and the customer's instance page says it is seen as an operator
    await admin.getByRole('link', { name: 'Broken Co' }).click();
    await admin.locator('#operator-banner').waitFor();
    await admin.getByRole('heading', { name: 'Broken Co' }).waitFor();
    expect(await seriousA11yViolations(admin)).toEqual([]);
    // nothing scrolls sideways on a phone, in the console either
    await admin.setViewportSize({ width: 390, height: 844 });
    for (const p of ['/admin', '/admin?status=error', '/admin/dead-letters', '/admin/pools']) {
      await admin.goto(`${e2e.portal}${p}`);
      expect(await admin.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1), p).toBe(true);
    }
  });
});
