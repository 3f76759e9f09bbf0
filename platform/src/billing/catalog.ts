/**
 * Reads the parts of a Kill Bill catalogue and overdue config the platform
 * needs (plans, trial phases, prices; overdue states and thresholds). The
 * files are our own (infra/killbill/), so a small tag reader is enough and
 * avoids an XML dependency; it also accepts Kill Bill's versioned catalogue
 * answer, which wraps the same <plan> elements.
 */
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../config.ts';

export type CatalogPlan = {
  name: string;
  product: string;
  /** The product's category: BASE (an instance's plan) or ADD_ON (bought into a base's bundle: a staging copy). */
  category: 'BASE' | 'ADD_ON';
  /** ADD_ON products a subscription to this plan may add (its product's `<available>`). */
  addOns: string[];
  trialDays?: number;
  price: number;
  currency: string;
  billingPeriod: string;
};

export type OverdueStateDef = {
  name: string;
  days: number;
  blockChanges: boolean;
  blockEntitlement: boolean;
  cancellation?: 'END_OF_TERM' | 'IMMEDIATE';
  /** autoReevaluationInterval in days: when Kill Bill re-checks an account in this state (none: never by time). */
  reevaluationDays?: number;
};

/** The overdue config: states plus the re-check interval from the clear state (initialReevaluationInterval). */
export type OverdueConfig = { initialReevaluationDays?: number; states: OverdueStateDef[] };

export const CATALOG_PATH = path.join(repoRoot, 'infra/killbill/catalog.xml');
export const OVERDUE_PATH = path.join(repoRoot, 'infra/killbill/overdue.xml');

/** The catalogue and overdue config shipped in infra/killbill/. */
export function localCatalogXml(): string {
  return fs.readFileSync(CATALOG_PATH, 'utf8');
}
export function localOverdueXml(): string {
  return fs.readFileSync(OVERDUE_PATH, 'utf8');
}

const tag = (xml: string, name: string) => xml.match(new RegExp(`<${name}(?:\\s[^>]*)?>([\\s\\S]*?)</${name}>`))?.[1]?.trim();
const all = (xml: string, name: string) => [...xml.matchAll(new RegExp(`<${name}(\\s[^>]*)?>([\\s\\S]*?)</${name}>`, 'g'))];

/** Plans of a catalogue XML, in document order (the last version wins for a repeated name). */
export function parseCatalog(xml: string): CatalogPlan[] {
  const plans = new Map<string, CatalogPlan>();
  // Products by name (the <products> list only: a plan's <product> is a reference without a name).
  const products = new Map<string, { category: 'BASE' | 'ADD_ON'; addOns: string[] }>();
  for (const block of all(xml, 'products').map((m) => m[2])) {
    for (const m of all(block, 'product')) {
      const name = m[1]?.match(/name="([^"]+)"/)?.[1];
      if (!name) continue;
      const available = tag(m[2], 'available') ?? '';
      products.set(name, { category: tag(m[2], 'category') === 'ADD_ON' ? 'ADD_ON' : 'BASE', addOns: all(available, 'addonProduct').map((a) => a[2].trim()) });
    }
  }
  const plansBlocks = all(xml, 'plans')
    .map((m) => m[2])
    .filter((b) => b.includes('<plan name='));
  for (const block of plansBlocks) {
    for (const m of all(block, 'plan')) {
      const name = m[1]?.match(/name="([^"]+)"/)?.[1];
      if (!name) continue;
      const body = m[2];
      const trial = all(body, 'phase').find((p) => /type="TRIAL"/.test(p[1] ?? ''));
      const final = tag(body, 'finalPhase') ?? '';
      const recurring = tag(final, 'recurring') ?? '';
      const priceXml = tag(recurring, 'price') ?? '';
      let trialDays: number | undefined;
      if (trial) {
        const duration = tag(trial[2], 'duration') ?? '';
        const unit = tag(duration, 'unit');
        const n = Number(tag(duration, 'number'));
        trialDays = unit === 'DAYS' ? n : unit === 'WEEKS' ? n * 7 : unit === 'MONTHS' ? n * 30 : n;
      }
      const product = tag(body, 'product') ?? name;
      plans.set(name, {
        name,
        product,
        category: products.get(product)?.category ?? 'BASE',
        addOns: products.get(product)?.addOns ?? [],
        trialDays,
        price: Number(tag(priceXml, 'value') ?? 0),
        currency: tag(priceXml, 'currency') ?? 'USD',
        billingPeriod: tag(recurring, 'billingPeriod') ?? 'MONTHLY',
      });
    }
  }
  return [...plans.values()];
}

/** A <unit>/<number> duration in days (MONTHS as 30, as the trial reader does); undefined when absent. */
function durationDays(xml: string | undefined): number | undefined {
  if (!xml) return undefined;
  const n = Number(tag(xml, 'number'));
  const unit = tag(xml, 'unit');
  return unit === 'WEEKS' ? n * 7 : unit === 'MONTHS' ? n * 30 : unit === 'YEARS' ? n * 365 : n;
}

/** The overdue config with its re-evaluation schedule (what decides when Kill Bill looks at an account again). */
export function parseOverdueConfig(xml: string): OverdueConfig {
  const head = xml.split(/<state[\s>]/)[0];
  return { initialReevaluationDays: durationDays(tag(head, 'initialReevaluationInterval')), states: parseOverdue(xml) };
}

/** Overdue states, most severe (largest threshold) first, as Kill Bill evaluates them. */
export function parseOverdue(xml: string): OverdueStateDef[] {
  return all(xml, 'state')
    .map((m) => {
      const body = m[2];
      const cond = tag(body, 'timeSinceEarliestUnpaidInvoiceEqualsOrExceeds') ?? '';
      const policy = tag(body, 'subscriptionCancellationPolicy');
      return {
        name: m[1]?.match(/name="([^"]+)"/)?.[1] ?? '',
        days: Number(tag(cond, 'number') ?? 0),
        blockChanges: tag(body, 'blockChanges') === 'true',
        blockEntitlement: tag(body, 'disableEntitlementAndChangesBlocked') === 'true',
        cancellation: policy === 'END_OF_TERM' || policy === 'IMMEDIATE' ? policy : undefined,
        reevaluationDays: durationDays(tag(body, 'autoReevaluationInterval')),
      } satisfies OverdueStateDef;
    })
    .sort((a, b) => b.days - a.days);
}

/** Kill Bill's name of the cleared overdue state. */
export const CLEAR_OVERDUE_STATE = '__KILLBILL__CLEAR__OVERDUE_STATE__';
export const OVERDUE_SERVICE = 'overdue-service';
