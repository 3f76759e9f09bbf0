/**
 * infra/killbill/catalog.xml and overdue.xml: valid against Kill Bill's XSDs
 * (xmllint), matching SPEC 3 and platform/src/plans.ts.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { CATALOG_PATH, localCatalogXml, localOverdueXml, OVERDUE_PATH, parseCatalog, parseOverdue, parseOverdueConfig } from '@saasodoo/platform/billing/catalog';
import { PLANS, STAGING_ADDON } from '@saasodoo/platform/plans';
import { schemaFile } from '../../helpers/schemas.ts';

function xmllint(): boolean {
  try {
    execFileSync('xmllint', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    process.stderr.write('xmllint not installed (Debian libxml2-utils): XSD validation skipped\n');
    return false;
  }
}

const hasXmllint = xmllint();

describe('Kill Bill configuration', () => {
  for (const [file, xsd] of [
    [CATALOG_PATH, 'killbill-catalog.xsd'],
    [OVERDUE_PATH, 'killbill-overdue.xsd'],
  ] as const) {
    const schema = schemaFile(xsd);
    it.skipIf(!hasXmllint || !schema)(`${file.split('/').pop()} validates against ${xsd}`, () => {
      const out = execFileSync('xmllint', ['--noout', '--schema', schema!, file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      expect(out).toBe('');
    });
  }

  it('the catalogue has exactly the plans of SPEC 3, as platform/src/plans.ts says', () => {
    const catalog = parseCatalog(localCatalogXml()).filter((p) => p.category === 'BASE');
    expect(catalog.map((p) => p.name).sort()).toEqual(PLANS.map((p) => p.id).sort());
    for (const plan of PLANS) {
      const c = catalog.find((p) => p.name === plan.id)!;
      expect({ price: c.price, currency: c.currency, period: c.billingPeriod, trial: c.trialDays }).toEqual({
        price: plan.price.amount,
        currency: plan.price.currency,
        period: 'MONTHLY',
        trial: plan.trial?.days,
      });
    }
  });

  it('the staging add-on is an ADD_ON available on exactly the plans with staging, priced as plans.ts says', () => {
    const catalog = parseCatalog(localCatalogXml());
    const addOn = catalog.find((p) => p.name === STAGING_ADDON.plan)!;
    expect(addOn).toMatchObject({ category: 'ADD_ON', product: STAGING_ADDON.product, price: STAGING_ADDON.price.amount, trialDays: STAGING_ADDON.trial.days, billingPeriod: 'MONTHLY' });
    expect(catalog.filter((p) => p.category === 'ADD_ON').map((p) => p.name)).toEqual([STAGING_ADDON.plan]);
    for (const plan of PLANS) {
      expect({ plan: plan.id, staging: catalog.find((p) => p.name === plan.id)!.addOns.includes(STAGING_ADDON.product) }).toEqual({ plan: plan.id, staging: plan.staging });
    }
    expect(PLANS.filter((p) => p.staging).map((p) => p.id)).toEqual(['standard-monthly', 'premium-monthly']);
  });

  it('overdue: WARNING at 10 days, BLOCKED at 14 (suspends), CANCELLATION at 21 (end of term)', () => {
    const states = parseOverdue(localOverdueXml());
    expect(states.map((s) => [s.name, s.days, s.blockEntitlement, s.cancellation])).toEqual([
      ['CANCELLATION', 21, true, 'END_OF_TERM'],
      ['BLOCKED', 14, true, undefined],
      ['WARNING', 10, false, undefined],
    ]);
  });

  it('overdue re-checks meet each boundary on its day: 1 day from clear, then WARNING +4 = 14, BLOCKED +7 = 21', () => {
    const { initialReevaluationDays, states } = parseOverdueConfig(localOverdueXml());
    expect(initialReevaluationDays).toBe(1);
    const byName = Object.fromEntries(states.map((s) => [s.name, s]));
    expect(byName.WARNING.days + byName.WARNING.reevaluationDays!).toBe(byName.BLOCKED.days);
    expect(byName.BLOCKED.days + byName.BLOCKED.reevaluationDays!).toBe(byName.CANCELLATION.days);
  });
});
