/**
 * The Kubernetes driver's Jobs run for real: the init, backup, restore and
 * usage Jobs objects.ts generates are run as Docker containers with the
 * env, mounts, user and fsGroup their pods would get (tests/helpers/
 * kube-job-docker.ts), against the real PostgreSQL, with images built here
 * from this machine's tools and the stand-in; what they leave is checked
 * the way the driver checks it (finalizeJobBackup, readJobUsage, the
 * provisioning's odooDatabaseState).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropNamespace } from '@saasodoo/platform/db/migrate';
import { odooDatabaseState } from '@saasodoo/platform/instances/odoo';
import { odooPasswordHash } from '@saasodoo/platform/odoo/contract';
import { BackupStore } from '@saasodoo/platform/runtime/backup-store';
import { finalizeJobBackup, readJobUsage } from '@saasodoo/platform/runtime/kubernetes/driver';
import { dbSecret, initJob, instanceName, job, odooConfSecret, type KubeSettings, type OwnerRef } from '@saasodoo/platform/runtime/kubernetes/objects';
import type { InstanceSpec } from '@saasodoo/platform/runtime/types';
import { dockerAvailable, testOdooImage, testPgToolsImage } from '../../helpers/docker-image.ts';
import { createInstanceDb, instanceQuery } from '../../helpers/instance-db.ts';
import { runJobInDocker, type JobWorld } from '../../helpers/kube-job-docker.ts';

const available = await dockerAvailable();
if (!available) console.warn('Kubernetes Job tests skipped: no Docker engine answers on /var/run/docker.sock (.ci/run starts dockerd)');

const settings: KubeSettings = {
  namespace: 'saasodoo-instances',
  baseDomain: 'example.test',
  storageClass: 'cephfs',
  odooImage: 'odoo:{version}',
  backupImage: 'postgres:16',
  backupPvc: 'saasodoo-backups',
  clusterIssuer: 'letsencrypt',
};
const owner: OwnerRef = { apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: '00000000-0000-0000-0000-000000000000' };

describe.skipIf(!available)("the Kubernetes driver's Jobs, run in containers", () => {
  let spec: InstanceSpec;
  let world: JobWorld;
  let store: BackupStore;
  let tmp: string;
  const objName = (kind: string) => `${instanceName('x')}-${kind}-${randomBytes(3).toString('hex')}`;

  beforeAll(async () => {
    const short = randomBytes(4).toString('hex');
    spec = {
      id: `00000000-0000-4000-8000-${randomBytes(6).toString('hex')}`,
      customerId: 'c1',
      name: 'Jobs',
      subdomain: `jobs-${short}`,
      odooVersion: '17',
      plan: 'basic-monthly',
      resources: { cpu: 1, memoryMiB: 512, storageGiB: 1 },
      database: await createInstanceDb(short),
      masterPasswordHash: await odooPasswordHash('x', { rounds: 1000 }),
    };
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'saasodoo-kjobs-'));
    const data = path.join(tmp, 'instance');
    const backups = path.join(tmp, 'backups');
    fs.mkdirSync(data);
    fs.mkdirSync(backups);
    store = new BackupStore(backups);
    const [odoo, tools] = await Promise.all([testOdooImage(), testPgToolsImage()]);
    const secret = (o: any) => o.stringData as Record<string, string>;
    world = {
      pvcs: { [`${instanceName(spec.id)}-data`]: data, [settings.backupPvc]: backups },
      secrets: { [`${instanceName(spec.id)}-db`]: secret(dbSecret(spec, settings, owner)), [`${instanceName(spec.id)}-odoo`]: secret(odooConfSecret(spec, settings, owner)) },
      images: { 'odoo:17': odoo.replace('{version}', '17'), [settings.backupImage]: tools },
    };
  });

  afterAll(async () => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    await dropNamespace();
  });

  it("init: Odoo's init as the Job runs it leaves the database the way provisioning checks it", async () => {
    expect(await odooDatabaseState(spec.database)).toBe('missing');
    const r = await runJobInDocker(initJob(spec, settings, owner, objName('init')), world);
    expect(r, r.log).toMatchObject({ exitCode: 0 });
    expect(await odooDatabaseState(spec.database)).toBe('installed');
    // It wrote the filestore on the instance volume as the Job's user.
    expect(fs.statSync(path.join(world.pvcs[`${instanceName(spec.id)}-data`], 'filestore', spec.database.name)).uid).toBe(101);
  });

  it("template-keep archives the init's filestore into the backup volume; template-seed unpacks it under another instance's database name", async () => {
    const data = world.pvcs[`${instanceName(spec.id)}-data`];
    const initFiles = fs
      .readdirSync(path.join(data, 'filestore', spec.database.name), { recursive: true })
      .map(String)
      .sort();
    expect(initFiles.length).toBeGreaterThan(0);
    const k = await runJobInDocker(job(spec, settings, owner, 'template-keep', spec.database.name, objName('template-keep')), world);
    expect(k, k.log).toMatchObject({ exitCode: 0 });
    expect(fs.existsSync(store.templateArchive(spec.database.name))).toBe(true);

    const copy: InstanceSpec = { ...spec, id: `00000000-0000-4000-8000-${randomBytes(6).toString('hex')}`, database: { ...spec.database, name: `${spec.database.name}_copy` } };
    const copyData = path.join(tmp, 'copy');
    fs.mkdirSync(copyData);
    world.pvcs[`${instanceName(copy.id)}-data`] = copyData;
    world.secrets[`${instanceName(copy.id)}-db`] = (dbSecret(copy, settings, owner) as any).stringData;
    const s = await runJobInDocker(job(copy, settings, owner, 'template-seed', spec.database.name, objName('template-seed')), world);
    expect(s, s.log).toMatchObject({ exitCode: 0 });
    expect(
      fs
        .readdirSync(path.join(copyData, 'filestore', copy.database.name), { recursive: true })
        .map(String)
        .sort(),
    ).toEqual(initFiles);
    expect(fs.existsSync(path.join(copyData, '.seed'))).toBe(false);
  });

  it('backup → change data → restore, each as its Job; the backup published as the driver publishes it', async () => {
    const data = world.pvcs[`${instanceName(spec.id)}-data`];
    await instanceQuery(spec.database, "CREATE TABLE notes (v text); INSERT INTO notes VALUES ('before')");
    fs.writeFileSync(path.join(data, 'filestore', 'doc.txt'), 'before');
    await store.begin(spec.id, 'b1');
    const b = await runJobInDocker(job(spec, settings, owner, 'backup', 'b1', objName('backup')), world);
    expect(b, b.log).toMatchObject({ exitCode: 0 });
    const m = await finalizeJobBackup(store, spec, 'b1', 'manual');
    expect(m.parts.database.bytes).toBeGreaterThan(0);
    expect(m.parts.filestore.bytes).toBeGreaterThan(0);
    expect((await store.verify(spec.id, 'b1')).backupId).toBe('b1');

    await instanceQuery(spec.database, "UPDATE notes SET v = 'after'");
    fs.writeFileSync(path.join(data, 'filestore', 'doc.txt'), 'after');
    const r = await runJobInDocker(job(spec, settings, owner, 'restore', 'b1', objName('restore')), world);
    expect(r, r.log).toMatchObject({ exitCode: 0 });
    expect(await instanceQuery(spec.database, 'SELECT v FROM notes')).toEqual([{ v: 'before' }]);
    expect(fs.readFileSync(path.join(data, 'filestore', 'doc.txt'), 'utf8')).toBe('before');
  });

  it("a junk dump is refused: by pg_restore --list in the Job, and by the driver's check after it", async () => {
    // The Job's own check: a pg_dump that writes 15 bytes of junk fails the Job.
    const junkJob = job(spec, settings, owner, 'backup', 'junk', objName('backup')) as any;
    const c = junkJob.spec.template.spec.containers[0];
    c.command = ['sh', '-c', c.command[2].replace(/pg_dump [^\n]*/, 'printf "not a dump, no." > "$d/db.dump"')];
    await store.begin(spec.id, 'junk');
    const r = await runJobInDocker(junkJob, world);
    expect(r.exitCode).not.toBe(0);
    expect(r.log).toContain('pg_restore: error');
    await store.abort(spec.id, 'junk');
    // The driver's check: a Job that wrote junk and exited 0 publishes nothing.
    const partial = await store.begin(spec.id, 'junk2');
    fs.writeFileSync(path.join(partial, 'db.dump'), 'not a dump, no.');
    fs.writeFileSync(path.join(partial, 'filestore.tar.gz'), 'x');
    await expect(finalizeJobBackup(store, spec, 'junk2', 'manual')).rejects.toMatchObject({ name: 'BackupError', part: 'database' });
    expect((await store.list(spec.id)).map((x) => x.backupId)).toEqual(['b1']);
  });

  it('usage: the Job writes du of the volume where the driver reads it', async () => {
    const data = world.pvcs[`${instanceName(spec.id)}-data`];
    fs.writeFileSync(path.join(data, 'filestore', 'blob.bin'), randomBytes(256 * 1024));
    await expect(readJobUsage(store, spec.id)).rejects.toMatchObject({ code: 'failed' }); // no figure yet
    const r = await runJobInDocker(job(spec, settings, owner, 'usage', 'usage', objName('usage')), world);
    expect(r, r.log).toMatchObject({ exitCode: 0 });
    expect(await readJobUsage(store, spec.id)).toBeGreaterThan(256 * 1024);
  });
});
