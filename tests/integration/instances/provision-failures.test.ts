/**
 * A failure injected at each provisioning step (PROVISION_FAIL_AT_STEP, read
 * only under NODE_ENV=test) parks the instance in `error` with that step and
 * sends `instance.failed`; nothing retries by itself; an admin retry resumes
 * from the failed step and ends `running`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resetConfig } from '@saasodoo/platform/config';
import { PROVISION_STEPS } from '@saasodoo/platform/instances/provisioning';
import { createTestUser, type TestUser } from '../../helpers/auth.ts';
import { call, deliver, deliverQueued, row, startHarness, until, type Harness } from './harness.ts';

let h: Harness;
let alice: TestUser;
let admin: TestUser;

beforeAll(async () => {
  h = await startHarness();
  [alice, admin] = await Promise.all([createTestUser(), createTestUser({ role: 'admin' })]);
});
afterAll(async () => {
  delete process.env.PROVISION_FAIL_AT_STEP;
  resetConfig();
  await h?.stop();
});

function failAt(step: string | undefined) {
  if (step) process.env.PROVISION_FAIL_AT_STEP = step;
  else delete process.env.PROVISION_FAIL_AT_STEP;
  resetConfig();
}

describe('provisioning failures', () => {
  for (const step of PROVISION_STEPS.filter((s) => s !== 'claim')) {
    it(`fails at ${step} → error with that step; admin retry → running`, async () => {
      const created = await call(h.fn.instances, alice.accessToken, {
        body: { name: `Fail ${step}`, subdomain: `fail-${step.replace('_', '-')}-${Date.now().toString(36)}`, plan: 'basic-monthly', odooVersion: '18', trial: true },
      });
      const id = created.body.id;
      failAt(step);
      const p = await deliver(h.fn.provision, 'com.saasodoo.instance.provision', { instanceId: id, customerId: alice.userId });
      expect(p.status).toBe(204);
      const r = await row(id);
      expect(r.status).toBe('error');
      expect(r.error_step).toBe(step);
      expect(r.error_reason).toContain(`injected failure at step ${step}`);
      const got = await call(h.fn.instances, alice.accessToken, { query: { id } });
      expect(got.body.error).toEqual({ step, reason: r.error_reason });
      await until('instance.failed', () => h.events.some((e) => e.type === 'com.saasodoo.instance.failed' && e.subject === id && e.data.step === step));

      // The same command again does not retry by itself.
      failAt(undefined);
      await deliver(h.fn.provision, 'com.saasodoo.instance.provision', { instanceId: id, customerId: alice.userId });
      expect((await row(id)).status).toBe('error');

      // Customers cannot retry; admins can, from the failed step.
      expect((await call(h.fn.instanceAction, alice.accessToken, { body: { id, action: 'retry' } })).status).toBe(403);
      const retry = await call(h.fn.instanceAction, admin.accessToken, { body: { id, action: 'retry' } });
      expect(retry.body).toEqual({ id, status: 'provisioning' });
      const before = h.events.length;
      await deliverQueued(h.fn.provision, id, 'instance.provision');
      const done = await row(id);
      expect(done.status).toBe('running');
      expect(done.error_step).toBeNull();
      await until('ready after the retry', () => h.events.slice(before).some((e) => e.type === 'com.saasodoo.instance.ready' && e.subject === id));
      const steps = h.events
        .slice(before)
        .filter((e) => e.type === 'com.saasodoo.instance.progress' && e.subject === id)
        .map((e) => e.data.step);
      // Resumed from the failed step: the steps before it did not run again.
      expect(steps.filter((s) => s !== 'claim')).toEqual(PROVISION_STEPS.slice(PROVISION_STEPS.indexOf(step)));
      const hist = (await call(h.fn.instances, admin.accessToken, { query: { id } })).body.history;
      expect(hist.map((x: any) => x.to)).toEqual(['pending_payment', 'provisioning', 'error', 'provisioning', 'running']);
      expect(hist[3].actor).toBe(`admin:${admin.userId}`);
    });
  }
});
