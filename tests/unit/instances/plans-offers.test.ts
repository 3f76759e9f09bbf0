/** Plans as customers see them (web/src/lib/plans.ts): one card per plan, the catalogue id chosen from the trial box. */
import { describe, expect, it } from 'vitest';
import { planFor, planName, planOffers, resourceWords } from '@saasodoo/web/lib/plans';
import { PLANS } from '@saasodoo/platform/plans';

const onSale = PLANS.filter((p) => !p.testOnly).map((p) => ({ ...p }));

describe('plan offers', () => {
  it('shows one Basic card for basic-immediate and basic-monthly, with the trial it offers', () => {
    const offers = planOffers(onSale);
    expect(offers.map((o) => o.name)).toEqual(['Basic', 'Standard', 'Premium']);
    const basic = offers[0];
    expect(basic).toMatchObject({ key: 'basic', withTrial: 'basic-monthly', withoutTrial: 'basic-immediate', trialDays: 14 });
    expect(planFor(basic, true)).toEqual({ plan: 'basic-monthly', trial: true });
    expect(planFor(basic, false)).toEqual({ plan: 'basic-immediate', trial: false });
    expect(planFor(offers[1], false)).toEqual({ plan: 'standard-monthly', trial: false });
  });

  it('offers no trial once the customer had one (the plans API leaves trial fields out)', () => {
    const offers = planOffers(onSale.map((p) => ({ ...p, trial: undefined })));
    expect(offers.every((o) => o.trialDays === undefined)).toBe(true);
    expect(planFor(offers[0], true)).toEqual({ plan: 'basic-immediate', trial: false });
  });

  it('names plans and resources in customer words', () => {
    expect(planName(onSale, 'standard-monthly')).toBe('Standard');
    expect(resourceWords({ cpu: 1, memoryMiB: 2048, storageGiB: 10 })).toBe('1 CPU core · 2 GB memory · 10 GB storage');
  });
});
