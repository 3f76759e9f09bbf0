/**
 * The customer's whole journey in headless Chromium (issue 9): sign up, open
 * the verification mail, verify, log in, create a trial instance, watch it
 * provision, use it, and (as billing lands) go through overdue, suspension,
 * payment and cancellation; plus logout/back-button, tenant isolation,
 * staging copies (Basic says which plans have them; a Standard customer
 * makes one, sees it marked, refreshes it) and accessibility of the private pages. Each step needs the one before: a
 * step whose predecessor failed fails too, never skips.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { closeDatabases, db } from '@saasodoo/platform/db/index';
import { e2eUnavailable, seriousA11yViolations, startE2e, uniqueEmail, type E2e } from './harness.ts';
import { accessTokenOf, act, customerIdOf, moveClock, setPaymentOutcome, signUpVerifyLogIn, waitForBadge, waitForStatus } from './flows.ts';

const unavailable = e2eUnavailable();
if (unavailable) console.warn(`skipping e2e: ${unavailable}`);

describe.skipIf(!!unavailable)('customer flow', () => {
  let e2e: E2e;
  let page: Page;
  const email = uniqueEmail('ada');
  let instancePath = '';
  /** The Odoo credentials the portal showed. */
  let shown = { login: '', password: '' };

  beforeAll(async () => {
    e2e = await startE2e('customer-flow');
    page = await e2e.newPage();
  });
  afterAll(async () => {
    await closeDatabases();
    await e2e?.stop();
  });

  it('signs up, verifies the address from the mail and logs in', async () => {
    await signUpVerifyLogIn(e2e, page, email);
    await page.getByRole('heading', { name: 'No instances yet' }).waitFor();
    expect(await seriousA11yViolations(page)).toEqual([]);
  });

  it('shows the account with this session', async () => {
    await page.goto(`${e2e.portal}/account`);
    await page.getByText(email).waitFor();
    await page.getByText('this device').waitFor();
    expect(await seriousA11yViolations(page)).toEqual([]);
    await e2e.shot(page, 'account');
  });

  it('offers plans, checks the subdomain while typing, and creates a trial instance', async () => {
    await page.goto(`${e2e.portal}/instances/new`);
    await page.locator('[data-plan="basic-test-trial"]').waitFor();
    await page.getByLabel('Name').fill('Acme Test');
    const sub = `acme-${Date.now().toString(36)}`;
    await page.getByLabel('Subdomain').fill('ab');
    await page.getByText('at least 3 characters').waitFor();
    await page.getByLabel('Subdomain').fill('admin');
    await page.getByText('is reserved').waitFor();
    await page.getByLabel('Subdomain').fill(sub.toUpperCase());
    // what is typed is lowercased, and the full address it will get is shown
    expect(await page.getByLabel('Subdomain').inputValue()).toBe(sub);
    expect(await page.getByTestId('full-address').innerText()).toMatch(new RegExp(`^https?://${sub}\\.[a-z0-9.-]+(:\\d+)?$`));
    await page.getByText(`${sub} is available`).waitFor();
    expect(await seriousA11yViolations(page)).toEqual([]);
    await page.locator('[data-plan="basic-test-trial"] input[type=radio]').check();
    await page.getByLabel('Odoo version').selectOption('17');
    await page.getByLabel('Start with the free trial').waitFor();
    expect(await page.getByLabel('Start with the free trial').isChecked()).toBe(true);
    await e2e.shot(page, 'new-instance');
    await page.getByRole('button', { name: 'Create instance' }).click();
    const outcome = await Promise.race([
      page.waitForURL(/\/instances\/[0-9a-f-]{36}$/, { timeout: 60_000 }).then(() => 'created'),
      page
        .getByRole('alert')
        .waitFor({ timeout: 60_000 })
        .then(() => 'refused'),
    ]);
    if (outcome === 'refused') await e2e.shot(page, 'create-refused');
    expect(outcome, outcome === 'refused' ? await page.getByRole('alert').innerText() : '').toBe('created');
    instancePath = new URL(page.url()).pathname;
    await page.getByRole('heading', { name: 'Acme Test' }).waitFor();
    await e2e.shot(page, 'instance-created');
  });

  it('shows provisioning progress live and then the Odoo login, and its password once', async () => {
    expect(instancePath, 'the instance was created in an earlier step').not.toBe('');
    await waitForStatus(page, ['provisioning', 'running'], 60_000);
    if ((await page.locator('#progress').count()) > 0) await e2e.shot(page, 'provisioning');
    await waitForStatus(page, ['running'], 180_000);
    const password = page.getByTestId('admin-password');
    await password.waitFor();
    expect((await password.innerText()).length).toBeGreaterThanOrEqual(12);
    shown = { login: (await page.getByTestId('odoo-login').innerText()).trim(), password: (await password.innerText()).trim() };
    // the trial shows when it ends and the days left (the test plan's trial lasts 1 day)
    expect(await page.locator('#trial-notice').innerText()).toMatch(/Free trial until \d+ \w+ \d{4} · 1 day left/);
    expect(shown.login).toBe(email);
    await e2e.shot(page, 'running-with-password');
    expect(await seriousA11yViolations(page)).toEqual([]);
    // fits a phone (390×844): no page scrolls sideways, the actions stay reachable
    await page.setViewportSize({ width: 390, height: 844 });
    expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1)).toBe(true);
    await e2e.shot(page, 'instance-on-phone');
    for (const p of ['/instances', '/instances/new', '/billing', '/account', '/pricing', '/']) {
      await page.goto(`${e2e.portal}${p}`);
      await page.locator('main h1').first().waitFor();
      expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1), `${p} at 390 px`).toBe(true);
      expect(await seriousA11yViolations(page), p).toEqual([]);
    }
    await page.goto(`${e2e.portal}${instancePath}`);
    await page.setViewportSize({ width: 1200, height: 900 });
    // shown once: a reload does not show it again
    await page.reload();
    await waitForStatus(page, ['running']);
    expect(await page.getByTestId('admin-password').count()).toBe(0);
    expect((await page.getByTestId('odoo-login').innerText()).trim()).toBe(email);
    // Storage over time: samples of two earlier hours (a chart needs two points) and this hour's measurement.
    await db('instance').none(
      `INSERT INTO storage_samples (instance_id, hour, used_bytes, limit_bytes)
       SELECT $1, date_trunc('hour', now()) - h * interval '1 hour', 5 * 1024 * 1024 * (4 - h), 1024 * 1024 * 1024 FROM generate_series(2, 3) h`,
      [instancePath.split('/').pop()],
    );
    await page.reload();
    const chart = page.locator('.storage-chart figcaption');
    expect(await chart.innerText()).toMatch(/^Storage used from \d+ \w+ \d{4} to \d+ \w+ \d{4}: 5\.0 MiB then, [\d.]+ [KMG]?i?B now, at most [\d.]+ [KMG]?i?B\.$/);
    expect(await page.locator('.storage-chart svg').getAttribute('aria-label')).toBe(await chart.innerText());
    await e2e.shot(page, 'storage-chart');
  });

  it('logs in to Odoo with the login and password the portal showed', async () => {
    expect(shown.password, 'the password was shown in an earlier step').not.toBe('');
    const [tab] = await Promise.all([page.context().waitForEvent('page'), page.getByTestId('open-odoo').click()]);
    await tab.waitForLoadState();
    expect(new URL(tab.url()).pathname).toBe('/web/login');
    await tab.getByLabel('Email').fill(shown.login);
    await tab.getByLabel('Password').fill('admin');
    await tab.getByRole('button', { name: 'Log in' }).click();
    await tab.getByRole('heading', { name: 'Wrong login/password' }).waitFor();
    await tab.goto(new URL('/web/login', tab.url()).href);
    await tab.getByLabel('Email').fill(shown.login);
    await tab.getByLabel('Password').fill(shown.password);
    await tab.getByRole('button', { name: 'Log in' }).click();
    await tab.getByRole('heading', { name: 'Logged in' }).waitFor();
    await e2e.shot(tab, 'odoo-logged-in');
    await tab.close();
  });

  it('opens the instance URL', async () => {
    expect(instancePath, 'the instance was created in an earlier step').not.toBe('');
    const url = await page.locator('#instance-url').getAttribute('href');
    expect(url).toBeTruthy();
    const tab = await page.context().newPage();
    const res = await tab.goto(url!);
    expect(res?.status()).toBe(200);
    await e2e.shot(tab, 'instance-site');
    await tab.close();
  });

  it('adds a custom domain: the page shows the two DNS records to create, and removes it', async () => {
    await page.goto(`${e2e.portal}${instancePath}`);
    await page.getByRole('link', { name: 'Custom domains' }).click();
    await page.getByRole('textbox', { name: 'Domain' }).fill('ERP.Example-Customer.test');
    await page.getByRole('button', { name: 'Add domain' }).click();
    await page.getByText('erp.example-customer.test was added').waitFor();
    const records = page.getByRole('table', { name: 'DNS records for erp.example-customer.test' });
    expect(await records.locator('tbody tr').first().innerText()).toMatch(/CNAME\s+erp\.example-customer\.test\s+[a-z0-9-]+\.localhost/);
    expect(await records.locator('tbody tr').nth(1).innerText()).toMatch(/TXT\s+_saasodoo-challenge\.erp\.example-customer\.test\s+\S{20,}/);
    expect(await seriousA11yViolations(page)).toEqual([]);
    await e2e.shot(page, 'custom-domain-records');
    await page.getByRole('button', { name: 'Remove erp.example-customer.test' }).click();
    await page.getByText('erp.example-customer.test was removed').waitFor();
    await page.goto(`${e2e.portal}${instancePath}`); // where the next steps start
  });

  it('a staging copy: the Basic plan says which plans include one', async () => {
    expect(instancePath, 'the instance was created in an earlier step').not.toBe('');
    await page.goto(`${e2e.portal}${instancePath}`);
    expect(await page.locator('#staging-unavailable').innerText()).toBe('Staging copies come with the Standard and Premium plans.');
    expect(await page.locator('button[data-action="staging"]').count()).toBe(0);
  });

  it('stops and starts the instance', async () => {
    expect(instancePath, 'the instance was created in an earlier step').not.toBe('');
    await act(page, 'stop');
    await waitForStatus(page, ['stopped'], 90_000);
    await e2e.shot(page, 'stopped');
    expect(await page.locator('button[data-action="stop"]').isDisabled()).toBe(true);
    await act(page, 'start');
    await waitForStatus(page, ['running'], 90_000);
    await e2e.shot(page, 'started-again');
  });

  it('takes a backup and offers its download', async () => {
    expect(instancePath, 'the instance was created in an earlier step').not.toBe('');
    await act(page, 'backup');
    // the row appears, and gets its Download link once the backup completed
    const row = page.locator('tr[data-backup]', { has: page.getByRole('link', { name: /Download/ }) }).first();
    await row.waitFor({ timeout: 120_000 });
    await waitForStatus(page, ['running'], 60_000);
    // The progress note may be over before a test looks (a small backup is quick); it must not outlive the work.
    await expect.poll(() => page.getByText('Taking a backup').count(), { timeout: 30_000 }).toBe(0);
    await e2e.shot(page, 'backup-taken');
    // on a phone the backups table is a list of cards whose buttons stay on screen
    await page.setViewportSize({ width: 390, height: 844 });
    expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1)).toBe(true);
    const box = await row.getByRole('link', { name: /Download/ }).boundingBox();
    expect(box && box.x + box.width).toBeLessThanOrEqual(390);
    await e2e.shot(page, 'backups-on-phone');
    await page.setViewportSize({ width: 1200, height: 900 });
    const download = page.waitForEvent('download');
    await row.getByRole('link', { name: /Download/ }).click();
    const file = await download;
    expect(await file.failure()).toBeNull();
  });

  it('no longer offers a trial once the customer had one', async () => {
    expect(instancePath, 'the instance was created in an earlier step').not.toBe('');
    for (const p of ['/instances/new', '/instances', '/billing']) {
      await page.goto(`${e2e.portal}${p}`);
      await page.locator('main h1').waitFor();
      // The running trial may be shown (with its end date); a new one is not offered.
      expect(await page.locator('main').innerText(), p).not.toMatch(/\d+-day free trial|start with the free trial/i);
    }
    expect(await page.getByLabel('Start with the free trial').count()).toBe(0);
    await e2e.shot(page, 'billing-no-trial-offer');
  });

  it('goes overdue then suspended when payment fails after the trial, and resumes once paid', async () => {
    expect(instancePath, 'the instance was created in an earlier step').not.toBe('');
    const customerId = await customerIdOf(e2e, email);
    await setPaymentOutcome(e2e, customerId, 'FAILURE');
    await moveClock(e2e, 2); // the test plan's 1-day trial ends; the first invoice's payment fails
    await page.goto(`${e2e.portal}${instancePath}`);
    await waitForBadge(page, 'billing', 'overdue', 90_000);
    await e2e.shot(page, 'overdue');
    // The trial's end, the first invoice and its failed payment: one mail, not three in a confusing order.
    await e2e.mail(email, /free trial has ended/, 60_000);
    await moveClock(e2e, 15); // overdue BLOCKED at 14 days
    await waitForStatus(page, ['suspended'], 120_000);
    await page.locator('#suspended-notice').waitFor();
    expect(await page.locator('#suspended-notice').innerText()).toMatch(/suspended/i);
    for (const a of ['start', 'stop', 'restart', 'backup']) expect(await page.locator(`button[data-action="${a}"]`).isDisabled(), a).toBe(true);
    // a suspended instance cannot be reached: its health is not "healthy"
    const health = page.locator('#badges [data-kind="health"]');
    expect(await health.getAttribute('data-value')).toBe('offline');
    expect(await health.innerText()).not.toMatch(/healthy/);
    const mails = await e2e.mails(email);
    const billingMails = mails.filter((m) => /trial|invoice|payment/i.test(m.subject));
    expect(
      billingMails.filter((m) => /trial has ended/.test(m.subject)),
      'one trial-end mail',
    ).toHaveLength(1);
    const trialEnd = billingMails.findIndex((m) => /trial has ended/.test(m.subject));
    expect(billingMails[trialEnd].subject).toMatch(/first payment failed/);
    // nothing about the same moment before it, and no separate invoice mail for the first invoice
    expect(
      billingMails
        .slice(0, trialEnd)
        .map((m) => m.subject)
        .filter((s) => !/trial ends in/.test(s)),
    ).toEqual([]);
    expect(billingMails.filter((m) => /new SaaSOdoo invoice/.test(m.subject))).toEqual([]);
    for (const m of mails) expect(m.text, m.subject).toMatch(/Questions\? Contact us: \S+/);
    await e2e.shot(page, 'suspended');
    expect(await seriousA11yViolations(page)).toEqual([]);
    await setPaymentOutcome(e2e, customerId, 'SUCCESS'); // pays the unpaid invoices now
    await waitForStatus(page, ['running'], 180_000);
    await waitForBadge(page, 'billing', 'paid', 60_000);
    await e2e.shot(page, 'resumed');
  });

  it('cancels from the billing page (effective date shown) and the instance is terminated', async () => {
    expect(instancePath, 'the instance was created in an earlier step').not.toBe('');
    await page.goto(`${e2e.portal}/billing`);
    const sub = page.locator('[data-subscription]').first();
    await sub.waitFor();
    expect(await seriousA11yViolations(page)).toEqual([]);
    await sub.getByText('Cancel subscription…').click();
    await sub.getByText(/ends at the end of the paid period/).waitFor();
    await e2e.shot(page, 'cancel-confirm');
    await sub.getByRole('button', { name: 'Yes, cancel' }).click();
    await page
      .getByRole('status')
      .filter({ hasText: /Cancelled/ })
      .waitFor();
    await e2e.shot(page, 'cancelled');
    await moveClock(e2e, 40); // past the end of the paid period
    await page.goto(`${e2e.portal}${instancePath}`);
    await waitForStatus(page, ['terminated'], 180_000);
    await e2e.shot(page, 'terminated');
  });

  it('after logout the back button shows no private data', async () => {
    await page.goto(`${e2e.portal}/account`);
    await page.getByText(email).waitFor();
    await page.getByRole('button', { name: 'Log out', exact: true }).click();
    await page.waitForURL(`${e2e.portal}/login`);
    await page.goBack();
    // Going back re-requests the private page (no-store), which redirects to login: wait for that to settle.
    await page.waitForURL((u) => u.pathname === '/login');
    await page.waitForLoadState('networkidle');
    expect(new URL(page.url()).pathname).toBe('/login');
    expect(await page.content()).not.toContain(email);
    await e2e.shot(page, 'back-after-logout');
  });

  it('on Standard, makes a staging copy: marked in the list and on its pages, refreshed from production', async () => {
    const carol = await e2e.newPage();
    const carolEmail = uniqueEmail('carol');
    await signUpVerifyLogIn(e2e, carol, carolEmail, false);
    // The original is set up through the API (creating one through the portal is the first steps' subject).
    const res = await fetch(`${e2e.gateway}/api/instances`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await accessTokenOf(e2e, carolEmail)}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Carol Shop', subdomain: `carol-${Date.now().toString(36)}`, plan: 'standard-monthly', odooVersion: '17', trial: true }),
    });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    await carol.goto(`${e2e.portal}/instances/${id}`);
    await waitForStatus(carol, ['running'], 180_000);
    await carol.locator('button[data-action="staging"]').click();
    await carol.waitForURL(/\/instances\/[0-9a-f-]{36}\?staging=new$/);
    const copyId = new URL(carol.url()).pathname.split('/').at(-1)!;
    expect(await carol.locator('#staging-banner').innerText()).toMatch(/staging copy of Carol Shop[\s\S]*never mails your customers or charges their cards/);
    await waitForStatus(carol, ['running'], 180_000);
    expect(await seriousA11yViolations(carol)).toEqual([]);
    await e2e.shot(carol, 'staging-copy');
    await carol.getByText('Refresh from production…').click();
    await carol.getByRole('button', { name: 'Yes, replace this copy’s data' }).click();
    await carol.getByText('Refreshing from production').waitFor();
    await waitForStatus(carol, ['running'], 180_000);
    await carol.goto(`${e2e.portal}/instances`);
    expect(await carol.locator(`[data-instance="${copyId}"] [data-kind="staging"]`).innerText()).toBe('Staging copy');
    expect(await carol.locator(`[data-instance="${id}"] [data-kind="staging"]`).count()).toBe(0);
    await carol.close();
  });

  it('a second customer can neither see nor open the first one’s instance', async () => {
    const other = await e2e.newPage();
    await signUpVerifyLogIn(e2e, other, uniqueEmail('bob'), false);
    await other.getByRole('heading', { name: 'No instances yet' }).waitFor();
    if (instancePath) {
      const res = await other.goto(`${e2e.portal}${instancePath}`);
      expect(res?.status()).toBe(404);
      expect(await other.content()).not.toContain('Acme Test');
      await e2e.shot(other, 'other-tenant-404');
    }
  });
});
