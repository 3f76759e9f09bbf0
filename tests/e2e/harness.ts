/**
 * End-to-end harness: the whole platform (`up()`: broker, Kill Bill
 * simulator, SMTP catcher, runtime, every function, gateway, portal) in a
 * fresh DB_NAMESPACE / REDIS_PREFIX / BROKER_NAME / DATA_DIR (from
 * tests/helpers/setup-env.ts) on random ports, so it never collides with a
 * developer's running platform, and headless Debian Chromium driven by
 * playwright-core. Every step can leave a screenshot in test-artifacts/e2e/.
 *
 *   const e2e = await startE2e('customer-flow');
 *   const page = await e2e.newPage();
 *   await page.goto(e2e.portal + '/signup');
 *   await e2e.shot(page, 'signup');
 *   await e2e.stop();
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Page } from 'playwright-core';
import { simpleParser } from 'mailparser';
import { repoRoot } from '@saasodoo/platform/config';
import { startPlatform } from '../helpers/platform.ts';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

/** Why e2e tests cannot run here, or undefined when they can. */
export function e2eUnavailable(): string | undefined {
  if (!fs.existsSync(CHROMIUM)) return `Chromium not found at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`;
  return undefined;
}

/** Launches headless Chromium with the flags of TOOLCHAIN.md (playwright-core uses a fresh temporary profile). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

export type E2e = {
  portal: string;
  gateway: string;
  killbill: string;
  dataDir: string;
  browser: Browser;
  /** A fresh browser context (own cookies) and page on it. */
  newPage(opts?: BrowserContextOptions): Promise<Page>;
  /** Saves a full-page screenshot as test-artifacts/e2e/<suite>/<nn>-<name>.png. */
  shot(page: Page, name: string): Promise<void>;
  /** The newest mail to `to` whose text matches `pattern`, waiting for it to arrive in DATA_DIR/mail. */
  mail(to: string, pattern: RegExp, timeoutMs?: number): Promise<{ subject: string; text: string; html: string }>;
  /** Every mail to `to` received so far, in the order they were sent. */
  mails(to: string): Promise<{ subject: string; text: string; date: number }[]>;
  stop(): Promise<void>;
};

/**
 * Starts the platform and Chromium. Env set here wins over the developer's:
 * random ports, TEST_PLANS on, short Kill Bill notification retries.
 */
export async function startE2e(suite: string, env: Record<string, string> = {}): Promise<E2e> {
  const platform = await startPlatform({ env, skip: [] });
  const host = { stop: platform.stop };
  let browser: Browser;
  try {
    browser = await launchChromium();
  } catch (err) {
    await host.stop();
    throw err;
  }
  const contexts: BrowserContext[] = [];
  const artifacts = path.join(repoRoot, 'test-artifacts/e2e', suite);
  fs.rmSync(artifacts, { recursive: true, force: true });
  fs.mkdirSync(artifacts, { recursive: true });
  let shots = 0;
  const dataDir = platform.dataDir;

  return {
    portal: platform.env.PUBLIC_URL,
    gateway: platform.gateway,
    killbill: platform.killbill,
    dataDir,
    browser,
    async newPage(opts = {}) {
      const ctx = await browser.newContext({ viewport: { width: 1200, height: 900 }, ...opts });
      ctx.setDefaultTimeout(20_000);
      contexts.push(ctx);
      const page = await ctx.newPage();
      // Hydration resets a bound input typed into before it (the value is lost and the form sent empty, seen
      // under CI load): every navigation to the portal waits for the page to be interactive (`data-ready`).
      const goto = page.goto.bind(page);
      page.goto = async (url, options) => {
        const res = await goto(url, options);
        if (opts.javaScriptEnabled !== false && url.startsWith(platform.env.PUBLIC_URL)) await page.locator('html[data-ready]').waitFor({ state: 'attached' });
        return res;
      };
      return page;
    },
    async shot(page, name) {
      shots++;
      await page.screenshot({ path: path.join(artifacts, `${String(shots).padStart(2, '0')}-${name.replace(/[^a-z0-9-]+/gi, '-')}.png`), fullPage: true }).catch(() => {});
    },
    async mail(to, pattern, timeoutMs = 30_000) {
      const dir = path.join(dataDir, 'mail');
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.eml')) : [];
        const found: { at: number; subject: string; text: string; html: string }[] = [];
        for (const f of files) {
          const parsed = await simpleParser(fs.readFileSync(path.join(dir, f)));
          const recipients = [parsed.to]
            .flat()
            .flatMap((a) => a?.value ?? [])
            .map((a) => a.address?.toLowerCase());
          const text = parsed.text ?? '';
          if (recipients.includes(to.toLowerCase()) && pattern.test(text)) {
            found.push({ at: fs.statSync(path.join(dir, f)).mtimeMs, subject: parsed.subject ?? '', text, html: typeof parsed.html === 'string' ? parsed.html : '' });
          }
        }
        if (found.length) return found.sort((a, b) => b.at - a.at)[0];
        await new Promise((r) => setTimeout(r, 250));
      }
      throw new Error(`No mail to ${to} matching ${pattern} within ${timeoutMs} ms (looked in ${dir})`);
    },
    async mails(to) {
      const dir = path.join(dataDir, 'mail');
      const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.eml')) : [];
      const out: { subject: string; text: string; date: number; at: number }[] = [];
      for (const f of files) {
        const parsed = await simpleParser(fs.readFileSync(path.join(dir, f)));
        const recipients = [parsed.to]
          .flat()
          .flatMap((a) => a?.value ?? [])
          .map((a) => a.address?.toLowerCase());
        if (recipients.includes(to.toLowerCase())) {
          out.push({ subject: parsed.subject ?? '', text: parsed.text ?? '', date: parsed.date?.getTime() ?? 0, at: fs.statSync(path.join(dir, f)).mtimeMs });
        }
      }
      return out.sort((a, b) => a.at - b.at).map(({ at: _at, ...m }) => m);
    },
    async stop() {
      for (const c of contexts) await c.close().catch(() => {});
      await browser.close().catch(() => {});
      await host.stop(); // drops the namespace and DATA_DIR too
    },
  };
}

const axeSource = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

export type AxeViolation = { id: string; impact: string; help: string; nodes: string[] };

/**
 * Runs axe-core (WCAG 2 A/AA rules) on the page and returns the serious and
 * critical violations. The script is evaluated through the DevTools
 * protocol, so the portal's CSP stays on.
 */
export async function seriousA11yViolations(page: Page): Promise<AxeViolation[]> {
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(ctx: unknown, opts: unknown): Promise<{ violations: { id: string; impact: string; help: string; nodes: { target: string[] }[] }[] }> } }).axe;
    const r = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')) }));
  });
  return result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

/** A unique address for a test user. */
export function uniqueEmail(tag: string): string {
  return `${tag}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}@example.com`;
}

export const tmpDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'saasodoo-e2e-'));
