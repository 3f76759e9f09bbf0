/**
 * The instance service's tables (instances, backups): row types, the API
 * shape of functions/README.md (HTTP API), and the reads every function shares. Tenant isolation
 * lives here: `findForCaller` answers 404 for another customer's instance,
 * so no function can forget the check.
 */
import { db, pgp, type Tx } from '../db/index.ts';
import { HttpError } from '../errors.ts';
import type { Caller } from '../auth/verify.ts';
import { instanceDbNames, instanceUrl, odooBaseUrl } from './names.ts';
import type { BillingStatus, Health, Status } from './states.ts';

/** Backup ids: uuids, or the driver's own names for safety backups. */
export const BACKUP_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$/;

export type Resources = { cpu: number; memoryMiB: number; storageGiB: number };
export type Progress = { operation: string; step: string; index: number; total: number; at: string };

export type InstanceRow = {
  id: string;
  customer_id: string;
  name: string;
  subdomain: string;
  plan: string;
  odoo_version: string;
  demo_data: boolean;
  trial: boolean;
  status: Status;
  previous_status: Status | null;
  billing_status: BillingStatus;
  health: Health;
  health_failures: number;
  resources: Resources;
  subscription_id: string | null;
  db_name: string | null;
  db_role: string | null;
  db_password_sealed: string | null;
  error_step: string | null;
  error_reason: string | null;
  admin_password_sealed: string | null;
  admin_password_hash: string | null;
  admin_password_shown: boolean;
  /** The customer's Odoo login (their email when the instance was created) and user name. */
  odoo_login: string | null;
  odoo_user_name: string | null;
  /** pbkdf2-sha512 hash of the Odoo master password (admin_passwd). */
  odoo_master_hash: string | null;
  /** Verified custom domains, primary first (domains.ts). */
  custom_domains: string[];
  /** The template database this instance's database was copied from (instances/templates.ts), if any. */
  odoo_template: string | null;
  /** The database pool (instances/pools.ts) and that server's address; null: the platform's own server. */
  db_pool: string | null;
  db_host: string | null;
  db_port: number | null;
  progress: Progress | null;
  /** Last storage measurement (runtime usage()); null until the first one. */
  storage_used_bytes: number | null;
  storage_limit_bytes: number | null;
  storage_measured_at: Date | null;
  /** Whether the last measurement was over the quota (quota_exceeded is sent on the crossing only). */
  storage_exceeded: boolean;
  storage_checked_at: Date | null;
  /** A staging copy: the instance it copies (README 6); null for any other instance. */
  staging_of: string | null;
  /** When the staging copy's data was taken from the original (its fresh backup). */
  staging_copied_at: Date | null;
  /** Sequence number of the last suspend/resume from lifecycle (older ones arrive late and are ignored). */
  suspension_seq: number;
  created_at: Date;
  updated_at: Date;
  terminated_at: Date | null;
};

export type BackupRow = {
  id: string;
  instance_id: string;
  kind: 'manual' | 'daily' | 'safety' | 'final';
  status: 'pending' | 'running' | 'completed' | 'failed' | 'expired';
  db_size_bytes: number | null;
  filestore_size_bytes: number | null;
  size_bytes: number | null;
  location: string | null;
  manifest: unknown;
  error: string | null;
  created_at: Date;
  completed_at: Date | null;
  expires_at: Date | null;
};

export type HistoryRow = {
  id: number;
  instance_id: string;
  event_id: string | null;
  event_type: string | null;
  from_status: string | null;
  to_status: string;
  reason: string | null;
  actor: string;
  at: Date;
};

type Q = Tx | ReturnType<typeof db>;

/** The instance shape of functions/README.md (HTTP API) (never a secret, never a hash). */
export function toApi(r: InstanceRow) {
  return {
    id: r.id,
    customerId: r.customer_id,
    name: r.name,
    subdomain: r.subdomain,
    url: instanceUrl(r.subdomain),
    plan: r.plan,
    odooVersion: r.odoo_version,
    demoData: r.demo_data,
    trial: r.trial,
    status: r.status,
    billingStatus: r.billing_status,
    health: r.health,
    resources: r.resources,
    progress: r.progress ?? undefined,
    storage: storageToApi(r),
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
    ...(r.error_step ? { error: { step: r.error_step, reason: r.error_reason ?? '' } } : {}),
    ...(r.staging_of ? { staging: { of: r.staging_of, copiedAt: r.staging_copied_at?.toISOString() } } : {}),
    // Where and as whom the customer logs in to Odoo (the password is shown once, by the instances function).
    ...(r.odoo_login ? { odoo: { url: odooBaseUrl(r), database: r.db_name ?? instanceDbNames(r.id, r.customer_id).database, login: r.odoo_login } } : {}),
  };
}

/**
 * The storage bar's figures: the last measured usage against the quota. Until
 * the first measurement the limit is the plan's quota and usedBytes is absent.
 */
export function storageToApi(r: InstanceRow): { usedBytes?: number; limitBytes: number; measuredAt?: string } {
  return {
    usedBytes: r.storage_used_bytes ?? undefined,
    limitBytes: r.storage_limit_bytes ?? r.resources.storageGiB * 1024 ** 3,
    measuredAt: r.storage_measured_at?.toISOString(),
  };
}

export function backupToApi(b: BackupRow) {
  return {
    id: b.id,
    kind: b.kind,
    status: b.status,
    sizeBytes: b.size_bytes ?? undefined,
    databaseBytes: b.db_size_bytes ?? undefined,
    filestoreBytes: b.filestore_size_bytes ?? undefined,
    error: b.error ?? undefined,
    createdAt: b.created_at.toISOString(),
    completedAt: b.completed_at?.toISOString(),
    expiresAt: b.expires_at?.toISOString(),
  };
}

export function historyToApi(h: HistoryRow) {
  return {
    at: h.at.toISOString(),
    from: h.from_status,
    to: h.to_status,
    reason: h.reason ?? undefined,
    actor: h.actor,
    eventId: h.event_id ?? undefined,
    eventType: h.event_type ?? undefined,
  };
}

/** One instance by id, or undefined. `forUpdate` locks the row (inside a tx). */
export async function getInstance(q: Q, id: string, forUpdate = false): Promise<InstanceRow | undefined> {
  const row = await q.oneOrNone<InstanceRow>(`SELECT * FROM instances WHERE id = $1${forUpdate ? ' FOR UPDATE' : ''}`, [id]);
  return row ?? undefined;
}

/**
 * The instance `id` if the caller may see it: its owner, or an admin.
 * Anything else (unknown id, another tenant's) is the same 404, so ids
 * cannot be probed.
 */
export async function findForCaller(q: Q, id: string, caller: Caller, forUpdate = false): Promise<InstanceRow> {
  const row = await getInstance(q, id, forUpdate);
  if (!row || (row.customer_id !== caller.userId && caller.role !== 'admin')) throw HttpError.notFound('No such instance');
  return row;
}

/** Columns a caller may change through `updateInstance` (the rest are set by dedicated code paths). */
export type InstancePatch = Partial<Omit<InstanceRow, 'id' | 'customer_id' | 'created_at' | 'updated_at'>>;

/** Updates some columns of an instance (and updated_at); returns the new row. */
export async function updateInstance(q: Q, id: string, patch: InstancePatch): Promise<InstanceRow> {
  const cols = Object.keys(patch);
  if (!cols.length) return (await getInstance(q, id))!;
  const values: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(patch)) {
    values[k] = v !== null && typeof v === 'object' && !(v instanceof Date) ? JSON.stringify(v) : v;
  }
  // Formatted once, here: passing [id] would format the whole text again, and a value holding
  // `$<digits>` (a pbkdf2 hash, `$pbkdf2-sha512$600000$…`) would be taken for a parameter.
  const sql = `${pgp.helpers.update(values, cols, 'instances')}, updated_at = now() WHERE id = ${pgp.as.format('$1', [id])} RETURNING *`;
  return q.one<InstanceRow>(sql);
}

export async function listBackups(q: Q, instanceId: string): Promise<BackupRow[]> {
  return q.manyOrNone<BackupRow>(`SELECT * FROM backups WHERE instance_id = $1 AND status <> 'expired' ORDER BY created_at DESC`, [instanceId]);
}

export async function getBackup(q: Q, instanceId: string, backupId: string): Promise<BackupRow | undefined> {
  return (await q.oneOrNone<BackupRow>('SELECT * FROM backups WHERE id = $1 AND instance_id = $2', [backupId, instanceId])) ?? undefined;
}

/** Storage used per hour over the chart's 30 days, oldest first (quota.ts writes and prunes them). */
export async function listStorageSamples(q: Q, instanceId: string): Promise<{ at: string; usedBytes: number; limitBytes: number }[]> {
  const rows = await q.manyOrNone<{ hour: Date; used_bytes: string; limit_bytes: string }>('SELECT hour, used_bytes, limit_bytes FROM storage_samples WHERE instance_id = $1 ORDER BY hour', [
    instanceId,
  ]);
  return rows.map((r) => ({ at: r.hour.toISOString(), usedBytes: Number(r.used_bytes), limitBytes: Number(r.limit_bytes) }));
}

export async function listHistory(q: Q, instanceId: string): Promise<HistoryRow[]> {
  return q.manyOrNone<HistoryRow>('SELECT * FROM instance_history WHERE instance_id = $1 ORDER BY id', [instanceId]);
}

/** A new backup row (`pending` until instance-ops takes it), written with the command that will take it. */
export async function insertBackup(q: Q, id: string, instanceId: string, kind: BackupRow['kind']): Promise<void> {
  await q.none(`INSERT INTO backups (id, instance_id, kind, status) VALUES ($1, $2, $3, 'pending')`, [id, instanceId, kind]);
}

/** Whether a live (not terminated) instance holds `subdomain`: a terminated one frees its name. */
export async function subdomainTaken(q: Q, subdomain: string): Promise<boolean> {
  return Boolean(await q.oneOrNone(`SELECT 1 FROM instances WHERE subdomain = $1 AND status <> 'terminated'`, [subdomain]));
}

/**
 * Instances, newest first, at most 1000: one customer's (`customerId`) or
 * every tenant's (null, admins only; the caller checks). Terminated ones
 * only when asked for (`withTerminated`), so a customer's list shows what exists.
 */
export async function listInstances(q: Q, f: { customerId: string | null; status: Status | null; withTerminated: boolean }): Promise<InstanceRow[]> {
  return q.manyOrNone<InstanceRow>(
    `SELECT * FROM instances WHERE ($1::uuid IS NULL OR customer_id = $1) AND ($2::text IS NULL OR status = $2)
     ${f.withTerminated ? '' : `AND status <> 'terminated'`} ORDER BY created_at DESC LIMIT 1000`,
    [f.customerId, f.status],
  );
}
