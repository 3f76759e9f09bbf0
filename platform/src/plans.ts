/**
 * The plan table of platform/src/billing/README.md 1: what each plan gives (resources come from here,
 * never from the client). Prices and trial lengths mirror
 * infra/killbill/catalog.xml, which a test keeps in step.
 */
import { config } from './config.ts';

export type Plan = {
  id: string;
  name: string;
  price: { amount: number; currency: 'USD'; period: 'month' };
  resources: { cpu: number; memoryMiB: number; storageGiB: number };
  database: 'shared' | 'dedicated';
  trial?: { days: number };
  /** Custom domains an instance on this plan may have. */
  customDomains: number;
  /** Whether an instance on this plan may have a staging copy (the catalogue's Staging add-on is available on its product). */
  staging: boolean;
  testOnly?: boolean;
};

export const PLANS: readonly Plan[] = [
  {
    id: 'basic-immediate',
    name: 'Basic',
    price: { amount: 5, currency: 'USD', period: 'month' },
    resources: { cpu: 1, memoryMiB: 2048, storageGiB: 10 },
    database: 'shared',
    customDomains: 1,
    staging: false,
  },
  {
    id: 'basic-monthly',
    name: 'Basic',
    price: { amount: 5, currency: 'USD', period: 'month' },
    resources: { cpu: 1, memoryMiB: 2048, storageGiB: 10 },
    database: 'shared',
    customDomains: 1,
    staging: false,
    trial: { days: 14 },
  },
  {
    id: 'standard-monthly',
    name: 'Standard',
    price: { amount: 8, currency: 'USD', period: 'month' },
    resources: { cpu: 2, memoryMiB: 4096, storageGiB: 20 },
    database: 'shared',
    customDomains: 3,
    staging: true,
    trial: { days: 14 },
  },
  {
    id: 'premium-monthly',
    name: 'Premium',
    price: { amount: 10, currency: 'USD', period: 'month' },
    resources: { cpu: 4, memoryMiB: 8192, storageGiB: 50 },
    database: 'dedicated',
    customDomains: 5,
    staging: true,
    trial: { days: 14 },
  },
  {
    id: 'basic-test-trial',
    name: 'Basic (test trial)',
    price: { amount: 5, currency: 'USD', period: 'month' },
    resources: { cpu: 1, memoryMiB: 2048, storageGiB: 10 },
    database: 'shared',
    customDomains: 1,
    staging: false,
    trial: { days: 1 },
    testOnly: true,
  },
];

/**
 * The staging copy add-on (platform/src/instances/README.md 6): Kill Bill plan
 * `staging-monthly` of the ADD_ON product `Staging`, bought into the original
 * instance's bundle, available on the plans with `staging`.
 */
export const STAGING_ADDON = { plan: 'staging-monthly', product: 'Staging', price: { amount: 4, currency: 'USD', period: 'month' }, trial: { days: 14 } } as const;

/** Plans on sale: the test plan only when TEST_PLANS is on. */
export function availablePlans(testPlans: boolean): Plan[] {
  return PLANS.filter((p) => testPlans || !p.testOnly);
}

export function findPlan(id: string, testPlans: boolean): Plan | undefined {
  return availablePlans(testPlans).find((p) => p.id === id);
}

/**
 * Odoo versions on sale (the ODOO_VERSIONS setting, each one the Odoo
 * contract knows): the plans API lists exactly these and create accepts
 * exactly these, so the portal offers what provisioning accepts.
 */
export function odooVersions(): string[] {
  return config().ODOO_VERSIONS;
}
