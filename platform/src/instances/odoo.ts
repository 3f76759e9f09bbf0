/**
 * The platform's side of the Odoo contract (odoo/contract.ts) on a tenant
 * database: whether Odoo initialised it, configure (the customer's login and
 * password, company, URL), a new password, and readiness. Run from the
 * functions for every runtime driver alike, connected as the tenant role
 * (its own database only; it owns every table Odoo created).
 */
import pg from 'pg';
import {
  BASE_INSTALLED_SQL,
  baseUrlStatements,
  configureStatements,
  CREATE_EXTENSIONS_SQL,
  IS_INITIALISED_SQL,
  ODOO_PATHS,
  setPasswordStatements,
  type ConfigureInput,
  type OdooDatabase,
  type Statement,
} from '../odoo/contract.ts';

/** Runs `fn` on one connection with `d`'s settings (a tenant's, or the provisioner's on a tenant database). */
export async function withTenant<T>(d: OdooDatabase, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ host: d.host, port: d.port, user: d.user, password: d.password, database: d.name, connectionTimeoutMillis: 10_000, statement_timeout: 30_000 });
  // A connection cut mid-query must reject the query, not crash the function process.
  c.on('error', () => {});
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => {});
  }
}

/** The extensions Odoo creates in its database (pg_trgm), as the tenant role, so it owns them like everything else there. */
export async function createOdooExtensions(d: OdooDatabase): Promise<void> {
  await withTenant(d, (c) => c.query(CREATE_EXTENSIONS_SQL));
}

/** 'missing' (never initialised), 'partial' (tables but base not installed) or 'installed'. */
export async function odooDatabaseState(d: OdooDatabase): Promise<'missing' | 'partial' | 'installed'> {
  return withTenant(d, async (c) => {
    if (!(await c.query(IS_INITIALISED_SQL)).rows[0].initialised) return 'missing';
    return (await c.query(BASE_INSTALLED_SQL)).rows[0]?.state === 'installed' ? 'installed' : 'partial';
  });
}

/** Runs statements in one transaction; each must change at least one row (else the XML id was not found). */
async function runAll(d: OdooDatabase, statements: Statement[]): Promise<void> {
  await withTenant(d, async (c) => {
    await c.query('BEGIN');
    try {
      for (const s of statements) {
        const r = await c.query(s.text, s.values);
        if (!r.rowCount) throw new Error('the Odoo database lacks a record the platform configures (base.user_admin or base.main_company)');
      }
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {});
      throw err;
    }
  });
}

/** platform/src/instances/README.md 3 odoo_configure: one transaction, so Odoo's admin/admin never exists next to a reachable instance. */
export function configureOdoo(d: OdooDatabase, input: ConfigureInput): Promise<void> {
  return runAll(d, configureStatements(input));
}

/** A new primary address (a custom domain verified or removed): Odoo's links follow it. */
export function setOdooBaseUrl(d: OdooDatabase, baseUrl: string): Promise<void> {
  return runAll(d, baseUrlStatements(baseUrl));
}

/** reset_odoo_password: only the admin user's password hash. */
export function setOdooPassword(d: OdooDatabase, passwordHash: string): Promise<void> {
  return runAll(d, setPasswordStatements(passwordHash));
}

/**
 * Ready as platform/src/instances/README.md 3 means it: the database is initialised (base installed)
 * and Odoo answers its login page with 200. `origin` is where the runtime
 * serves the instance to the functions (the health URL's origin).
 */
export async function odooReadyProblem(d: OdooDatabase, origin: string): Promise<string | undefined> {
  const state = await odooDatabaseState(d).catch((err) => `unreachable (${(err as Error).message})`);
  if (state !== 'installed') return `the Odoo database is ${state === 'missing' ? 'not initialised' : state}`;
  const res = await fetch(`${origin}${ODOO_PATHS.login}`, { redirect: 'manual', signal: AbortSignal.timeout(10_000) }).catch(() => undefined);
  await res?.body?.cancel().catch(() => {});
  if (res?.status !== 200) return `Odoo's login page answers ${res ? res.status : 'nothing'}`;
  return undefined;
}
