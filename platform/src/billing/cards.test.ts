/** What the billing page shows of a card and of unpaid invoices, from Kill Bill's records (cards.ts). */
import { describe, expect, it } from 'vitest';
import { cardOf, unpaidOf } from './cards.ts';
import { STRIPE_PLUGIN, type Invoice, type PaymentMethod } from './killbill.ts';

const stripeMethod = (props: Record<string, string>): PaymentMethod =>
  ({ pluginName: STRIPE_PLUGIN, pluginInfo: { properties: Object.entries(props).map(([key, value]) => ({ key, value })) } }) as PaymentMethod;

describe('cardOf', () => {
  it("reads brand, last 4 digits and expiry from the Stripe plugin's properties", () => {
    expect(cardOf(stripeMethod({ card_brand: 'visa', card_last4: '4242', card_exp_month: '12', card_exp_year: '2030' }))).toEqual({
      brand: 'visa',
      last4: '4242',
      expMonth: 12,
      expYear: 2030,
    });
  });

  it('no card: no method, another plugin (the test plugin), or a Stripe method without card digits', () => {
    expect(cardOf(undefined)).toBeNull();
    expect(cardOf({ pluginName: '__EXTERNAL_PAYMENT__' } as PaymentMethod)).toBeNull();
    expect(cardOf(stripeMethod({ sessionId: 'cs_123' }))).toBeNull();
  });

  it('a card whose brand Stripe did not say is a "card"', () => {
    expect(cardOf(stripeMethod({ card_last4: '0005' }))?.brand).toBe('card');
  });
});

describe('unpaidOf', () => {
  it('lists only invoices with a balance, in customer terms (number, amount, balance, currency)', () => {
    const invoices = [
      { invoiceNumber: '1', amount: 5, balance: 0, currency: 'USD' },
      { invoiceNumber: '2', amount: 8, balance: 8, currency: 'EUR' },
      { invoiceNumber: '3', amount: 10, balance: 4 },
      { invoiceNumber: '4', amount: 10 },
    ] as Invoice[];
    expect(unpaidOf(invoices)).toEqual([
      { number: '2', amount: 8, balance: 8, currency: 'EUR' },
      { number: '3', amount: 10, balance: 4, currency: 'USD' },
    ]);
  });

  it('a credit (negative balance) is not owed', () => {
    expect(unpaidOf([{ invoiceNumber: '5', amount: 5, balance: -5 }] as Invoice[])).toEqual([]);
  });
});
