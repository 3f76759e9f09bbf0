/**
 * The `local` RuntimeDriver, used by functions: a client of the local runtime
 * daemon (which owns the instance processes) plus backups and restores run
 * right here with pg_dump/pg_restore/tar on the instance's own files.
 */
import { ensureLocalDedicated, removeLocalDedicated } from '../dedicated-local.ts';
import path from 'node:path';
import { config } from '../../config.ts';
import { localSecret } from '../../secrets.ts';
import { BackupStore, StoredBackups, assertSafeId } from '../backup-store.ts';
import { backupOnHost, restoreOnHost } from '../host-backup.ts';
import { waitUntilRunning } from '../host-util.ts';
import { DEFAULT_PG_TOOLS, type PgTools } from '../pg-tools.ts';
import { keepTemplateFilestoreOnHost, seedFilestoreOnHost } from '../template-filestore.ts';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type {
  BackupKind,
  DatabaseServer,
  BackupManifest,
  BackupStep,
  DesiredState,
  RestoreStep,
  StepListener,
  InstanceSpec,
  QuotaUsage,
  ReadyProgress,
  RuntimeDriver,
  RuntimeStatus,
} from '../types.ts';
import { RuntimeError } from '../types.ts';

export type LocalDriverOptions = {
  /** Daemon API, e.g. http://127.0.0.1:8083 */
  url: string;
  token: string;
  /** DATA_DIR (instances live in DATA_DIR/instances/<id>). */
  dataDir: string;
  backups?: BackupStore;
  /** pg_dump / pg_restore binaries (tests swap in broken ones). */
  tools?: PgTools;
};

/** Local-driver status also carries the process id (tests kill it to simulate a crash). */
export type LocalRuntimeStatus = RuntimeStatus & { pid?: number };

/** The token functions and the daemon share (generated into the local secrets file). */
export function localRuntimeToken(): string {
  return localSecret('localRuntimeToken', undefined);
}

export class LocalDriver extends StoredBackups implements RuntimeDriver {
  readonly name = 'local' as const;
  readonly backups: BackupStore;
  protected readonly restoresIntoMissing = true;
  private readonly tools: PgTools;

  constructor(private readonly opts: LocalDriverOptions) {
    super();
    this.backups = opts.backups ?? new BackupStore();
    this.tools = opts.tools ?? DEFAULT_PG_TOOLS;
  }

  /** The driver for this process's config (LOCAL_RUNTIME_PORT, DATA_DIR). */
  static fromConfig(): LocalDriver {
    const c = config();
    return new LocalDriver({ url: `http://127.0.0.1:${c.LOCAL_RUNTIME_PORT}`, token: localRuntimeToken(), dataDir: c.dataDir });
  }

  /** The instance's dedicated PostgreSQL: a real server on this machine (dedicated-local.ts). */
  ensureDatabaseServer(spec: InstanceSpec, o: { adminPassword: string; fresh?: boolean }): Promise<DatabaseServer> {
    return ensureLocalDedicated(this.opts.dataDir, spec.id, o);
  }

  /** pg_ctl start waited for it already. */
  async waitDatabaseServer(): Promise<void> {}

  removeDatabaseServer(id: string): Promise<void> {
    return removeLocalDedicated(this.opts.dataDir, id);
  }

  /** The instance's directory (addons, filestore, sessions). */
  instanceDir(id: string): string {
    assertSafeId(id, 'instance id');
    return path.join(this.opts.dataDir, 'instances', id);
  }

  private async call<T>(method: string, p: string, body?: unknown, timeoutMs = 60_000): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${this.opts.url}${p}`, {
        method,
        headers: { authorization: `Bearer ${this.opts.token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch {
      throw new RuntimeError('unavailable', `the local runtime is not answering at ${this.opts.url} (is the host running? npm start)`);
    }
    const json = (await res.json().catch(() => ({}))) as any;
    if (res.ok) return json as T;
    const msg = json?.error?.message ?? `local runtime answered ${res.status}`;
    throw new RuntimeError(res.status === 404 ? 'not_found' : res.status === 400 || res.status === 409 ? 'invalid' : 'failed', msg);
  }

  async apply(spec: InstanceSpec, desired: DesiredState = {}): Promise<void> {
    assertSafeId(spec.id, 'instance id');
    await this.call('PUT', `/instances/${spec.id}`, { spec, desired });
  }

  /** Runs Odoo's init (ODOO_COMMAND or the stand-in) in the daemon, which owns the instance's files. */
  async initialize(spec: InstanceSpec, timeoutMs: number): Promise<void> {
    assertSafeId(spec.id, 'instance id');
    await this.apply(spec, { replicas: 0 });
    await this.call('POST', `/instances/${spec.id}/init`, undefined, timeoutMs + 10_000);
  }

  /** Runs `odoo neutralize` (ODOO_COMMAND or the stand-in) in the daemon, with the instance stopped, as init runs. */
  async neutralize(spec: InstanceSpec, timeoutMs: number): Promise<void> {
    assertSafeId(spec.id, 'instance id');
    await this.apply(spec, { replicas: 0 });
    await this.call('POST', `/instances/${spec.id}/neutralize`, undefined, timeoutMs + 10_000);
  }

  /** ODOO_COMMAND as configured (the daemon runs that), else the stand-in's own source digest. */
  async odooBuild(): Promise<string> {
    const cmd = config().ODOO_COMMAND;
    if (cmd) return `command:${cmd}`;
    const source = await fs.readFile(path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'standin.mjs'));
    return `standin:${createHash('sha256').update(source).digest('hex').slice(0, 16)}`;
  }

  async keepTemplateFilestore(spec: InstanceSpec): Promise<void> {
    await keepTemplateFilestoreOnHost(this.backups, path.join(this.instanceDir(spec.id), 'filestore'), spec.database.name);
  }

  async seedFilestore(spec: InstanceSpec, templateDatabase: string): Promise<void> {
    await this.apply(spec, { replicas: 0 });
    await seedFilestoreOnHost(this.backups, templateDatabase, path.join(this.instanceDir(spec.id), 'filestore'), spec.database.name);
  }

  status(id: string): Promise<LocalRuntimeStatus> {
    assertSafeId(id, 'instance id');
    return this.call('GET', `/instances/${id}`);
  }

  async scale(id: string, replicas: 0 | 1, opts: { suspended?: boolean } = {}): Promise<void> {
    assertSafeId(id, 'instance id');
    await this.call('POST', `/instances/${id}/scale`, { replicas, suspended: opts.suspended ?? false });
  }

  async remove(id: string): Promise<void> {
    assertSafeId(id, 'instance id');
    await this.call('DELETE', `/instances/${id}`);
  }

  protected stopForRestore(id: string, suspended: boolean): Promise<void> {
    return this.scale(id, 0, { suspended });
  }

  /**
   * Waits on the daemon's own change notification: each status request
   * returns as soon as the state differs from the last one seen (the
   * process said it serves, exited, or was stopped), not on a 100 ms poll.
   */
  waitReady(id: string, timeoutMs: number, onProgress?: (p: ReadyProgress) => void): Promise<void> {
    assertSafeId(id, 'instance id');
    const next = (last: string | undefined, remainingMs: number) => {
      if (!last || remainingMs <= 0) return this.status(id);
      const waitMs = Math.min(remainingMs, 30_000);
      return this.call<LocalRuntimeStatus>('GET', `/instances/${id}?changedFrom=${encodeURIComponent(last)}&waitMs=${waitMs}`, undefined, waitMs + 10_000);
    };
    return waitUntilRunning(next, { timeoutMs, intervalMs: 0, runtime: 'runtime', onProgress });
  }

  async setQuota(id: string, bytes: number): Promise<void> {
    assertSafeId(id, 'instance id');
    await this.call('PUT', `/instances/${id}/quota`, { bytes: Math.round(bytes) });
  }

  usage(id: string): Promise<QuotaUsage> {
    assertSafeId(id, 'instance id');
    return this.call('GET', `/instances/${id}/usage`);
  }

  backup(spec: InstanceSpec, backupId: string, kind: BackupKind, onStep?: StepListener<BackupStep>): Promise<BackupManifest> {
    return backupOnHost(this.backups, this.tools, spec, this.instanceDir(spec.id), backupId, kind, onStep);
  }

  /** Puts a backup's database and filestore in place (filestore swapped in atomically). */
  protected restoreParts(spec: InstanceSpec, backupId: string, onStep?: StepListener<RestoreStep>): Promise<void> {
    return restoreOnHost(this.backups, this.tools, spec, this.instanceDir(spec.id), backupId, onStep);
  }
}
