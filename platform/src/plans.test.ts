/** The plan table (billing README.md 1): what is on sale, and the test plan kept off sale unless asked for. */
import { describe, expect, it } from 'vitest';
import { availablePlans, findPlan, PLANS } from './plans.ts';

describe('plans', () => {
  it('ids are unique: an id names one plan', () => {
    expect(new Set(PLANS.map((p) => p.id)).size).toBe(PLANS.length);
  });

  it('the test-only plan is on sale only with TEST_PLANS, and only then found by id', () => {
    const test = PLANS.filter((p) => p.testOnly).map((p) => p.id);
    expect(test).toEqual(['basic-test-trial']);
    expect(availablePlans(false).map((p) => p.id)).not.toContain('basic-test-trial');
    expect(availablePlans(true).map((p) => p.id)).toEqual(PLANS.map((p) => p.id));
    expect(findPlan('basic-test-trial', false)).toBeUndefined();
    expect(findPlan('basic-test-trial', true)?.trial).toEqual({ days: 1 });
    expect(findPlan('no-such-plan', true)).toBeUndefined();
  });

  it('Basic is sold with and without a trial at the same price and resources (one card, two catalogue ids)', () => {
    const [now, trial] = [findPlan('basic-immediate', false)!, findPlan('basic-monthly', false)!];
    expect(now.trial).toBeUndefined();
    expect(trial.trial).toEqual({ days: 14 });
    expect([now.price, now.resources, now.customDomains]).toEqual([trial.price, trial.resources, trial.customDomains]);
  });

  it('a dearer plan never gives less: resources and custom domains grow with the price', () => {
    const onSale = availablePlans(false).sort((a, b) => a.price.amount - b.price.amount);
    for (let i = 1; i < onSale.length; i++) {
      const [a, b] = [onSale[i - 1]!, onSale[i]!];
      for (const k of ['cpu', 'memoryMiB', 'storageGiB'] as const) expect(b.resources[k], `${b.id} ${k}`).toBeGreaterThanOrEqual(a.resources[k]);
      expect(b.customDomains).toBeGreaterThanOrEqual(a.customDomains);
    }
  });
});
