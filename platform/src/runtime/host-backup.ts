/**
 * Backup and restore of an instance whose files are on this machine (the
 * local and docker drivers): pg_dump/pg_restore as the instance role and tar
 * of its `filestore` directory, published through the shared BackupStore.
 * One implementation, so both drivers produce the same verified parts.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { BackupStore } from './backup-store.ts';
import { archiveDir, checkDump, dumpDatabase, extractArchive, restoreDatabase, type PgTools } from './pg-tools.ts';
import type { BackupKind, BackupManifest, BackupStep, InstanceSpec, RestoreStep, StepListener } from './types.ts';
import { BackupError, RuntimeError } from './types.ts';

/**
 * Dumps the database (checked with `pg_restore --list`) and archives
 * `{filestoreParent}/filestore`, then lets the store check, hash and publish
 * them. A failure leaves no backup behind and is a BackupError naming the part.
 */
export async function backupOnHost(
  store: BackupStore,
  tools: PgTools,
  spec: InstanceSpec,
  filestoreParent: string,
  backupId: string,
  kind: BackupKind,
  onStep?: StepListener<BackupStep>,
): Promise<BackupManifest> {
  const partial = await store.begin(spec.id, backupId);
  try {
    const dump = path.join(partial, 'db.dump');
    await onStep?.('database');
    try {
      await dumpDatabase(spec.database, dump, tools);
    } catch (err) {
      throw new BackupError((err as Error).message, 'database');
    }
    const size = (await fs.stat(dump).catch(() => undefined))?.size;
    if (size) {
      await checkDump(dump, tools).catch(() => {
        throw new BackupError('database dump is not a readable archive', 'database');
      });
    }
    if (
      !(await fs.stat(path.join(filestoreParent, 'filestore')).then(
        (s) => s.isDirectory(),
        () => false,
      ))
    ) {
      throw new BackupError('filestore directory is missing', 'filestore');
    }
    await onStep?.('filestore');
    try {
      await archiveDir(filestoreParent, 'filestore', path.join(partial, 'filestore.tar.gz'));
    } catch (err) {
      throw new BackupError((err as Error).message, 'filestore');
    }
    await onStep?.('manifest');
    return await store.finalize(spec.id, backupId, { kind, odooVersion: spec.odooVersion });
  } catch (err) {
    await store.abort(spec.id, backupId);
    throw err instanceof BackupError || err instanceof RuntimeError ? err : new BackupError((err as Error).message);
  }
}

/** Restores a backup's database and swaps its filestore in place of `{filestoreParent}/filestore` (atomic rename). */
export async function restoreOnHost(store: BackupStore, tools: PgTools, spec: InstanceSpec, filestoreParent: string, backupId: string, onStep?: StepListener<RestoreStep>): Promise<void> {
  const from = store.dir(spec.id, backupId);
  await onStep?.('database');
  await restoreDatabase(spec.database, path.join(from, 'db.dump'), tools);
  await onStep?.('filestore');
  const dir = filestoreParent;
  const tmp = path.join(dir, `.restore-${randomBytes(4).toString('hex')}`);
  await fs.mkdir(tmp, { recursive: true });
  try {
    await extractArchive(path.join(from, 'filestore.tar.gz'), tmp);
    const old = path.join(dir, `.old-filestore-${randomBytes(4).toString('hex')}`);
    await fs.rename(path.join(dir, 'filestore'), old).catch(() => {});
    await fs.rename(path.join(tmp, 'filestore'), path.join(dir, 'filestore'));
    await fs.rm(old, { recursive: true, force: true });
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}
