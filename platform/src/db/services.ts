/**
 * The service databases and their roles (ARCHITECTURE "Data ownership").
 * One database per service, one role per service; `provisioner` owns no
 * database but may create the per-instance ones.
 */
import { config, type Config } from '../config.ts';
import { localSecret } from '../secrets.ts';

export const SERVICE_DATABASES = ['auth', 'billing', 'instance', 'communication', 'audit', 'killbill'] as const;
export type ServiceDatabase = (typeof SERVICE_DATABASES)[number];

/** Role that owns each database. `killbill` is the local Kill Bill simulator's own store. */
export const DATABASE_ROLE: Record<ServiceDatabase, string> = {
  auth: 'auth_service',
  billing: 'billing_service',
  instance: 'instance_service',
  communication: 'communication_service',
  audit: 'audit_owner',
  killbill: 'killbill_sim',
};

/**
 * The role a service's functions log in as, where it is not the owner. The
 * audit log is append-only: its functions may insert and read, never update
 * or delete (migrate.ts grants exactly that), so only migrations use the owner.
 */
export const RUNTIME_ROLE: Partial<Record<ServiceDatabase, string>> = { audit: 'audit_service' };

/** The role functions use on `db`. */
export function runtimeRole(db: ServiceDatabase): string {
  return RUNTIME_ROLE[db] ?? DATABASE_ROLE[db];
}

export const PROVISIONER_ROLE = 'provisioner';

const PASSWORD_ENV: Record<string, keyof Config> = {
  auth_service: 'AUTH_DB_PASSWORD',
  billing_service: 'BILLING_DB_PASSWORD',
  instance_service: 'INSTANCE_DB_PASSWORD',
  communication_service: 'COMMUNICATION_DB_PASSWORD',
  audit_owner: 'AUDIT_OWNER_DB_PASSWORD',
  audit_service: 'AUDIT_DB_PASSWORD',
  provisioner: 'PROVISIONER_DB_PASSWORD',
};

/** Actual database name, with the namespace prefix tests use for isolation. */
export function databaseName(db: ServiceDatabase): string {
  return config().DB_NAMESPACE + db;
}

/** Actual role name, with the namespace prefix. */
export function roleName(role: string): string {
  return config().DB_NAMESPACE + role;
}

/** Password of a service role: env first, else the local secrets file. */
export function rolePassword(role: string): string {
  const envKey = PASSWORD_ENV[role];
  const fromEnv = envKey ? (config()[envKey] as string | undefined) : undefined;
  return localSecret(`db.${config().DB_NAMESPACE}${role}`, fromEnv);
}

/** Connection settings for `role` on database `database` (a real name). */
export function connectionFor(role: string, database: string) {
  const c = config();
  return {
    host: c.DATABASE_HOST,
    port: c.DATABASE_PORT,
    database,
    user: roleName(role),
    password: rolePassword(role),
    max: c.DB_POOL_SIZE,
    connectionTimeoutMillis: 5000,
    // Scale-to-zero functions mostly idle: give connections back soon (pg's default keeps them 10 s), so
    // many function processes on one server do not hold its connection slots while doing nothing.
    idleTimeoutMillis: 2000,
    application_name: process.env.FUNCTION_NAME ?? 'saasodoo',
  };
}
