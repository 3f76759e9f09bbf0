/**
 * instance-ops beyond the customer actions, health-probe and quota-set,
 * with the real local runtime: a killed stand-in → unhealthy after 3 probes
 * → healthy (recovered) after a restart; drift recorded once; suspend and
 * resume from lifecycle; billing status changes; the plan's quota applied;
 * daily backups for running paid instances.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { config } from '@saasodoo/platform/config';
import { log } from '@saasodoo/platform/log';
import { reportUsage } from '@saasodoo/platform/instances/quota';
import { db } from '@saasodoo/platform/db/index';
import { probeOne } from '@saasodoo/platform/runtime/health';
import { runtime } from '@saasodoo/platform/runtime/index';
import type { LocalRuntimeStatus } from '@saasodoo/platform/runtime/local/driver';
import { createTestUser } from '../../helpers/auth.ts';
import { call, deliver, deliverQueued, harnessWithInstance, row, until } from './harness.ts';

const h = harnessWithInstance();
const { tick, eventsOf } = h;

describe('health-probe', () => {
  it('healthy on success', async () => {
    expect((await tick()).status).toBe(204);
    expect((await row(h.id)).health).toBe('healthy');
  });

  it('a killed stand-in is unhealthy after 3 failed probes, healthy again after a restart', async () => {
    const st = (await (await runtime()).status(h.id)) as LocalRuntimeStatus;
    process.kill(st.pid!, 'SIGKILL');
    await until('process dead', async () => (await (await runtime()).status(h.id)).state === 'failed');
    await tick();
    await tick();
    expect(await row(h.id)).toMatchObject({ health: 'healthy', health_failures: 2 });
    await tick();
    expect(await row(h.id)).toMatchObject({ health: 'unhealthy', health_failures: 3 });
    await until('instance.unhealthy', () => eventsOf('instance.unhealthy').length === 1);
    expect(eventsOf('instance.unhealthy')[0].data.failures).toBe(3);
    await tick();
    expect(eventsOf('instance.unhealthy')).toHaveLength(1); // reported on the change only

    await call(h.fn.instanceAction, h.alice.accessToken, { body: { id: h.id, action: 'restart' } });
    await deliverQueued(h.fn.instanceOps, h.id, 'instance.restart');
    expect((await row(h.id)).status).toBe('running');
    await tick();
    expect(await row(h.id)).toMatchObject({ health: 'healthy', health_failures: 0 });
    await until('instance.recovered', () => eventsOf('instance.recovered').length === 1);
  });

  it("drift: runtime stopped behind the platform's back is recorded once and reported", async () => {
    await (await runtime()).scale(h.id, 0);
    await tick();
    await tick();
    const hist = (await call(h.fn.instances, h.alice.accessToken, { query: { id: h.id } })).body.history;
    expect(hist.filter((x: any) => /drift/.test(x.reason ?? ''))).toHaveLength(1);
    expect(hist.at(-1)).toMatchObject({ from: 'running', to: 'running', actor: 'health-probe', eventType: 'com.saasodoo.health.tick' });
    await until('drift event', () => eventsOf('instance.drift_detected').length === 1);
    expect(eventsOf('instance.drift_detected')[0].data.runtimeState).toBe('stopped');
    await (await runtime()).scale(h.id, 1);
    await (await runtime()).waitReady(h.id, 20_000);
    await tick();
    expect((await row(h.id)).health_failures).toBe(0);
  });
});

describe('billing-driven operations', () => {
  it('billing.status_changed updates billingStatus and the history', async () => {
    const r = await deliver(h.fn.instanceOps, 'com.saasodoo.billing.status_changed', { customerId: h.alice.userId, instanceId: h.id, status: 'paid', reason: 'invoice paid' });
    expect(r.status).toBe(204);
    expect((await row(h.id)).billing_status).toBe('paid');
  });

  it('suspend scales to zero with the suspended page, resume brings it back', async () => {
    const s = await deliver(h.fn.instanceOps, 'com.saasodoo.instance.suspend', { instanceId: h.id, customerId: h.alice.userId, reason: 'overdue: blocked' });
    expect(s.status).toBe(204);
    expect((await row(h.id)).status).toBe('suspended');
    expect((await (await runtime()).status(h.id)).state).toBe('suspended');
    const page = await h.router((await row(h.id)).subdomain);
    expect(page && 'page' in page ? page.page.html : '').toMatch(/suspended/i);
    // Customers can only delete a suspended instance.
    expect((await call(h.fn.instanceAction, h.alice.accessToken, { body: { id: h.id, action: 'start' } })).status).toBe(409);
    const r = await deliver(h.fn.instanceOps, 'com.saasodoo.instance.resume', { instanceId: h.id, customerId: h.alice.userId });
    expect(r.status).toBe(204);
    expect((await row(h.id)).status).toBe('running');
    const st = await (await runtime()).status(h.id);
    expect((await probeOne(st.healthUrl!)).ok).toBe(true);
  });

  it('a suspend delivered after the newer resume (a broker retry) is ignored; a newer suspend applies', async () => {
    const ids = { instanceId: h.id, customerId: h.alice.userId };
    const resumeFirst = await deliver(h.fn.instanceOps, 'com.saasodoo.instance.resume', { ...ids, seq: 11 });
    expect(resumeFirst.status).toBe(204);
    expect((await row(h.id)).suspension_seq).toBe(11);
    const late = await deliver(h.fn.instanceOps, 'com.saasodoo.instance.suspend', { ...ids, reason: 'overdue', seq: 10 });
    expect(late.status).toBe(204);
    expect((await row(h.id)).status).toBe('running');
    const newer = await deliver(h.fn.instanceOps, 'com.saasodoo.instance.suspend', { ...ids, reason: 'overdue', seq: 12 });
    expect(newer.status).toBe(204);
    expect((await row(h.id)).status).toBe('suspended');
    const lateResume = await deliver(h.fn.instanceOps, 'com.saasodoo.instance.resume', { ...ids, seq: 11 });
    expect(lateResume.status).toBe(204);
    expect((await row(h.id)).status).toBe('suspended');
    expect((await deliver(h.fn.instanceOps, 'com.saasodoo.instance.resume', { ...ids, seq: 13 })).status).toBe(204);
    expect((await row(h.id)).status).toBe('running');
  });

  it('a command naming another customer is refused (400, never retried)', async () => {
    const bob = await createTestUser();
    const r = await deliver(h.fn.instanceOps, 'com.saasodoo.instance.stop', { instanceId: h.id, customerId: bob.userId });
    expect(r.status).toBe(400);
    expect((await row(h.id)).status).toBe('running');
  });

  it('quota-set applies the new plan resources and quota and reports usage', async () => {
    const r = await deliver(h.fn.quotaSet, 'com.saasodoo.instance.quota', { instanceId: h.id, customerId: h.alice.userId, plan: 'standard-monthly' });
    expect(r.status).toBe(204);
    const after = await row(h.id);
    expect(after.plan).toBe('standard-monthly');
    expect(after.resources).toEqual({ cpu: 2, memoryMiB: 4096, storageGiB: 20 });
    expect((await (await runtime()).usage(h.id)).limitBytes).toBe(20 * 1024 ** 3);
    expect((await (await runtime()).status(h.id)).state).toBe('running');
    const bad = await deliver(h.fn.quotaSet, 'com.saasodoo.instance.quota', { instanceId: h.id, customerId: h.alice.userId, plan: 'gold' });
    expect(bad.status).toBe(400);
  });

  it('schedule.daily: one daily backup per running paid instance, once per tick', async () => {
    const tickId = crypto.randomUUID();
    expect((await deliver(h.fn.instanceOps, 'com.saasodoo.schedule.daily', { at: new Date().toISOString() }, tickId)).status).toBe(204);
    expect((await deliver(h.fn.instanceOps, 'com.saasodoo.schedule.daily', { at: new Date().toISOString() }, tickId)).status).toBe(204);
    const pending = await db('instance').manyOrNone(`SELECT * FROM backups WHERE instance_id = $1 AND kind = 'daily'`, [h.id]);
    expect(pending).toHaveLength(1);
    await deliverQueued(h.fn.instanceOps, h.id, 'instance.backup');
    const b = await db('instance').one(`SELECT * FROM backups WHERE id = $1`, [pending[0].id]);
    expect(b.status).toBe('completed');
    expect((await row(h.id)).status).toBe('running'); // a daily backup does not change the status
  });

  it('a backup with a missing part is backup_failed, never a success, and the instance goes back to running', async () => {
    const dir = path.join(config().dataDir, 'instances', h.id, 'filestore');
    fs.renameSync(dir, `${dir}.away`);
    try {
      expect((await call(h.fn.instanceAction, h.alice.accessToken, { body: { id: h.id, action: 'backup' } })).status).toBe(202);
      await deliverQueued(h.fn.instanceOps, h.id, 'instance.backup');
    } finally {
      fs.renameSync(`${dir}.away`, dir);
    }
    const failed = await db('instance').one(`SELECT * FROM backups WHERE instance_id = $1 AND kind = 'manual' ORDER BY created_at DESC LIMIT 1`, [h.id]);
    expect(failed.status).toBe('failed');
    expect(failed.error).toMatch(/filestore/);
    expect((await row(h.id)).status).toBe('running');
    await until('backup_failed', () => eventsOf('instance.backup_failed').some((e) => e.data.backupId === failed.id));
    expect(eventsOf('instance.backup_completed').some((e) => e.data.backupId === failed.id)).toBe(false);
  });

  it('usage over the quota is reported as instance.quota_exceeded', async () => {
    await (await runtime()).setQuota(h.id, 1);
    const usage = await reportUsage({ eventId: crypto.randomUUID(), eventType: 'test', data: {}, log }, h.id, h.alice.userId);
    expect(usage.exceeded).toBe(true);
    await until('quota_exceeded', () => eventsOf('instance.quota_exceeded').length === 1);
    expect(eventsOf('instance.quota_exceeded')[0].data).toMatchObject({ limitBytes: 1 });
    await (await runtime()).setQuota(h.id, 20 * 1024 ** 3);
  });

  it("storage chart samples: one per hour (the hour's last measurement), 30 days kept, only in the owner's detail view", async () => {
    const d = db('instance');
    // Measurements of earlier hours stand in for the days this test cannot wait for.
    await d.none(
      `INSERT INTO storage_samples (instance_id, hour, used_bytes, limit_bytes) VALUES
         ($1, date_trunc('hour', now()) - interval '31 days', 1, 10), ($1, date_trunc('hour', now()) - interval '2 hours', 1000, 10)`,
      [h.id],
    );
    const measure = () => reportUsage({ eventId: crypto.randomUUID(), eventType: 'test', data: {}, log }, h.id, h.alice.userId);
    await measure();
    const used = (await measure()).usedBytes;
    const view = await call(h.fn.instances, h.alice.accessToken, { query: { id: h.id } });
    const samples: { at: string; usedBytes: number; limitBytes: number }[] = view.body.storageHistory;
    expect(samples.map((s) => s.usedBytes)).toEqual([1000, Math.round(used)]); // the 31-day-old one pruned, this hour's kept once
    expect(Date.parse(samples[1].at)).toBe(Math.floor(Date.now() / 3_600_000) * 3_600_000);
    const bob = await createTestUser();
    expect((await call(h.fn.instances, bob.accessToken, { query: { id: h.id } })).status).toBe(404);
    expect((await call(h.fn.instances, h.alice.accessToken)).body.items[0].storageHistory).toBeUndefined();
  });
});
