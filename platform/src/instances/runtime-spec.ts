/**
 * The runtime driver's view of an instance (InstanceSpec), built from its
 * row. The database password is unsealed here and only handed to the
 * driver: never put a spec in a log line or an event.
 */
import { config } from '../config.ts';
import type { InstanceSpec } from '../runtime/types.ts';
import type { InstanceRow } from './repository.ts';
import { instanceDbNames } from './names.ts';
import { unseal } from './secrets.ts';

export function specOf(row: InstanceRow): InstanceSpec {
  const c = config();
  const names = instanceDbNames(row.id, row.customer_id);
  return {
    id: row.id,
    customerId: row.customer_id,
    name: row.name,
    subdomain: row.subdomain,
    odooVersion: row.odoo_version,
    plan: row.plan,
    resources: row.resources,
    database: {
      // Wherever placement put it (instances/pools.ts); the platform's own server before pools.
      host: row.db_host ?? c.DATABASE_HOST,
      port: row.db_port ?? c.DATABASE_PORT,
      name: row.db_name ?? names.database,
      user: row.db_role ?? names.role,
      password: row.db_password_sealed ? unseal(row.db_password_sealed) : '',
    },
    masterPasswordHash: row.odoo_master_hash ?? undefined,
    demoData: row.demo_data,
    domains: row.custom_domains ?? [],
  };
}

/** Bytes of the plan's storage quota. */
export function quotaBytes(row: InstanceRow): number {
  return row.resources.storageGiB * 1024 ** 3;
}
