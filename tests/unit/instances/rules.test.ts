/** The pure rules of the instance service: subdomains, names, the action table, sealing. */
import { describe, expect, it } from 'vitest';
import { instanceDbNames, RESERVED_SUBDOMAINS, shortId, subdomainProblem } from '@saasodoo/platform/instances/names';
import { ACTION_STATUS, allowedActions, STATUSES } from '@saasodoo/platform/instances/states';
import { PROVISION_STEPS, isProvisionStep } from '@saasodoo/platform/instances/provisioning';
import { safeReason } from '@saasodoo/platform/instances/progress';

describe('subdomains (SPEC 6)', () => {
  it('accepts 3 to 50 of [a-z0-9-] without a leading or trailing hyphen', () => {
    for (const ok of ['abc', 'my-shop', 'a1b', '123', 'a'.repeat(50), 'a-b-c']) expect(subdomainProblem(ok), ok).toBeUndefined();
  });
  it('rejects the rest, naming why', () => {
    expect(subdomainProblem('ab')).toMatch(/3 to 50/);
    expect(subdomainProblem('a'.repeat(51))).toMatch(/3 to 50/);
    expect(subdomainProblem('My-shop')).toMatch(/lowercase/);
    expect(subdomainProblem('my_shop')).toMatch(/lowercase/);
    expect(subdomainProblem('my.shop')).toMatch(/lowercase/);
    expect(subdomainProblem('-shop')).toMatch(/hyphen/);
    expect(subdomainProblem('shop-')).toMatch(/hyphen/);
    for (const r of ['www', 'api', 'admin', 'app', 'auth', 'billing', 'mail', 'static', 'status']) {
      expect(RESERVED_SUBDOMAINS.has(r)).toBe(true);
      expect(subdomainProblem(r)).toBe('is reserved');
    }
  });
});

describe('database names', () => {
  it('odoo_{instance_short} and odoo_{customer_short}_{instance_short}, valid identifiers', () => {
    const n = instanceDbNames('0a1b2c3d-4e5f-4789-8abc-def012345678', 'ffeeddcc-bbaa-4999-8888-777766665555');
    expect(n.role.endsWith('odoo_0a1b2c3d4e5f')).toBe(true);
    expect(n.database.endsWith('odoo_ffeeddcc_0a1b2c3d4e5f')).toBe(true);
    expect(n.database.length).toBeLessThanOrEqual(63);
    expect(shortId('AB-cd', 3)).toBe('abc');
  });
});

describe("SPEC 5's action table", () => {
  it('allows exactly the table, retry for admins in error only', () => {
    const table: Record<string, string[]> = {
      running: ['stop', 'restart', 'backup', 'delete'],
      stopped: ['start', 'backup', 'restore', 'delete'],
      error: ['start', 'restore', 'delete'],
      suspended: ['delete'],
      pending_payment: ['delete'],
    };
    for (const s of STATUSES) {
      expect(allowedActions(s, false), s).toEqual(table[s] ?? []);
      expect(allowedActions(s, true), s).toEqual(s === 'error' ? [...table.error, 'retry'] : (table[s] ?? []));
    }
  });
  it('each accepted action has a working status', () => {
    expect(ACTION_STATUS).toEqual({ start: 'starting', stop: 'stopping', restart: 'restarting', backup: 'backing_up', restore: 'restoring', retry: 'provisioning' });
  });
});

describe('provisioning steps (SPEC 6)', () => {
  it("nine steps in order: Odoo's init and configure between storage and the runtime", () => {
    expect(PROVISION_STEPS).toEqual(['claim', 'database', 'storage', 'quota', 'odoo_init', 'odoo_configure', 'runtime', 'wait_ready', 'ready']);
    expect(isProvisionStep('quota')).toBe(true);
    expect(isProvisionStep('start')).toBe(false);
    expect(isProvisionStep(null)).toBe(false);
  });
  it('failure reasons carry no secrets', () => {
    expect(safeReason(new Error(`syntax error near PASSWORD 'hunter2hunter2'`))).not.toContain('hunter2');
    expect(safeReason(new Error('connect postgres://odoo_x:s3cretpw@db:5432/x failed'))).not.toContain('s3cretpw');
    expect(safeReason(new Error('x'.repeat(1000))).length).toBeLessThanOrEqual(300);
  });
});
