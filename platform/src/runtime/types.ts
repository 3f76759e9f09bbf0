/**
 * The instance runtime contract (ARCHITECTURE "Instance runtime drivers").
 * `provision`, `instance-ops`, `quota-set`, `health-probe` and
 * `backup-download` talk to an instance only through a RuntimeDriver, so the
 * same function code runs an instance as a local process (`local`) or as
 * Kubernetes objects (`kubernetes`). Every method is idempotent: a retried
 * step (platform/src/instances/README.md 3) calls it again and must not fail because it already happened.
 */
import type { Readable } from 'node:stream';

/** What an instance is: everything a driver needs to (re)create its runtime. */
export type InstanceSpec = {
  /** Instance UUID (names storage and runtime objects). */
  id: string;
  customerId: string;
  /** Display name (shown by the stand-in). */
  name: string;
  /** Routing name: `{subdomain}.{BASE_DOMAIN}` (platform/src/instances/README.md 3 rules, checked by the caller). */
  subdomain: string;
  /** One of the ODOO_VERSIONS setting (odoo/contract.ts KNOWN_ODOO_VERSIONS). */
  odooVersion: string;
  /** Plan id (labels only: resources come in `resources`). */
  plan: string;
  /** From the plan, never from the client. storageGiB is the quota. */
  resources: { cpu: number; memoryMiB: number; storageGiB: number };
  /** The instance's own database and role (created by `provision`, not by the driver). */
  database: { host: string; port: number; name: string; user: string; password: string };
  /**
   * pbkdf2-sha512 hash of the instance's random Odoo master password
   * (`admin_passwd` in odoo.conf; the clear text is never kept).
   */
  masterPasswordHash?: string;
  /** Load Odoo demo data at init (odoo/contract.ts demoArgs). */
  demoData?: boolean;
  /** Odoo language loaded at init (default en_US). */
  lang?: string;
  /** Verified custom domains, routed next to the instance's own host (Kubernetes: IngressRoute hosts and certificate names). */
  domains?: string[];
};

/** Desired run state given with apply/scale. */
export type DesiredState = {
  /** 1 = serve, 0 = stopped. Default for apply: 1. */
  replicas?: 0 | 1;
  /**
   * Stopped because of billing (platform/src/billing/README.md 5): the URL answers a clear "suspended"
   * page instead of the "stopped" one. Implies replicas 0.
   */
  suspended?: boolean;
};

export type RuntimeState = 'running' | 'starting' | 'stopped' | 'suspended' | 'missing' | 'failed';

export type RuntimeStatus = {
  /** `missing`: no runtime objects at all (never applied or removed). */
  state: RuntimeState;
  /** Public URL `{scheme}://{subdomain}.{BASE_DOMAIN}[:port]`. */
  url?: string;
  /**
   * Where health-probe checks Odoo's readiness, `/web/health?db_server_status=1`
   * (reachable from the functions); its origin also serves `/web/login`.
   */
  healthUrl?: string;
  /** Desired replicas as last applied. */
  replicas?: 0 | 1;
  /** Why `failed` (exit code, crash loop...): safe to show, no secrets. */
  reason?: string;
  /**
   * When the runtime last started Odoo again by itself after it stopped
   * outside the platform (docker: a killed container brought back), so
   * health-probe can record each such episode once in the history.
   */
  restartedAt?: string;
};

export type BackupKind = 'manual' | 'daily' | 'safety' | 'final';

/** manifest.json written next to the parts; a backup without one is not a backup. */
export type BackupManifest = {
  backupId: string;
  instanceId: string;
  kind: BackupKind;
  odooVersion: string;
  /** ISO time the backup finished. */
  time: string;
  parts: {
    /** `pg_dump -Fc` of the instance database. */
    database: { file: 'db.dump'; bytes: number; sha256: string };
    /** tar.gz of the filestore directory. */
    filestore: { file: 'filestore.tar.gz'; bytes: number; sha256: string };
  };
  /** Final backups are kept until then (30 days); others follow the retention policy. */
  keepUntil?: string;
};

/** Retention (platform/src/instances/README.md 4): how many of each period's newest backup are kept. */
export type RetentionPolicy = { daily: number; weekly: number; monthly: number };
export const DEFAULT_RETENTION: RetentionPolicy = { daily: 7, weekly: 4, monthly: 3 };

export type QuotaUsage = { usedBytes: number; limitBytes: number; exceeded: boolean };

export type ReadyProgress = { state: RuntimeState; elapsedMs: number; message?: string };

/** Steps a backup reports as it goes (instance.progress, operation 'backup'). */
export const BACKUP_STEPS = ['database', 'filestore', 'manifest'] as const;
export type BackupStep = (typeof BACKUP_STEPS)[number];
/** Steps a restore reports as it goes (instance.progress, operation 'restore'). */
export const RESTORE_STEPS = ['verify', 'stop', 'safety_backup', 'database', 'filestore', 'start'] as const;
export type RestoreStep = (typeof RESTORE_STEPS)[number];
/**
 * Told each step as it starts (awaited, so a caller may record it). A driver
 * whose step covers several (a Kubernetes Job dumps database and filestore
 * at once) reports the first and skips the rest.
 */
export type StepListener<S extends string> = (step: S) => Promise<void> | void;

/** A downloadable backup: the three files as one uncompressed tar stream. */
export type BackupDownload = { filename: string; contentType: string; stream: Readable };

/**
 * Where a dedicated PostgreSQL server (plan database `dedicated`) answers,
 * and its superuser when the platform administers it (local: a server made
 * with initdb). None on Kubernetes: CloudNativePG makes the instance's
 * database and owner itself and its own `postgres` user is never used.
 */
export type DatabaseServer = { host: string; port: number; admin?: { user: string; password: string } };

export interface RuntimeDriver {
  readonly name: 'local' | 'kubernetes' | 'docker';

  /**
   * Create or update every runtime object of the instance (storage, process or
   * Deployment, routing) to match `spec`; with `desired.replicas` 1 (default)
   * it also starts it. Does not wait for readiness: call waitReady. Idempotent.
   */
  apply(spec: InstanceSpec, desired?: DesiredState): Promise<void>;

  /**
   * Odoo's own initialisation of the instance database, to completion: the
   * contract's `initArgs` (`-i base --stop-after-init`, demo flag, language)
   * with the instance's image or command, odoo.conf and data dir (local: a
   * process; Kubernetes: a Job before the Deployment). The instance is left
   * stopped. Throws RuntimeError `failed` (exit reason, no secrets) or
   * `timeout`. Callers skip it when the database is already initialised.
   */
  initialize(spec: InstanceSpec, timeoutMs: number): Promise<void>;

  /**
   * What runs Odoo for `version` (the image's id or reference, or the local
   * command): a template database made by another build is made again
   * (instances/templates.ts).
   */
  odooBuild(version: string): Promise<string>;

  /**
   * Keeps the filestore Odoo's init wrote for a template database (`spec`
   * is the template's, initialised like an instance) in the backup store,
   * so the template's runtime can be removed. Idempotent.
   */
  keepTemplateFilestore(spec: InstanceSpec): Promise<void>;

  /**
   * Puts template `templateDatabase`'s kept filestore in the instance's
   * storage under the instance's database name (applying the instance
   * stopped first, so its storage exists). Idempotent.
   */
  seedFilestore(spec: InstanceSpec, templateDatabase: string): Promise<void>;

  /** Deletes a template's kept filestore. Idempotent. */
  dropTemplateFilestore(database: string): Promise<void>;

  /**
   * Odoo's neutralisation of a staging copy (`odoo neutralize`, contract.ts
   * neutralizeArgs), to completion, run exactly as `initialize` runs init
   * (local: a process; Docker: a one-shot container; Kubernetes: a Job). The
   * instance is left stopped. Throws RuntimeError `failed` or `timeout`.
   */
  neutralize(spec: InstanceSpec, timeoutMs: number): Promise<void>;

  /**
   * Publishes backup `backupId` of `from` again under `to` (a staging copy),
   * its filestore under `to`'s database name. The source is verified first.
   */
  copyBackup(from: InstanceSpec, backupId: string, to: InstanceSpec): Promise<BackupManifest>;

  /**
   * Replaces a staging copy's database and filestore with one of its backups
   * (made by copyBackup): stops it and restores, without a safety backup (a
   * copy's data is disposable). Leaves it stopped.
   */
  restoreCopy(spec: InstanceSpec, backupId: string, onStep?: StepListener<RestoreStep>): Promise<void>;

  /** What the runtime sees now (never throws for an unknown id: `missing`). */
  status(id: string): Promise<RuntimeStatus>;

  /**
   * Start (1) or stop (0) an applied instance, keeping its data. `suspended`
   * with 0 makes its URL answer the "suspended" page. Throws RuntimeError
   * `not_found` if the instance was never applied.
   */
  scale(id: string, replicas: 0 | 1, opts?: { suspended?: boolean }): Promise<void>;

  /**
   * Remove the runtime objects AND the instance storage (filestore, addons,
   * sessions). Backups are kept (the final one for 30 days). The database and
   * role are the caller's (provision created them). Idempotent.
   */
  remove(id: string): Promise<void>;

  /**
   * Resolve once `/web/health` answers (Kubernetes: Deployment readyReplicas
   * through the Watch API); throws RuntimeError `timeout` after timeoutMs or
   * `failed` when the instance cannot start. onProgress gets state changes.
   */
  waitReady(id: string, timeoutMs: number, onProgress?: (p: ReadyProgress) => void): Promise<void>;

  /**
   * Take a backup: `pg_dump -Fc` + tar.gz of the filestore + manifest.json.
   * Throws BackupError if a part is missing or empty (caller records
   * `backup_failed`); a failed backup leaves nothing behind.
   */
  backup(spec: InstanceSpec, backupId: string, kind: BackupKind, onStep?: StepListener<BackupStep>): Promise<BackupManifest>;

  /**
   * Restore `backupId` into the instance: stops it, takes a `safety` backup,
   * restores database (`pg_restore --clean` as the instance role) and
   * filestore, then brings it back to its previous run state. On failure the
   * database and filestore are put back from the safety backup and the
   * RestoreError names what failed. Returns the safety backup's manifest.
   */
  restore(spec: InstanceSpec, backupId: string, onStep?: StepListener<RestoreStep>): Promise<{ safety: BackupManifest }>;

  /**
   * Creates (or starts) the instance's dedicated PostgreSQL server and
   * answers where it is. `adminPassword`: the superuser's password where the
   * driver makes one (kept sealed by the caller); `fresh`: a server found
   * without its record holds nothing and is made again. Idempotent.
   */
  ensureDatabaseServer(spec: InstanceSpec, o: { adminPassword: string; fresh?: boolean }): Promise<DatabaseServer>;

  /** Resolves once the dedicated server accepts connections (RuntimeError `timeout`). */
  waitDatabaseServer(id: string, timeoutMs: number): Promise<void>;

  /** Stops and deletes the dedicated server and its data. Idempotent. */
  removeDatabaseServer(id: string): Promise<void>;

  /**
   * Drivers whose dedicated servers the platform holds no credentials for
   * (CloudNativePG): why the server is not healthy, from its operator's
   * status, or undefined when it is. The pool health check uses it instead
   * of a `SELECT 1`; a driver without it is checked by connecting.
   */
  databaseServerProblem?(id: string): Promise<string | undefined>;

  /** Set the storage quota (Kubernetes: PVC size, grow-only; local: recorded limit). */
  setQuota(id: string, bytes: number): Promise<void>;

  /** Storage used vs the quota (local: `du` of the instance directory). */
  usage(id: string): Promise<QuotaUsage>;

  /** The instance's backups, newest first (manifests only). */
  listBackups(id: string): Promise<BackupManifest[]>;

  /** Stream one backup for `backup-download`; throws RuntimeError `not_found`. */
  openBackup(id: string, backupId: string): Promise<BackupDownload>;

  /** Delete one backup (idempotent). */
  deleteBackup(id: string, backupId: string): Promise<void>;

  /**
   * Apply the retention policy (and expire final backups past keepUntil);
   * returns the ids deleted. `now` is injectable for tests.
   */
  pruneBackups(id: string, policy?: RetentionPolicy, now?: Date): Promise<string[]>;
}

export type RuntimeErrorCode = 'not_found' | 'timeout' | 'failed' | 'unavailable' | 'invalid';

/** A driver failure the caller can act on (message is safe to record: no secrets). */
export class RuntimeError extends Error {
  constructor(
    readonly code: RuntimeErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'RuntimeError';
  }
}

/** A backup that must be recorded as `backup_failed` (missing/empty part, dump error). */
export class BackupError extends Error {
  constructor(
    message: string,
    readonly part?: 'database' | 'filestore' | 'manifest',
  ) {
    super(message);
    this.name = 'BackupError';
  }
}

/** A restore that failed; the instance was left as it was (from the safety backup). */
export class RestoreError extends Error {
  constructor(
    message: string,
    readonly safetyBackupId?: string,
  ) {
    super(message);
    this.name = 'RestoreError';
  }
}
