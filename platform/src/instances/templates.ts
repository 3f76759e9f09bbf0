/**
 * Fast init (issue 17 item 7): per database server, Odoo version, language
 * and demo flag, one template database that Odoo's own init command made,
 * marked IS_TEMPLATE and never connected to again, with its filestore kept
 * by the runtime driver. A new instance's database is `CREATE DATABASE …
 * TEMPLATE` of it plus a copy of that filestore; configure then runs as
 * after a plain init.
 *
 * Ownership: the template's objects belong to a role of its own that owns
 * no database (the template database itself belongs to the provisioner), so
 * `REASSIGN OWNED BY <template role> TO <tenant role>` in the copy moves
 * exactly the copy's objects and nothing shared. The copy then gets its own
 * `database.secret`, `database.uuid` and `database.create_date`, as Odoo's
 * `exp_duplicate_database` gives it (odoo/contract.ts freshCopyStatements).
 */
import { config } from '../config.ts';
import { db, lockDb } from '../db/index.ts';
import { connectionFor, PROVISIONER_ROLE } from '../db/services.ts';
import { log } from '../log.ts';
import { runtime } from '../runtime/index.ts';
import type { InstanceSpec } from '../runtime/types.ts';
import { copyDatabaseSql, createDatabaseSql, DEFAULT_LANG, freshCopyStatements, odooPasswordHash, RANDOM_SECRET_PBKDF2_ROUNDS } from '../odoo/contract.ts';
import { createOdooExtensions, odooDatabaseState, withTenant } from './odoo.ts';
import { randomPassword, sha256Hex } from './secrets.ts';
import { grantOnPostgres, serverAdmin } from './database.ts';
import { TEMPLATE_PREFIX } from './names.ts';

/** The platform's own server, where templates live, through the provisioner. */
const platformServer = () => serverAdmin(undefined);

const ident = (s: string) => `"${s.replace(/"/g, '""')}"`;
const literal = (s: string) => `'${s.replace(/'/g, "''")}'`;
const LOCK_NAMESPACE = 7008;

export type OdooTemplate = { database: string; role: string };

type TemplateRow = { server: string; odoo_version: string; lang: string; demo: boolean; build: string; database: string; role: string; runtime_id: string };

/** `host:port` of a spec's database server: templates are per server (a copy is made on the same server only). */
export function serverOf(spec: Pick<InstanceSpec, 'database'>): string {
  return `${spec.database.host}:${spec.database.port}`;
}

/** Names of the template for a key and build: database and role share one name under DB_NAMESPACE; the runtime id is a uuid from the same digest. */
function templateNames(key: string): { database: string; role: string; runtimeId: string; hash: string } {
  const h = sha256Hex(key);
  const name = `${config().DB_NAMESPACE}odoo_tpl_${h.slice(0, 12)}`;
  return { database: name, role: name, hash: h.slice(0, 12), runtimeId: `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}` };
}

/**
 * The template for `spec`'s server, version, language and demo flag, made
 * now by Odoo's init when there is none or it was made by another build
 * (image or command) of that version; undefined when templates are off
 * (ODOO_TEMPLATES=false) or `make` is false and none is ready (a fresh
 * dedicated server: the caller runs a plain init). Concurrent callers wait
 * for the one making it.
 */
export async function templateFor(spec: InstanceSpec, o: { make: boolean; timeoutMs: number }): Promise<OdooTemplate | undefined> {
  const c = config();
  if (!c.ODOO_TEMPLATES) return undefined;
  // Templates live on the platform's own server (the `default` pool); elsewhere a plain init runs.
  if (spec.database.host !== c.DATABASE_HOST || spec.database.port !== c.DATABASE_PORT) return undefined;
  const rt = await runtime();
  const { key, lockKey } = templateKeyOf(spec);
  const build = await rt.odooBuild(key.version);
  return lockDb('instance').task(async (c) => {
    await c.one('SELECT pg_advisory_lock($1, hashtext($2)) IS NULL AS x', [LOCK_NAMESPACE, lockKey]);
    try {
      const cur = await db('instance').oneOrNone<TemplateRow>('SELECT * FROM odoo_templates WHERE server = $1 AND odoo_version = $2 AND lang = $3 AND demo = $4', [
        key.server,
        key.version,
        key.lang,
        key.demo,
      ]);
      if (cur && cur.build === build && (await isTemplateDatabase(cur.database))) return { database: cur.database, role: cur.role };
      if (!o.make) return undefined;
      if (cur) await dropTemplate(cur);
      const made = await makeTemplate(spec, key, build, o.timeoutMs);
      await db('instance').none(
        `INSERT INTO odoo_templates (server, odoo_version, lang, demo, build, database, role, runtime_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (server, odoo_version, lang, demo) DO UPDATE SET build = EXCLUDED.build, database = EXCLUDED.database, role = EXCLUDED.role,
           runtime_id = EXCLUDED.runtime_id, created_at = now()`,
        [key.server, key.version, key.lang, key.demo, build, made.database, made.role, made.runtimeId],
      );
      return { database: made.database, role: made.role };
    } finally {
      await c.one('SELECT pg_advisory_unlock($1, hashtext($2)) AS ok', [LOCK_NAMESPACE, lockKey]);
    }
  });
}

function templateKeyOf(spec: InstanceSpec) {
  const key = { server: serverOf(spec), version: spec.odooVersion, lang: spec.lang ?? DEFAULT_LANG, demo: spec.demoData ?? false };
  return { key, lockKey: `${key.server}|${key.version}|${key.lang}|${key.demo}` };
}

/**
 * Runs `fn` (a copy's filestore seeding) while template `database` cannot be
 * dropped: a shared hold on the lock a rebuild takes whole. False, without
 * running it, when that template is gone: made again (a new image) between
 * the copy of its database and this step, its kept filestore with it.
 */
export async function whileTemplateKept(spec: InstanceSpec, database: string, fn: () => Promise<void>): Promise<boolean> {
  const { lockKey } = templateKeyOf(spec);
  return lockDb('instance').task(async (c) => {
    await c.one('SELECT pg_advisory_lock_shared($1, hashtext($2)) IS NULL AS x', [LOCK_NAMESPACE, lockKey]);
    try {
      if (!(await db('instance').oneOrNone('SELECT 1 FROM odoo_templates WHERE database = $1', [database]))) return false;
      await fn();
      return true;
    } finally {
      await c.one('SELECT pg_advisory_unlock_shared($1, hashtext($2)) AS ok', [LOCK_NAMESPACE, lockKey]);
    }
  });
}

async function isTemplateDatabase(name: string): Promise<boolean> {
  return !!(await platformServer().db.oneOrNone('SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate AND NOT datallowconn', [name]));
}

/** Drops a database even when it is (or was half made into) a template. */
async function dropDatabase(name: string): Promise<void> {
  const pdb = platformServer().db;
  if (await pdb.oneOrNone('SELECT 1 FROM pg_database WHERE datname = $1', [name])) {
    await pdb.none(`ALTER DATABASE ${ident(name)} WITH IS_TEMPLATE false ALLOW_CONNECTIONS true`);
    await pdb.none(`DROP DATABASE IF EXISTS ${ident(name)} WITH (FORCE)`);
  }
}

/**
 * A template made by another build goes: its database, its kept filestore,
 * and its role once no copy still holds objects of it (a copy mid-provisioning
 * reassigns them first; the role is dropped by a later rebuild otherwise).
 */
async function dropTemplate(t: TemplateRow): Promise<void> {
  await dropDatabase(t.database);
  await (await runtime()).dropTemplateFilestore(t.database);
  await db('instance').none('DELETE FROM odoo_templates WHERE database = $1', [t.database]);
  await platformServer()
    .db.none(`DROP ROLE IF EXISTS ${ident(t.role)}`)
    .catch((err) => log.warn({ role: t.role, reason: (err as Error).message }, 'template role kept: copies still own objects of it'));
}

/**
 * Odoo's init on a new database owned by the provisioner, whose objects the
 * template role creates (it gets CREATE there and on `public`, and CONNECT on
 * `postgres` as Odoo needs while it runs), in a runtime of its own; then the
 * filestore is kept, the runtime removed, the role closed (NOLOGIN, no
 * password, no CONNECT) and the database marked IS_TEMPLATE with connections
 * refused.
 */
async function makeTemplate(spec: InstanceSpec, key: { server: string; version: string; lang: string; demo: boolean }, build: string, timeoutMs: number) {
  const names = templateNames(`${key.server}|${key.version}|${key.lang}|${key.demo}|${build}`);
  const pdb = platformServer().db;
  const provisioner = platformServer().role;
  const password = randomPassword();
  const rt = await runtime();
  const started = Date.now();
  await dropDatabase(names.database); // a build that died half way
  if (await pdb.oneOrNone('SELECT 1 FROM pg_roles WHERE rolname = $1', [names.role])) {
    await pdb.none(`ALTER ROLE ${ident(names.role)} LOGIN CONNECTION LIMIT 20 PASSWORD ${literal(password)}`);
  } else {
    await pdb.none(`CREATE ROLE ${ident(names.role)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE CONNECTION LIMIT 20 PASSWORD ${literal(password)}`);
    // REASSIGN OWNED in each copy needs the provisioner to hold the template role's privileges.
    await pdb.none(`GRANT ${ident(names.role)} TO ${ident(provisioner)}`);
  }
  await pdb.none(createDatabaseSql(names.database, provisioner));
  await pdb.none(`REVOKE ALL ON DATABASE ${ident(names.database)} FROM PUBLIC`);
  await pdb.none(`GRANT CONNECT, TEMPORARY, CREATE ON DATABASE ${ident(names.database)} TO ${ident(names.role)}`);
  await grantOnPostgres(pdb, `GRANT CONNECT ON DATABASE postgres TO ${ident(names.role)}`);
  await asProvisionerIn(names.database, (c) => c.query(`GRANT CREATE ON SCHEMA public TO ${ident(names.role)}`));
  const tspec: InstanceSpec = {
    id: names.runtimeId,
    customerId: names.runtimeId,
    name: `Odoo ${key.version} template`,
    subdomain: `${TEMPLATE_PREFIX}${names.hash}`,
    odooVersion: key.version,
    plan: 'template',
    resources: { cpu: 1, memoryMiB: Math.max(spec.resources.memoryMiB, 1024), storageGiB: 1 },
    database: { host: spec.database.host, port: spec.database.port, name: names.database, user: names.role, password },
    masterPasswordHash: await odooPasswordHash(randomPassword(), { rounds: RANDOM_SECRET_PBKDF2_ROUNDS }),
    demoData: key.demo,
    lang: key.lang,
  };
  try {
    await createOdooExtensions(tspec.database);
    await rt.initialize(tspec, timeoutMs);
    const state = await odooDatabaseState(tspec.database);
    if (state !== 'installed') throw new Error(`Odoo's init of the template finished but its database is ${state}`);
    await rt.keepTemplateFilestore(tspec);
  } finally {
    await rt.remove(tspec.id).catch((err) => log.warn({ template: names.database, reason: (err as Error).message }, 'template runtime not removed'));
  }
  await grantOnPostgres(pdb, `REVOKE CONNECT ON DATABASE postgres FROM ${ident(names.role)}`);
  await pdb.none(`REVOKE ALL ON DATABASE ${ident(names.database)} FROM ${ident(names.role)}`);
  await pdb.none(`ALTER ROLE ${ident(names.role)} NOLOGIN PASSWORD NULL`);
  await pdb.none(`ALTER DATABASE ${ident(names.database)} WITH ALLOW_CONNECTIONS false IS_TEMPLATE true`);
  log.info({ template: names.database, version: key.version, lang: key.lang, demo: key.demo, ms: Date.now() - started }, 'Odoo template database made');
  return names;
}

/** Runs `fn` connected as the provisioner to database `name` (its owner, or a member of its owner's role). */
function asProvisionerIn<T>(name: string, fn: Parameters<typeof withTenant<T>>[1]): Promise<T> {
  const c = connectionFor(PROVISIONER_ROLE, name);
  return withTenant({ host: c.host, port: c.port, name, user: c.user, password: c.password }, fn);
}

/**
 * Makes the copy's objects the tenant's (`REASSIGN OWNED`: the template role
 * owns no database, so nothing shared moves), takes back the template role's
 * grant on `public`, and gives the copy its own secret, uuid and creation
 * date with no licence parameter, in one transaction. Safe to run again.
 */
export async function adoptCopy(spec: InstanceSpec, template: OdooTemplate): Promise<void> {
  await asProvisionerIn(spec.database.name, async (c) => {
    await c.query('BEGIN');
    try {
      await c.query(`REASSIGN OWNED BY ${ident(template.role)} TO ${ident(spec.database.user)}`);
      await c.query(`REVOKE ALL ON SCHEMA public FROM ${ident(template.role)}`);
      for (const s of freshCopyStatements()) await c.query(s.text, s.values);
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {});
      throw err;
    }
  });
}

/** `CREATE DATABASE … TEMPLATE` SQL for an instance (ensureInstanceDatabase runs it in place of an empty database). */
export function copySqlFor(spec: InstanceSpec, template: OdooTemplate): string {
  return copyDatabaseSql(spec.database.name, spec.database.user, template.database);
}

/** The template a role/database name belongs to (both share one name). */
export function templateNamed(database: string): OdooTemplate {
  return { database, role: database };
}
