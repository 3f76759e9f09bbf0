/** What the portal says about an instance (web/src/lib/words.ts): customer words, never internal names or ids. */
import { describe, expect, it } from 'vitest';
import { actorWords, billingWords, daysLeft, effectiveHealth, invoiceStatusBadge, reasonWords, statusExplanation, statusWords, stepWords } from '@saasodoo/web/lib/words';

const backupId = '44416fb0-1111-4222-8333-944445555666';
const backups = [{ id: backupId, createdAt: '2026-12-03T10:00:00Z' }];

describe('portal words', () => {
  it('a trial being set up is "starting trial"; a purchase waiting for payment says so and never mentions a trial', () => {
    expect(statusWords('pending_payment', 'trial')).toBe('starting trial');
    expect(statusWords('pending_payment', 'payment_required')).toBe('awaiting payment');
    expect(billingWords('payment_required', false, 'pending_payment')).toBe('awaiting payment');
    expect(billingWords('payment_required', false, 'running')).toBe('invoice open');
    expect(billingWords('payment_required', true, 'running')).toMatch(/trial ended/);
  });

  it('health is "offline" for a suspended, stopped or deleted instance, whatever the last check said', () => {
    for (const s of ['suspended', 'stopped', 'terminated', 'error']) expect(effectiveHealth(s, 'healthy'), s).toBe('offline');
    expect(effectiveHealth('running', 'healthy')).toBe('healthy');
    expect(effectiveHealth('running', 'unhealthy')).toBe('unhealthy');
  });

  it('history says who in words: you, the customer, an operator, billing, the system', () => {
    expect(actorWords('customer:u1', 'u1')).toBe('you');
    expect(actorWords('customer:u1', 'admin1')).toBe('the customer');
    expect(actorWords('admin:a2', 'u1')).toBe('an operator');
    expect(actorWords('lifecycle', 'u1')).toBe('billing');
    expect(actorWords('instance-ops', 'u1')).toBe('the system');
    expect(actorWords('health-probe', 'u1')).toBe('the system');
  });

  it('history reasons are sentences with the backup’s date, never ids or internal names', () => {
    expect(reasonWords({ reason: 'billing trial → overdue: payment_failed' })).toBe('A payment failed.');
    expect(reasonWords({ reason: `restored backup ${backupId}` }, backups)).toBe('Restored the backup of 3 Dec 2026, 10:00 UTC.');
    expect(reasonWords({ reason: `restore of backup ${backupId}` }, [])).toBe('Restoring a backup.');
    expect(reasonWords({ reason: 'manual backup' })).toBe('A backup started.');
    expect(reasonWords({ reason: 'database failed: timeout' })).toBe('The step “database” failed.');
    expect(reasonWords({ reason: 'drift: runtime restarted Odoo, which had stopped outside the platform at 2026-12-07T03:40:00.000Z' })).toBe(
      'Odoo stopped unexpectedly; the system started it again.',
    );
    expect(reasonWords({ reason: `something about ${backupId}` })).toBeUndefined();
    expect(reasonWords({ reason: 'some_internal_code' })).toBeUndefined();
    const all = [
      'billing paid → suspended: suspended',
      'created',
      'overdue',
      'resumed after payment',
      'backup completed',
      'plan basic-monthly → standard-monthly',
      'drift: runtime is stopped while status is running',
      'drift: runtime restarted Odoo, which had stopped outside the platform at 2026-12-07T03:40:00.000Z',
    ].map((reason) => reasonWords({ reason }, backups) ?? '');
    for (const w of all) expect(w).not.toMatch(/[_→]|instance-ops|lifecycle|[0-9a-f]{8}-/);
  });

  it('counts the days left of a trial, rounding up', () => {
    const now = Date.parse('2026-12-01T12:00:00Z');
    expect(daysLeft('2026-12-03T00:00:00Z', now)).toBe(2);
    expect(daysLeft('2026-11-30T00:00:00Z', now)).toBe(0);
    expect(daysLeft(undefined, now)).toBeUndefined();
  });
  it('a database move on a plan change is explained in customer words: status, steps, history; a failed one says the instance stays as it was', () => {
    expect(statusWords('migrating', 'paid')).toBe('moving to a new server');
    expect(statusExplanation('migrating')).toMatch(/If Odoo was running, it is paused meanwhile and comes back by itself; a stopped or suspended instance stays as it was/);
    expect(statusExplanation('running')).toBeUndefined();
    expect(effectiveHealth('migrating', 'healthy')).toBe('not_checked_yet');
    expect(stepWords('move', 'drop_old')).toBe('cleaning up the old server');
    expect(stepWords('move', 'restore')).toBe('copying your data');
    expect(stepWords('provision', 'odoo_init')).toBe('odoo init');
    expect(reasonWords({ reason: 'database moves to its own database server' })).toMatch(/moving to a database server of its own/);
    expect(reasonWords({ reason: 'database moved to a shared database server' })).toMatch(/moved to a shared database server; Odoo runs again/);
    const failed = reasonWords({ reason: 'database move to its own database server failed at verify (still on its previous server): the copy differs in 2 table(s), e.g. public.res_users' });
    expect(failed).toMatch(/stays on its previous server, running as before/);
    expect(failed).not.toMatch(/verify|res_users|public\./);
  });

  it('an invoice is Paid or Unpaid by its status, else by what is still due; other statuses in words', () => {
    expect(invoiceStatusBadge({ status: 'PAID', balance: 0 })).toEqual({ text: 'Paid', tone: 'good' });
    expect(invoiceStatusBadge({ balance: 5 })).toEqual({ text: 'Unpaid', tone: 'warn' });
    expect(invoiceStatusBadge({ balance: 0 })).toEqual({ text: 'Paid', tone: 'good' });
    expect(invoiceStatusBadge({ status: 'VOID' }).text).not.toMatch(/VOID|_/);
  });
});
