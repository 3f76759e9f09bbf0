/**
 * What the portal reads beyond the status, with the real local runtime:
 * `storage {usedBytes, limitBytes}` on GET /api/instances?id= (measured at
 * provisioning, refreshed by health-probe every STORAGE_USAGE_MINUTES and by
 * quota-set, instance.quota_exceeded once per crossing); `instance.progress`
 * steps for backup and restore, kept on the row like provisioning's; and a
 * multi-MiB backup streamed by backup-download, byte-identical to its manifest.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { config } from '@saasodoo/platform/config';
import { db } from '@saasodoo/platform/db/index';
import { runtime } from '@saasodoo/platform/runtime/index';
import { call, deliver, deliverQueued, downloadBackup, harnessWithInstance, queued, row, until } from './harness.ts';

const MiB = 1024 * 1024;
const GiB = 1024 ** 3;

const h = harnessWithInstance();
const { tick, eventsOf } = h;
const storage = async () => (await call(h.fn.instances, h.alice.accessToken, { query: { id: h.id } })).body.storage;
const filestore = () => path.join(config().dataDir, 'instances', h.id, 'filestore');
/** Makes the instance due for the next sweep's measurement (as if STORAGE_USAGE_MINUTES had passed). */
const makeDue = () => db('instance').none(`UPDATE instances SET storage_checked_at = now() - interval '1 day' WHERE id = $1`, [h.id]);

describe('storage usage in the API', () => {
  it('is measured at provisioning: usedBytes against the plan quota', async () => {
    const s = await storage();
    expect(s.limitBytes).toBe(10 * GiB); // basic-monthly
    expect(typeof s.usedBytes).toBe('number');
    expect(s.measuredAt).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/);
  });

  it('health-probe refreshes it on its tick once it is due, not on every tick', async () => {
    const before = (await storage()).usedBytes;
    fs.writeFileSync(path.join(filestore(), 'big.bin'), randomBytes(3 * MiB));
    await tick(); // measured at provisioning a moment ago: not due yet
    expect((await storage()).usedBytes).toBe(before);
    await makeDue();
    expect((await tick()).status).toBe(204);
    expect((await storage()).usedBytes).toBeGreaterThanOrEqual(before + 3 * MiB);
  });

  it('over the quota → instance.quota_exceeded once per crossing, not on every measurement', async () => {
    const rt = await runtime();
    await rt.setQuota(h.id, MiB);
    await makeDue();
    await tick();
    expect(await storage()).toMatchObject({ limitBytes: MiB });
    await until('quota_exceeded', () => eventsOf('instance.quota_exceeded').length === 1);
    expect(eventsOf('instance.quota_exceeded')[0].data).toMatchObject({ customerId: h.alice.userId, limitBytes: MiB });
    await makeDue();
    await tick();
    expect((await row(h.id)).storage_exceeded).toBe(true);
    expect(eventsOf('instance.quota_exceeded')).toHaveLength(1); // still over: no second report

    await rt.setQuota(h.id, 10 * GiB);
    await makeDue();
    await tick();
    expect((await row(h.id)).storage_exceeded).toBe(false);
    await rt.setQuota(h.id, MiB);
    await makeDue();
    await tick();
    await until('second crossing reported', () => eventsOf('instance.quota_exceeded').length === 2);
  });

  it('quota-set applies the plan quota and refreshes the figure at once', async () => {
    const r = await deliver(h.fn.quotaSet, 'com.saasodoo.instance.quota', { instanceId: h.id, customerId: h.alice.userId, plan: 'standard-monthly' });
    expect(r.status).toBe(204);
    const s = await storage();
    expect(s.limitBytes).toBe(20 * GiB);
    expect(s.usedBytes).toBeGreaterThanOrEqual(3 * MiB);
    expect((await row(h.id)).storage_exceeded).toBe(false);
  });
});

describe('progress of backup and restore', () => {
  let backupId: string;
  const progress = (operation: string) =>
    eventsOf('instance.progress')
      .filter((e) => e.data.operation === operation)
      .map((e) => `${e.data.index}/${e.data.total} ${e.data.step}`);

  it('a backup reports its steps as instance.progress and keeps the last on the row', async () => {
    // Incompressible data: the backup is several MiB (used by the download test below).
    fs.writeFileSync(path.join(filestore(), 'random.bin'), randomBytes(6 * MiB));
    expect((await call(h.fn.instanceAction, h.alice.accessToken, { body: { id: h.id, action: 'backup' } })).body.status).toBe('backing_up');
    backupId = (await queued(h.id, 'instance.backup')).data.backupId;
    await deliverQueued(h.fn.instanceOps, h.id, 'instance.backup');
    expect((await row(h.id)).status).toBe('running');
    await until('backup progress', () => progress('backup').length === 3);
    expect(progress('backup')).toEqual(['1/3 database', '2/3 filestore', '3/3 manifest']);
    const got = (await call(h.fn.instances, h.alice.accessToken, { query: { id: h.id } })).body;
    expect(got.progress).toMatchObject({ operation: 'backup', step: 'manifest', index: 3, total: 3 });
    expect(got.backups.find((b: any) => b.id === backupId)).toMatchObject({ status: 'completed' });
  });

  it('a restore reports its steps too', async () => {
    await call(h.fn.instanceAction, h.alice.accessToken, { body: { id: h.id, action: 'stop' } });
    await deliverQueued(h.fn.instanceOps, h.id, 'instance.stop');
    expect((await call(h.fn.instanceAction, h.alice.accessToken, { body: { id: h.id, action: 'restore', backupId } })).body.status).toBe('restoring');
    await deliverQueued(h.fn.instanceOps, h.id, 'instance.restore');
    expect((await row(h.id)).status).toBe('stopped');
    await until('restore progress', () => progress('restore').length === 6);
    expect(progress('restore')).toEqual(['1/6 verify', '2/6 stop', '3/6 safety_backup', '4/6 database', '5/6 filestore', '6/6 start']);
    expect((await row(h.id)).progress).toMatchObject({ operation: 'restore', step: 'start', index: 6, total: 6 });
  });

  it('a multi-MiB backup downloads streamed, byte-identical to the sha256 of its manifest', async () => {
    const b = await db('instance').one(`SELECT manifest, size_bytes FROM backups WHERE id = $1`, [backupId]);
    expect(b.size_bytes).toBeGreaterThan(5 * MiB);
    const { res } = await downloadBackup(h, h.alice.accessToken, h.id, backupId);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-tar');
    expect(res.headers.get('content-length')).toBeNull(); // streamed (chunked), not buffered into one body

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'backup-dl-'));
    try {
      // Saved as it arrives (tar reading stdin may stop at the end-of-archive blocks, before the padding).
      const archive = path.join(dir, 'download.tar');
      await pipeline(Readable.fromWeb(res.body as any), fs.createWriteStream(archive));
      await promisify(execFile)('tar', ['-x', '-f', archive, '-C', dir]);
      const sha = (f: string) =>
        createHash('sha256')
          .update(fs.readFileSync(path.join(dir, f)))
          .digest('hex');
      const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
      expect(manifest).toEqual(b.manifest);
      for (const part of [manifest.parts.database, manifest.parts.filestore]) {
        expect(fs.statSync(path.join(dir, part.file)).size).toBe(part.bytes);
        expect(sha(part.file)).toBe(part.sha256);
      }
      expect(manifest.parts.filestore.bytes).toBeGreaterThan(5 * MiB);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
