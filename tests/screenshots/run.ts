/**
 * `npm run screenshots` (outside CI): every page of the portal, with
 * realistic data (tests/e2e/site.ts), at 1280 px and on a phone (390×844),
 * for a person to look at, plus the README's pictures of the main pages.
 *
 * It starts the whole platform as the browser tests do (its own namespace,
 * the real plans: TEST_PLANS off), and saves a full-page PNG of each page
 * and width under test-artifacts/screenshots/<width>/, printing what
 * axe-core and the sideways-scroll check found (every-page.test.ts asserts
 * the same in CI). The README's pictures, the top 1280×800 of six pages, go
 * to web/screenshots/, and the instance page's to web/static/screenshots/
 * (the landing page's picture of the product).
 */
import '../helpers/setup-env.ts';
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from '@saasodoo/platform/config';
import { closeDatabases } from '@saasodoo/platform/db/index';
import { startE2e } from '../e2e/harness.ts';
import { seedSite, visitAll, WIDTHS } from '../e2e/site.ts';

const OUT = path.join(repoRoot, 'test-artifacts/screenshots');
const README_DIR = path.join(repoRoot, 'web/screenshots');
const LANDING_PICTURE = path.join(repoRoot, 'web/static/screenshots/instance.png');
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

async function main(): Promise<void> {
  const e2e = await startE2e('screenshots', { TEST_PLANS: 'false' });
  const problems: string[] = [];
  try {
    log('setting up a customer with two instances, a staging copy and a card, an operator and an empty account');
    const site = await seedSite(e2e);
    for (const width of WIDTHS) {
      fs.mkdirSync(path.join(OUT, width.name), { recursive: true });
      const checks = await visitAll(e2e, site, width, async (page, name) => {
        await page.screenshot({ path: path.join(OUT, width.name, `${name}.png`), fullPage: true });
        if (width.name === 'desktop' && README[name]) await page.screenshot({ path: path.join(README_DIR, `${README[name]}.png`) });
        // The landing page shows the product: the top of an instance page.
        if (width.name === 'desktop' && name === 'instance-trial') await page.screenshot({ path: LANDING_PICTURE });
      });
      for (const c of checks) {
        log(`${c.width} ${c.name}${c.violations.length ? ` axe: ${c.violations.map((v) => v.id).join(', ')}` : ''}${c.sideways ? ' SCROLLS SIDEWAYS' : ''}`);
        for (const v of c.violations) problems.push(`${c.name} (${c.width}): ${v.id}: ${v.help} at ${v.nodes.join(', ')}`);
        if (c.sideways) problems.push(`${c.name} (${c.width}): scrolls sideways`);
      }
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
// Exit even if a client (Redis of the admin CLI's session revocation) still holds the event loop open.
process.exit();
