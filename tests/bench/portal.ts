/**
 * Portal figures: the JavaScript shipped for the first load of the
 * instances page (gzip bytes; also the bytes actually sent, as the portal
 * serves precompressed brotli/gzip assets) and its largest contentful paint in headless
 * Chromium, on a cold browser context each run. The whole platform runs in a
 * namespace of its own (as the e2e tests do).
 */
import '../helpers/setup-env.ts';
import { gzipSync } from 'node:zlib';
import type { Page } from 'playwright-core';
import { startE2e, uniqueEmail } from '../e2e/harness.ts';
import { PASSWORD } from '../e2e/flows.ts';

async function signUpAndVerifyByApi(e2e: Awaited<ReturnType<typeof startE2e>>, email: string): Promise<void> {
  const post = (fn: string, body: unknown) => fetch(`${e2e.gateway}/api/${fn}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const r = await post('signup', { email, password: PASSWORD, firstName: 'Bench', lastName: 'Mark', acceptTerms: true });
  if (r.status !== 202) throw new Error(`signup answered ${r.status}`);
  const mail = await e2e.mail(email, /verify-email\?token=/, 60_000);
  const token = decodeURIComponent(mail.text.match(/verify-email\?token=([^\s>)"]+)/)![1]);
  const v = await post('verify-email', { token });
  if (!v.ok) throw new Error(`verify-email answered ${v.status}`);
}

async function logIn(page: Page, portal: string, email: string): Promise<void> {
  await page.goto(`${portal}/login`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL(`${portal}/instances`);
}

export async function bench(opts: { quick: boolean }) {
  process.env.LOG_LEVEL = 'error';
  const e2e = await startE2e('bench-portal');
  try {
    const email = uniqueEmail('bench');
    await signUpAndVerifyByApi(e2e, email);
    const login = await e2e.newPage();
    await logIn(login, e2e.portal, email);
    const state = await login.context().storageState();

    const runs = opts.quick ? 1 : 5;
    const lcps: number[] = [];
    let sentBytes = 0;
    let gzipBytes = 0;
    let files = 0;
    for (let i = 0; i < runs; i++) {
      const ctx = await e2e.browser.newContext({ storageState: state, viewport: { width: 1200, height: 900 } });
      const page = await ctx.newPage();
      const scripts: Promise<{ sent: number; gzip: number }>[] = [];
      page.on('requestfinished', (req) => {
        if (req.resourceType() !== 'script') return;
        scripts.push(
          (async () => {
            const res = await req.response();
            const body = res ? await res.body() : Buffer.alloc(0);
            return { sent: (await req.sizes()).responseBodySize, gzip: gzipSync(body, { level: 9 }).length };
          })(),
        );
      });
      await page.goto(`${e2e.portal}/instances`, { waitUntil: 'networkidle' });
      const lcp = await page.evaluate(
        () =>
          new Promise<number>((resolve) => {
            new PerformanceObserver((list) => {
              const entries = list.getEntries();
              resolve(entries[entries.length - 1].startTime);
            }).observe({ type: 'largest-contentful-paint', buffered: true });
            setTimeout(() => resolve(-1), 3000);
          }),
      );
      const sizes = await Promise.all(scripts);
      if (i === 0) {
        files = sizes.length;
        sentBytes = sizes.reduce((a, s) => a + s.sent, 0);
        gzipBytes = sizes.reduce((a, s) => a + s.gzip, 0);
      }
      lcps.push(lcp);
      await ctx.close();
    }
    lcps.sort((a, b) => a - b);
    const median = lcps[Math.floor(lcps.length / 2)];
    return [
      { name: `instances page: JS for first load, gzip bytes (${files} files)`, value: `${gzipBytes} B` },
      { name: 'instances page: JS bytes as sent (precompressed, brotli when accepted)', value: `${sentBytes} B` },
      { name: `instances page: LCP, headless Chromium (median of ${runs})`, value: `${median.toFixed(0)} ms` },
    ];
  } finally {
    await e2e.stop();
  }
}
