/** Steps of the e2e flows, as a person does them in the portal. */
import { expect } from 'vitest';
import type { Page } from 'playwright-core';
import type { E2e } from './harness.ts';

export const PASSWORD = 'correct horse battery staple';

/** Waits until the portal page is interactive (hydrated): typing before that can be undone by hydration. */
export async function ready(page: Page): Promise<void> {
  await page.locator('html[data-ready]').waitFor({ state: 'attached' });
}

/** Signs up through the form, confirms the address from the mail, and logs in. Ends on /instances. */
export async function signUpVerifyLogIn(e2e: E2e, page: Page, email: string, shots = true): Promise<void> {
  await page.goto(`${e2e.portal}/signup`);
  await ready(page);
  await page.getByLabel('First name').fill('Ada');
  await page.getByLabel('Last name').fill('Lovelace');
  await page.getByLabel('Email', { exact: true }).fill(email);
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByLabel('I accept the terms of service').check();
  await page.getByRole('button', { name: 'Create account' }).click();
  // The first signup of a fresh platform also starts the signup function (zxcvbn's dictionaries load at its start).
  await page.getByText(`We sent a link to ${email}`).waitFor({ timeout: 60_000 });
  if (shots) await e2e.shot(page, 'signed-up');

  const mail = await e2e.mail(email, /\/verify-email\?token=/);
  const link = mail.text.match(/https?:\/\/\S+\/verify-email\?token=[^\s>)"]+/)?.[0];
  expect(link, 'verification link in the mail').toBeTruthy();
  expect(new URL(link!).origin).toBe(e2e.portal);
  await page.goto(link!);
  await page.getByText('your address is confirmed').waitFor();
  if (shots) await e2e.shot(page, 'verified');

  await page.getByRole('link', { name: 'Log in' }).last().click();
  await page.waitForURL(/\/login/);
  await ready(page);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL(`${e2e.portal}/instances`);
  if (shots) await e2e.shot(page, 'logged-in');
}

/** The status badge's value on an instance page. */
export async function statusOf(page: Page): Promise<string | null> {
  return page.locator('#badges [data-kind="status"]').getAttribute('data-value');
}

/** Waits (polling the page, which updates itself over SSE) until the status is one of `want`. */
export async function waitForStatus(page: Page, want: string[], timeoutMs = 120_000): Promise<string> {
  const sel = want.map((w) => `#badges [data-kind="status"][data-value="${w}"]`).join(', ');
  await page.locator(sel).first().waitFor({ timeout: timeoutMs });
  return (await statusOf(page))!;
}

export async function waitForBadge(page: Page, kind: 'billing' | 'health', want: string, timeoutMs = 120_000): Promise<void> {
  await page.locator(`#badges [data-kind="${kind}"][data-value="${want}"]`).waitFor({ timeout: timeoutMs });
}

/** Clicks an instance action button (start, stop, restart, backup). */
export async function act(page: Page, action: string): Promise<void> {
  const button = page.locator(`button[data-action="${action}"]`);
  await expect.poll(() => button.isEnabled(), { timeout: 60_000 }).toBe(true);
  await button.click();
}

/** An access token for an account, from a login through the API (for a step that sets up through the API). */
export async function accessTokenOf(e2e: E2e, email: string): Promise<string> {
  const res = await fetch(`${e2e.gateway}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password: PASSWORD }) });
  return ((await res.json()) as { accessToken: string }).accessToken;
}

/** The customer id (JWT `sub`) of an account, from a login through the API. */
export async function customerIdOf(e2e: E2e, email: string): Promise<string> {
  const res = await fetch(`${e2e.gateway}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password: PASSWORD }) });
  const { accessToken } = (await res.json()) as { accessToken: string };
  return JSON.parse(Buffer.from(accessToken.split('.')[1], 'base64url').toString('utf8')).sub;
}

/** Calls the Kill Bill simulator as the platform's tenant. */
export async function killbill(e2e: E2e, method: string, pathAndQuery: string, body?: unknown): Promise<any> {
  const res = await fetch(`${e2e.killbill}${pathAndQuery}`, {
    method,
    headers: {
      authorization: `Basic ${Buffer.from(`${process.env.KILLBILL_USERNAME ?? 'admin'}:${process.env.KILLBILL_PASSWORD ?? 'password'}`).toString('base64')}`,
      'x-killbill-apikey': process.env.KILLBILL_API_KEY ?? 'saasodoo',
      'x-killbill-apisecret': process.env.KILLBILL_API_SECRET ?? 'saasodoo-secret',
      'x-killbill-createdby': 'e2e',
      'content-type': 'application/json',
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`Kill Bill ${method} ${pathAndQuery} answered ${res.status}: ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : undefined;
}

/** Tells the simulator's test payment method of this customer's account to succeed or fail. */
export async function setPaymentOutcome(e2e: E2e, customerId: string, outcome: 'SUCCESS' | 'FAILURE'): Promise<void> {
  const account = await killbill(e2e, 'GET', `/1.0/kb/accounts?externalKey=${customerId}`);
  await killbill(e2e, 'POST', `/simulator/accounts/${account.accountId}/paymentOutcome`, { outcome });
}

/** Moves Kill Bill's test clock forward; everything due fires on the way. */
export async function moveClock(e2e: E2e, days: number): Promise<void> {
  await killbill(e2e, 'PUT', `/1.0/kb/test/clock?days=${days}`);
}
