/**
 * Where backups live and what makes one valid, shared by both drivers: a
 * directory per backup `{root}/{instanceId}/{backupId}/` holding `db.dump`,
 * `filestore.tar.gz` and `manifest.json`. Parts are written into
 * `{backupId}.partial/` (locally by pg_dump/tar, on Kubernetes by a Job on
 * the shared backup volume) and `finalize` checks them, hashes them and
 * renames the directory: a backup either has a manifest and both non-empty
 * parts, or does not exist (platform/src/instances/README.md 4: never success with a missing part).
 */
import { createHash, randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { config } from '../config.ts';
import { applyRetention, FINAL_BACKUP_DAYS } from './retention.ts';
import os from 'node:os';
import { archiveDir, extractArchive } from './pg-tools.ts';
import type { BackupDownload, BackupKind, BackupManifest, BackupStep, InstanceSpec, RestoreStep, RetentionPolicy, RuntimeStatus, StepListener } from './types.ts';
import { BackupError, DEFAULT_RETENTION, RestoreError, RuntimeError } from './types.ts';

const ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$/;

/** Rejects ids that could escape the backup directory. */
export function assertSafeId(value: string, what: string): void {
  if (!ID.test(value)) throw new RuntimeError('invalid', `${what} must be letters, digits, '-' or '_' (at most 100)`);
}

/** The configured backup root: BACKUP_DIR, else DATA_DIR/backups. */
export function defaultBackupRoot(): string {
  const c = config();
  return c.BACKUP_DIR ? path.resolve(c.BACKUP_DIR) : path.join(c.dataDir, 'backups');
}

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function sizeOf(file: string): Promise<number | undefined> {
  try {
    const st = await fs.stat(file);
    return st.isFile() ? st.size : undefined;
  } catch {
    return undefined;
  }
}

export class BackupStore {
  constructor(readonly root: string = defaultBackupRoot()) {}

  dir(instanceId: string, backupId: string): string {
    assertSafeId(instanceId, 'instance id');
    assertSafeId(backupId, 'backup id');
    return path.join(this.root, instanceId, backupId);
  }

  /**
   * Where a template database's filestore is kept (runtime/template-filestore.ts):
   * `.templates/<database>.tar.gz`, a dot folder that is never an instance id.
   */
  templateArchive(database: string): string {
    assertSafeId(database, 'template database');
    return path.join(this.root, '.templates', `${database}.tar.gz`);
  }

  partialDir(instanceId: string, backupId: string): string {
    return `${this.dir(instanceId, backupId)}.partial`;
  }

  /** Prepares an empty `.partial` directory; a finished backup with that id is an error. */
  async begin(instanceId: string, backupId: string): Promise<string> {
    const final = this.dir(instanceId, backupId);
    if (
      await fs.stat(final).then(
        () => true,
        () => false,
      )
    )
      throw new RuntimeError('invalid', `backup ${backupId} already exists`);
    const partial = this.partialDir(instanceId, backupId);
    await fs.rm(partial, { recursive: true, force: true });
    await fs.mkdir(partial, { recursive: true, mode: 0o700 });
    return partial;
  }

  /** Discards a failed backup's parts. */
  async abort(instanceId: string, backupId: string): Promise<void> {
    await fs.rm(this.partialDir(instanceId, backupId), { recursive: true, force: true });
  }

  /**
   * Checks both parts exist and are non-empty, hashes them, writes the
   * manifest and publishes the backup. Throws BackupError (and discards the
   * parts) otherwise.
   */
  async finalize(instanceId: string, backupId: string, meta: { kind: BackupKind; odooVersion: string; now?: Date }): Promise<BackupManifest> {
    const partial = this.partialDir(instanceId, backupId);
    try {
      const dbFile = path.join(partial, 'db.dump');
      const fsFile = path.join(partial, 'filestore.tar.gz');
      const dbBytes = await sizeOf(dbFile);
      if (dbBytes === undefined) throw new BackupError('database dump is missing', 'database');
      if (dbBytes === 0) throw new BackupError('database dump is empty', 'database');
      const fsBytes = await sizeOf(fsFile);
      if (fsBytes === undefined) throw new BackupError('filestore archive is missing', 'filestore');
      if (fsBytes === 0) throw new BackupError('filestore archive is empty', 'filestore');
      const now = meta.now ?? new Date();
      const manifest: BackupManifest = {
        backupId,
        instanceId,
        kind: meta.kind,
        odooVersion: meta.odooVersion,
        time: now.toISOString(),
        parts: {
          database: { file: 'db.dump', bytes: dbBytes, sha256: await sha256File(dbFile) },
          filestore: { file: 'filestore.tar.gz', bytes: fsBytes, sha256: await sha256File(fsFile) },
        },
        ...(meta.kind === 'final' ? { keepUntil: new Date(now.getTime() + FINAL_BACKUP_DAYS * 86_400_000).toISOString() } : {}),
      };
      await fs.writeFile(path.join(partial, 'manifest.json'), JSON.stringify(manifest, null, 2), { mode: 0o600 });
      await fs.rename(partial, this.dir(instanceId, backupId));
      return manifest;
    } catch (err) {
      await this.abort(instanceId, backupId);
      throw err;
    }
  }

  /** A finished backup's manifest; RuntimeError not_found otherwise. */
  async read(instanceId: string, backupId: string): Promise<BackupManifest> {
    try {
      return JSON.parse(await fs.readFile(path.join(this.dir(instanceId, backupId), 'manifest.json'), 'utf8'));
    } catch (err) {
      if (err instanceof RuntimeError) throw err;
      throw new RuntimeError('not_found', `no backup ${backupId} for this instance`);
    }
  }

  /** The manifest after re-hashing both parts (before a restore trusts them). */
  async verify(instanceId: string, backupId: string): Promise<BackupManifest> {
    const m = await this.read(instanceId, backupId);
    const dir = this.dir(instanceId, backupId);
    for (const part of [m.parts.database, m.parts.filestore]) {
      const file = path.join(dir, part.file);
      if ((await sizeOf(file)) !== part.bytes || (await sha256File(file)) !== part.sha256) {
        throw new BackupError(`${part.file} does not match the manifest`, part === m.parts.database ? 'database' : 'filestore');
      }
    }
    return m;
  }

  /** Finished backups of an instance, newest first. */
  async list(instanceId: string): Promise<BackupManifest[]> {
    assertSafeId(instanceId, 'instance id');
    let names: string[];
    try {
      names = await fs.readdir(path.join(this.root, instanceId));
    } catch {
      return [];
    }
    const out: BackupManifest[] = [];
    for (const n of names) {
      if (!ID.test(n)) continue;
      try {
        out.push(await this.read(instanceId, n));
      } catch {
        /* not a finished backup */
      }
    }
    return out.sort((a, b) => b.time.localeCompare(a.time));
  }

  /** Streams the backup as an uncompressed tar of its three files. */
  async open(instanceId: string, backupId: string): Promise<BackupDownload> {
    await this.read(instanceId, backupId);
    const child = spawn('tar', ['-c', '-C', this.dir(instanceId, backupId), 'manifest.json', 'db.dump', 'filestore.tar.gz'], { stdio: ['ignore', 'pipe', 'ignore'] });
    child.on('exit', (code) => {
      if (code) child.stdout.destroy(new Error(`tar exited with ${code}`));
    });
    return { filename: `backup-${instanceId}-${backupId}.tar`, contentType: 'application/x-tar', stream: child.stdout };
  }

  async delete(instanceId: string, backupId: string): Promise<void> {
    await fs.rm(this.dir(instanceId, backupId), { recursive: true, force: true });
  }

  /** Deletes what the retention policy does not keep; returns the deleted ids. */
  async prune(instanceId: string, policy: RetentionPolicy = DEFAULT_RETENTION, now = new Date()): Promise<string[]> {
    const { remove } = applyRetention(await this.list(instanceId), policy, now);
    for (const b of remove) await this.delete(instanceId, b.backupId);
    return remove.map((b) => b.backupId);
  }
}

/**
 * The backup calls both drivers answer the same way, from the shared store
 * (archives live on a volume the functions mount, whatever runs the instance),
 * and the restore procedure around a safety backup, which only differs in how
 * a driver stops the instance and puts a backup's parts in place.
 */
export abstract class StoredBackups {
  abstract readonly backups: BackupStore;
  /** Whether a restore may go ahead when the runtime has no such instance (local: its files are still there). */
  protected abstract readonly restoresIntoMissing: boolean;

  abstract status(id: string): Promise<RuntimeStatus>;
  abstract scale(id: string, replicas: 0 | 1, opts?: { suspended?: boolean }): Promise<void>;
  abstract backup(spec: InstanceSpec, backupId: string, kind: BackupKind, onStep?: StepListener<BackupStep>): Promise<BackupManifest>;
  /** Brings the instance down for a restore, keeping it suspended if it was. */
  protected abstract stopForRestore(id: string, suspended: boolean): Promise<void>;
  /** Puts a verified backup's database and filestore in place of the instance's. */
  protected abstract restoreParts(spec: InstanceSpec, backupId: string, onStep?: StepListener<RestoreStep>): Promise<void>;

  /**
   * Verifies the backup, stops the instance, takes a safety backup and
   * restores; if the restore fails the safety backup is put back, so the
   * instance is left as it was either way (platform/src/instances/README.md 4).
   */
  async restore(spec: InstanceSpec, backupId: string, onStep?: StepListener<RestoreStep>): Promise<{ safety: BackupManifest }> {
    await onStep?.('verify');
    try {
      await this.backups.verify(spec.id, backupId);
    } catch (err) {
      throw new RestoreError(`backup ${backupId} cannot be restored: ${(err as Error).message}`);
    }
    const before = await this.status(spec.id);
    if (before.state === 'missing' && !this.restoresIntoMissing) throw new RestoreError('the instance has no runtime objects to restore into');
    const wasUp = before.state !== 'missing' && before.replicas === 1;
    await onStep?.('stop');
    if (before.state !== 'missing') await this.stopForRestore(spec.id, before.state === 'suspended');
    const putBack = async () => {
      if (wasUp) await this.scale(spec.id, 1);
    };
    let safety: BackupManifest;
    await onStep?.('safety_backup');
    try {
      safety = await this.backup(spec, `safety-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`, 'safety');
    } catch (err) {
      await putBack();
      throw new RestoreError(`the safety backup failed, nothing was changed: ${(err as Error).message}`);
    }
    try {
      await this.restoreParts(spec, backupId, onStep);
    } catch (err) {
      try {
        await this.restoreParts(spec, safety.backupId);
      } catch (again) {
        await putBack().catch(() => {});
        throw new RestoreError(`restore failed (${(err as Error).message}) and putting back the safety backup failed too (${(again as Error).message})`, safety.backupId);
      }
      await putBack();
      throw new RestoreError(`restore failed, the instance was put back as it was: ${(err as Error).message}`, safety.backupId);
    }
    await onStep?.('start');
    await putBack();
    return { safety };
  }

  /**
   * A staging copy's restore source (platform/src/instances/README.md 6): backup
   * `backupId` of `from`, verified, published again under `to` with the
   * filestore moved under `to`'s database name (Odoo keys it by database:
   * `filestore/<db>/`). Runs where the backup store is mounted, whatever runs
   * the instances. Returns the new backup's manifest (same id, under `to`).
   */
  async copyBackup(from: InstanceSpec, backupId: string, to: InstanceSpec): Promise<BackupManifest> {
    const source = await this.backups.verify(from.id, backupId);
    await this.backups.delete(to.id, backupId);
    const partial = await this.backups.begin(to.id, backupId);
    const work = await fs.mkdtemp(path.join(os.tmpdir(), 'staging-'));
    try {
      const src = this.backups.dir(from.id, backupId);
      await fs.copyFile(path.join(src, 'db.dump'), path.join(partial, 'db.dump'));
      await extractArchive(path.join(src, 'filestore.tar.gz'), work);
      const old = path.join(work, 'filestore', from.database.name);
      await fs.mkdir(path.join(work, 'filestore'), { recursive: true });
      if (from.database.name !== to.database.name) {
        await fs.rm(path.join(work, 'filestore', to.database.name), { recursive: true, force: true });
        await fs.rename(old, path.join(work, 'filestore', to.database.name)).catch((err) => {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        });
      }
      await archiveDir(work, 'filestore', path.join(partial, 'filestore.tar.gz'));
      return await this.backups.finalize(to.id, backupId, { kind: source.kind, odooVersion: source.odooVersion });
    } catch (err) {
      await this.backups.abort(to.id, backupId);
      throw err;
    } finally {
      await fs.rm(work, { recursive: true, force: true });
    }
  }

  /**
   * Puts a backup in place of a staging copy's data: verified, the copy
   * stopped, then the driver's own restore (restoreParts) with no safety
   * backup, since the copy's data is replaced by design (a refresh) or was
   * never there (a new copy). Leaves the copy stopped.
   */
  async restoreCopy(spec: InstanceSpec, backupId: string, onStep?: StepListener<RestoreStep>): Promise<void> {
    await onStep?.('verify');
    await this.backups.verify(spec.id, backupId);
    const before = await this.status(spec.id);
    await onStep?.('stop');
    // Running (a refresh) or on its way: stopped and waited for. A copy that never ran has nothing to stop.
    if (before.replicas === 1 || before.state === 'running' || before.state === 'starting') await this.stopForRestore(spec.id, false);
    await this.restoreParts(spec, backupId, onStep);
  }

  /** Deletes a template's kept filestore (the template was made again). Idempotent. */
  async dropTemplateFilestore(database: string): Promise<void> {
    await fs.rm(this.backups.templateArchive(database), { force: true });
  }

  listBackups(id: string): Promise<BackupManifest[]> {
    return this.backups.list(id);
  }

  openBackup(id: string, backupId: string): Promise<BackupDownload> {
    return this.backups.open(id, backupId);
  }

  deleteBackup(id: string, backupId: string): Promise<void> {
    return this.backups.delete(id, backupId);
  }

  pruneBackups(id: string, policy?: RetentionPolicy, now?: Date): Promise<string[]> {
    return this.backups.prune(id, policy, now);
  }
}
