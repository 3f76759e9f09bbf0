/**
 * desiredState, the core billing rule (platform/src/billing/README.md): what
 * an instance should be, from Kill Bill's state alone. Pure: no services.
 */
import { describe, expect, it } from 'vitest';
import { desiredState, fallbackKey, type KbState } from './reconcile.ts';

const customerId = '11111111-1111-4111-8111-111111111111';
const instanceId = '22222222-2222-4222-8222-222222222222';
const subscriptionId = '33333333-3333-4333-8333-333333333333';

/** A subscription in its evergreen phase with nothing invoiced, then `patch`. */
function state(patch: Partial<KbState> = {}, sub: Partial<KbState['sub']> = {}): KbState {
  return {
    account: { externalKey: customerId } as KbState['account'],
    sub: { subscriptionId, bundleExternalKey: instanceId, state: 'ACTIVE', phaseType: 'EVERGREEN', planName: 'basic-monthly', ...sub } as KbState['sub'],
    invoices: [],
    payments: [],
    overdue: null,
    ...patch,
  };
}
const invoice = (amount: number, balance: number) => ({ amount, balance, items: [{ subscriptionId }] }) as KbState['invoices'][number];
const payment = (status: string, effectiveDate: string) => ({ transactions: [{ status, effectiveDate }] }) as unknown as KbState['payments'][number];

describe('desiredState', () => {
  it('a trial runs before any payment', () => {
    expect(desiredState(state({}, { phaseType: 'TRIAL' }))).toMatchObject({ customerId, instanceId, provision: true, billingStatus: 'trial', suspended: false, terminated: false });
  });

  it('no trial and nothing paid: payment required, nothing provisioned', () => {
    expect(desiredState(state())).toMatchObject({ provision: false, billingStatus: 'payment_required' });
    expect(desiredState(state({ invoices: [invoice(5, 5)] }))).toMatchObject({ provision: false, billingStatus: 'payment_required' });
  });

  it('a paid invoice of the subscription provisions and reads paid', () => {
    expect(desiredState(state({ invoices: [invoice(5, 0)], payments: [payment('SUCCESS', '2026-01-01')] }))).toMatchObject({ provision: true, billingStatus: 'paid' });
  });

  it('an unpaid invoice after a failed payment is overdue; the instance keeps running until Kill Bill blocks it', () => {
    const s = state({ invoices: [invoice(5, 0), invoice(5, 5)], payments: [payment('SUCCESS', '2026-01-01'), payment('PAYMENT_FAILURE', '2026-02-01')] });
    expect(desiredState(s)).toMatchObject({ provision: true, suspended: false, billingStatus: 'overdue' });
  });

  it("Kill Bill's blocking overdue state suspends", () => {
    const s = state({ invoices: [invoice(5, 0), invoice(5, 5)], overdue: { isDisableEntitlementAndChangesBlocked: true, isClearState: false } as KbState['overdue'] });
    expect(desiredState(s)).toMatchObject({ suspended: true, billingStatus: 'suspended' });
  });

  it('a cancelled or expired subscription is terminated and never provisioned', () => {
    for (const st of ['CANCELLED', 'EXPIRED'] as const) {
      expect(desiredState(state({ invoices: [invoice(5, 0)] }, { state: st }))).toMatchObject({ terminated: true, provision: false });
    }
  });

  it('the plan is the subscription’s current plan', () => {
    expect(desiredState(state({}, { planName: 'standard-monthly' })).plan).toBe('standard-monthly');
  });
});

describe('fallbackKey', () => {
  const n = { eventType: 'SUBSCRIPTION_CREATION', objectId: subscriptionId, metaData: '{}' } as Parameters<typeof fallbackKey>[2];
  it("an overdue account told by another notification uses the failed payment's own key (one mail per failed payment)", () => {
    const s = state({
      invoices: [{ ...invoice(5, 5), invoiceId: 'inv-1', invoiceDate: '2026-01-01' } as KbState['invoices'][number]],
      payments: [{ paymentId: 'pay-1', transactions: [{ status: 'PAYMENT_FAILURE', effectiveDate: '2026-01-01' }] } as unknown as KbState['payments'][number]],
    });
    expect(fallbackKey(s, desiredState(s), n)).toBe('payment_failed:inv-1:pay-1');
  });
  it('a paid subscription uses the paid invoice; any other change a key of the notification', () => {
    const paid = state({ invoices: [{ ...invoice(5, 0), invoiceId: 'inv-2' } as KbState['invoices'][number]], payments: [payment('SUCCESS', '2026-01-01')] });
    expect(fallbackKey(paid, desiredState(paid), n)).toBe('payment_succeeded:inv-2');
    const trial = state({}, { phaseType: 'TRIAL' });
    expect(fallbackKey(trial, desiredState(trial), n)).toBe(`status:${subscriptionId}:trial:SUBSCRIPTION_CREATION:${subscriptionId}:{}`);
  });
});
