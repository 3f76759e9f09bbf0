/**
 * The public pages of the portal in headless Chromium: they render, say
 * which field is wrong, work without JavaScript, keep private pages behind
 * login, fit a phone, and have no serious or critical axe-core violation.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { e2eUnavailable, seriousA11yViolations, startE2e, type E2e } from './harness.ts';

const unavailable = e2eUnavailable();
if (unavailable) console.warn(`skipping e2e: ${unavailable}`);

describe.skipIf(!!unavailable)('portal public pages', () => {
  let e2e: E2e;
  beforeAll(async () => {
    e2e = await startE2e('public-pages');
  });
  afterAll(async () => {
    await e2e?.stop();
  });

  it('renders the signup page with labelled fields', async () => {
    const page = await e2e.newPage();
    const res = await page.goto(`${e2e.portal}/signup`);
    expect(res?.status()).toBe(200);
    expect(res?.headers()['cache-control']).toBe('no-store');
    await expect(page.title()).resolves.toMatch(/Sign up/);
    for (const label of ['First name', 'Last name', 'Email', 'Password']) {
      await page.getByLabel(label, { exact: true }).waitFor();
    }
    await e2e.shot(page, 'signup');
  });

  it('names each wrong field on signup, with and without JavaScript', async () => {
    for (const javaScriptEnabled of [true, false]) {
      const page = await e2e.newPage({ javaScriptEnabled });
      await page.goto(`${e2e.portal}/signup`);
      await page.getByLabel('Email', { exact: true }).fill('not-an-email');
      await page.getByLabel('Password', { exact: true }).fill('short');
      await page.getByRole('button', { name: 'Create account' }).click();
      const alert = page.getByRole('alert');
      await alert.waitFor();
      const text = await alert.innerText();
      expect(text).toMatch(/First name.*required/i);
      expect(text).toMatch(/Email.*email address/i);
      expect(text).toMatch(/Password.*at least 12/i);
      expect(text).toMatch(/terms/i);
      await expect(page.getByLabel('Email', { exact: true }).getAttribute('aria-invalid')).resolves.toBe('true');
      // after a failed submit the error summary has the focus
      if (javaScriptEnabled) await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe('error-summary');
      // the typed email is kept, the password never comes back
      await expect(page.getByLabel('Email', { exact: true }).inputValue()).resolves.toBe('not-an-email');
      if (!javaScriptEnabled) await expect(page.getByLabel('Password', { exact: true }).inputValue()).resolves.toBe('');
      await e2e.shot(page, `signup-errors-${javaScriptEnabled ? 'js' : 'nojs'}`);
    }
  });

  it("shows the API's control-character refusal next to the field it names (issue 16)", async () => {
    const page = await e2e.newPage();
    await page.goto(`${e2e.portal}/signup`);
    await page.getByLabel('First name', { exact: true }).fill('Ada\u0001');
    await page.getByLabel('Last name', { exact: true }).fill('Lovelace');
    await page.getByLabel('Email', { exact: true }).fill(`ada-${Date.now()}@example.test`);
    await page.getByLabel('Password', { exact: true }).fill('a sensible passphrase 42');
    await page.getByLabel('I accept the terms of service').check();
    await page.getByRole('button', { name: 'Create account' }).click();
    const error = page.locator('#f-firstName-error');
    await error.waitFor();
    expect(await error.innerText()).toBe('must not contain control characters (found U+0001)');
    await expect(page.getByLabel('First name', { exact: true }).getAttribute('aria-invalid')).resolves.toBe('true');
    await expect(page.getByLabel('Last name', { exact: true }).getAttribute('aria-invalid')).resolves.toBeNull();
    expect(await page.getByRole('alert').innerText()).toMatch(/First name: must not contain control characters/);
    await e2e.shot(page, 'signup-control-character');
  });

  it('shows the API field error when login is refused', async () => {
    const page = await e2e.newPage();
    await page.goto(`${e2e.portal}/login`);
    await page.getByLabel('Email').fill('nobody@example.com');
    await page.getByLabel('Password').fill('wrong password for nobody');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('alert').waitFor();
    expect(await page.getByRole('alert').innerText()).not.toBe('');
    await e2e.shot(page, 'login-refused');
  });

  it('refuses a weak password on signup and says why', async () => {
    const page = await e2e.newPage();
    await page.goto(`${e2e.portal}/signup`);
    await page.getByLabel('First name', { exact: true }).fill('Ada');
    await page.getByLabel('Last name', { exact: true }).fill('Lovelace');
    await page.getByLabel('Email', { exact: true }).fill(`ada-weak-${Date.now()}@example.test`);
    await page.getByLabel('Password', { exact: true }).fill('password1234');
    await page.getByLabel('I accept the terms of service').check();
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.locator('#f-password-error').waitFor();
    expect(await page.locator('#f-password-error').innerText()).toMatch(/^is too easy to guess \(.+\): .+/);
    expect(await page.getByRole('alert').innerText()).toMatch(/Password: is too easy to guess/);
    await page.getByLabel('Password', { exact: true }).fill('AdaLovelace2026!');
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.locator('#f-password-error', { hasText: 'built from your email address or name' }).waitFor();
    expect(await seriousA11yViolations(page)).toEqual([]);
    await e2e.shot(page, 'signup-weak-password');
  });

  it('after a lockout, the login page offers the password reset', async () => {
    const page = await e2e.newPage();
    await page.goto(`${e2e.portal}/login`);
    const email = `locked-${Date.now()}@example.test`;
    for (let i = 0; i < 6 && (await page.locator('#locked-help').count()) === 0; i++) {
      await page.getByLabel('Email').fill(email);
      await page.getByLabel('Password').fill(`wrong password number ${i}`);
      // wait for this attempt's answer, not the alert the previous one left
      await Promise.all([page.waitForResponse((r) => new URL(r.url()).pathname === '/login' && r.request().method() === 'POST'), page.getByRole('button', { name: 'Log in' }).click()]);
      await page.getByRole('alert').waitFor();
    }
    await page.locator('#locked-help').waitFor();
    expect(await page.getByRole('alert').innerText()).toMatch(/Too many attempts/);
    await page.locator('#locked-help').getByRole('link', { name: 'Reset it now' }).click();
    await page.waitForURL(`${e2e.portal}/forgot-password`);
    await page.getByRole('heading', { name: 'Forgot your password?' }).waitFor();
    await e2e.shot(page, 'lockout-offers-reset');
  });

  it('a reset page opened without a token leads to the page that asks for a reset link', async () => {
    const page = await e2e.newPage();
    await page.goto(`${e2e.portal}/reset-password`);
    expect(new URL(page.url()).pathname).toBe('/forgot-password');
    expect(await page.content()).not.toMatch(/link is incomplete/);
  });

  it('a visitor sees what the service is, one card per plan in customer words, the trial, an FAQ, terms and privacy', async () => {
    const page = await e2e.newPage();
    await page.goto(`${e2e.portal}/`);
    await page.getByRole('heading', { level: 1 }).waitFor();
    await page.getByRole('img', { name: /instance page of the portal/ }).waitFor();
    await page.getByRole('heading', { name: 'How the trial works' }).waitFor();
    await page.getByRole('heading', { name: 'Questions' }).waitFor();
    await e2e.shot(page, 'landing');
    await page.getByRole('link', { name: 'See pricing' }).click();
    await page.waitForURL(`${e2e.portal}/pricing`);
    const cards = page.locator('li.plan h3');
    const names = await cards.allInnerTexts();
    expect(
      names.filter((n) => n === 'Basic'),
      'one Basic card for the with- and without-trial plans',
    ).toHaveLength(1);
    expect(names).toEqual(expect.arrayContaining(['Basic', 'Standard', 'Premium']));
    const text = await page.locator('main').innerText();
    expect(text).not.toMatch(/basic-immediate|basic-monthly|-monthly|evergreen|phase|blocked/i);
    expect(text).toMatch(/\d+-day free trial/);
    await e2e.shot(page, 'pricing');
    await page.getByRole('link', { name: 'Terms of service' }).click();
    await page.waitForURL(`${e2e.portal}/terms`);
    // the operator's text file, as written
    await page.getByRole('heading', { level: 1, name: 'Terms of service' }).waitFor();
    await page.getByText('An invoice left unpaid for 14 days').waitFor();
    await page.getByRole('link', { name: 'Privacy' }).click();
    await page.getByRole('heading', { level: 1, name: 'Privacy' }).waitFor();
  });

  it('sends visitors of private pages to login, and back after', async () => {
    const page = await e2e.newPage();
    for (const path of ['/instances', '/instances/new', '/billing', '/account', '/admin']) {
      await page.goto(`${e2e.portal}${path}`);
      expect(new URL(page.url()).pathname).toBe('/login');
      expect(new URL(page.url()).searchParams.get('next')).toBe(path);
    }
  });

  it('refuses a form post from another origin (SvelteKit origin check)', async () => {
    const res = await fetch(`${e2e.portal}/login`, {
      method: 'POST',
      headers: { origin: 'http://evil.example', 'content-type': 'application/x-www-form-urlencoded' },
      body: 'email=a%40b.c&password=x',
    });
    expect(res.status).toBe(403);
  });

  it('has no serious or critical accessibility violation on public pages, desktop and phone', async () => {
    const pages = ['/', '/pricing', '/terms', '/privacy', '/signup', '/login', '/forgot-password', '/reset-password?token=x', '/verify-email?email=a%40b.c', '/no-such-page'];
    for (const viewport of [
      { width: 1200, height: 900 },
      { width: 375, height: 740 },
    ]) {
      const page = await e2e.newPage({ viewport, isMobile: viewport.width < 500 });
      for (const p of pages) {
        await page.goto(`${e2e.portal}${p}`);
        expect(await seriousA11yViolations(page), `${p} at ${viewport.width}px`).toEqual([]);
        // nothing scrolls sideways on a phone
        expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1), `${p} fits ${viewport.width}px`).toBe(true);
      }
      await e2e.shot(page, `not-found-${viewport.width}`);
    }
    // an empty submit shows errors that must be accessible too
    const page = await e2e.newPage();
    await page.goto(`${e2e.portal}/signup`);
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.getByRole('alert').waitFor();
    expect(await seriousA11yViolations(page)).toEqual([]);
  });
});
