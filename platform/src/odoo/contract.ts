/**
 * The Odoo contract: everything the platform relies on Odoo doing, per
 * supported version, in one place. Every runtime driver (local, Kubernetes,
 * Docker) builds its command lines and `odoo.conf` from here, provisioning
 * runs the SQL from here, and the stand-in (runtime/standin.mjs) is a double
 * of exactly this, so tests exercise the same code path real Odoo would.
 *
 * Pure functions of plain values: no config, no I/O (the password hash uses
 * node:crypto only), so any driver can import it.
 *
 * Sources (Odoo 17.0 / 18.0 / 19.0 branches of github.com/odoo/odoo and the
 * official image github.com/odoo/docker):
 * - command line: odoo/tools/config.py (`-d/--database`, `-i/--init`,
 *   `--stop-after-init`, `--without-demo`, `--with-demo` (19), `--load-language`,
 *   `--no-database-list`, `--proxy-mode`, `-c/--config`), and
 *   https://www.odoo.com/documentation/17.0/developer/reference/cli.html
 * - database creation: odoo/service/db.py `_create_empty_database`
 * - database listing: odoo/service/db.py `list_dbs` and odoo/http.py `db_list` / `db_filter`
 * - passwords: odoo/addons/base/models/res_users.py (`DEFAULT_CRYPT_CONTEXT`,
 *   passlib pbkdf2_sha512, 600 000 rounds), `_login`, `_check_credentials`
 * - health: addons/web/controllers/webclient.py `health` (`/web/health`)
 * - session: addons/web/controllers/session.py `authenticate` (`/web/session/authenticate`)
 * - database copies: odoo/service/db.py `exp_duplicate_database`, `_drop_conn`;
 *   odoo/addons/base/models/ir_config_parameter.py `_default_parameters`, `init(force=True)`
 * - neutralisation (16+): odoo/cli/neutralize.py (`odoo neutralize -d <db>`),
 *   odoo/modules/neutralize.py (each installed module's `data/neutralize.sql`),
 *   odoo/addons/base/data/neutralize.sql (mail servers, crons, `database.is_neutralized`)
 */
import { pbkdf2, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';

// pbkdf2 as a promise, without a top-level call (the module stays free of side effects).
function pbkdf2Async(plain: Buffer, salt: Buffer, rounds: number, length: number, digest: string): Promise<Buffer> {
  return new Promise((resolve, reject) => pbkdf2(plain, salt, rounds, length, digest, (err, key) => (err ? reject(err) : resolve(key))));
}

/**
 * The versions the contract knows (the official image maintains 17, 18 and
 * 19; 16 left it in September 2025). Which of them are on sale is the
 * ODOO_VERSIONS setting, checked against this list.
 */
export const KNOWN_ODOO_VERSIONS = ['17', '18', '19'] as const;
export type OdooVersion = (typeof KNOWN_ODOO_VERSIONS)[number];

export function isKnownVersion(v: string): v is OdooVersion {
  return (KNOWN_ODOO_VERSIONS as readonly string[]).includes(v);
}

/** Odoo's HTTP port (`http_port`, default 8069) and its gevent/websocket port (`gevent_port`, 8072, used when workers > 0). */
export const ODOO_HTTP_PORT = 8069;
export const ODOO_GEVENT_PORT = 8072;
/** The official image's data dir (filestore, sessions, addons): persisted whole. */
export const ODOO_DATA_DIR = '/var/lib/odoo';
/** Where the official image reads its config (`ODOO_RC`). */
export const ODOO_RC = '/etc/odoo/odoo.conf';
/** The language Odoo installs by itself; anything else needs `--load-language`. */
export const DEFAULT_LANG = 'en_US';

/**
 * The line Odoo logs once its HTTP server listens ("HTTP service
 * (werkzeug) running on host:port"; the stand-in logs the same): the
 * runtimes wait for it instead of probing an Odoo that cannot answer yet.
 */
export const ODOO_SERVING_LINE = 'HTTP service (werkzeug) running on';

/** HTTP paths the platform calls. */
export const ODOO_PATHS = {
  /** Liveness: answers without touching the database, so a database blip never restarts Odoo. */
  liveness: '/web/health',
  /**
   * Readiness and the health probe: with `db_server_status` Odoo opens a
   * connection to the `postgres` database and answers 500 `{"status":"fail"}`
   * when it cannot (webclient.py `health`). It only connects (PostgreSQL's
   * default CONNECT for PUBLIC on `postgres`); it lists nothing there.
   */
  readiness: '/web/health?db_server_status=1',
  /** 200 with the login form once the database is initialised. */
  login: '/web/login',
  /** JSON-RPC `{params: {db, login, password}}` → `result.uid`, or `error.data.name` = AccessDenied. */
  authenticate: '/web/session/authenticate',
  /** The bus (websocket) path, served by the gevent port when workers > 0. */
  websocket: '/websocket',
} as const;

/** The tenant database's connection. */
export type OdooDatabase = { host: string; port: number; name: string; user: string; password: string };

/** What the contract needs to know about one instance. */
export type OdooTarget = {
  version: string;
  database: OdooDatabase;
  /** Load demo data at init (Odoo 17/18 load it unless told not to; 19 only when asked). */
  demo?: boolean;
  /** Odoo language code, default en_US. */
  lang?: string;
};

/** Serve settings written to odoo.conf. */
export type OdooServeSettings = {
  /** `data_dir`: ODOO_DATA_DIR in a container, the instance directory locally. */
  dataDir: string;
  /** pbkdf2-sha512 hash of the random per-instance master password (`admin_passwd`). */
  masterPasswordHash: string;
  httpPort?: number;
  /** 0 = threaded server (no gevent port); > 0 = prefork, /websocket on ODOO_GEVENT_PORT. */
  workers?: number;
  geventPort?: number;
  /** Container memory (MiB): the workers' soft/hard limits are derived from it. */
  memoryMiB?: number;
  /** Listen address (`http_interface`); locally 127.0.0.1. */
  httpInterface?: string;
};

function requireKnown(version: string): OdooVersion {
  if (!isKnownVersion(version)) throw new Error(`unsupported Odoo version ${version} (known: ${KNOWN_ODOO_VERSIONS.join(', ')})`);
  return version;
}

/**
 * The demo flag of a version. 17 and 18 load demo data unless
 * `--without-demo=all`; 19 made demo data opt-in (`--with-demo`).
 */
export function demoArgs(version: string, demo: boolean): string[] {
  const v = requireKnown(version);
  if (v === '19') return demo ? ['--with-demo'] : [];
  return demo ? [] : ['--without-demo=all'];
}

/**
 * `odoo -c <conf> -d <db> -i base --stop-after-init` plus the demo flag and
 * `--load-language` when not en_US: Odoo initialises the database and exits
 * (0 on success). Connection settings and the password come from the config
 * file, never the command line (it shows in the process list).
 */
export function initArgs(t: OdooTarget, configPath: string): string[] {
  const lang = t.lang ?? DEFAULT_LANG;
  return ['-c', configPath, '-d', t.database.name, '-i', 'base', '--stop-after-init', ...demoArgs(t.version, t.demo ?? false), ...(lang !== DEFAULT_LANG ? [`--load-language=${lang}`] : [])];
}

/**
 * `odoo -c <conf> -d <db> --no-database-list --proxy-mode`. No `--db-filter`:
 * with one set, `list_dbs` connects to the `postgres` database to list
 * databases; with `-d` alone it serves exactly that database (tenants get
 * nothing on other databases). `--proxy-mode` trusts X-Forwarded-* from
 * the gateway / ingress.
 */
export function serveArgs(t: OdooTarget, configPath: string): string[] {
  requireKnown(t.version);
  return ['-c', configPath, '-d', t.database.name, '--no-database-list', '--proxy-mode'];
}

/**
 * `odoo neutralize -c <conf> -d <db>` (Odoo 16 and later, odoo/cli/neutralize.py):
 * runs every installed module's `data/neutralize.sql` in the database and
 * exits, so a copy of production never mails its customers, runs its
 * scheduled actions or charges their cards (base: outgoing mail servers off
 * and a dummy one in front, crons off but the autovacuum; payment: providers
 * disabled; and so on per module), and sets `database.is_neutralized`, which
 * makes Odoo show its "neutralised" banner. The platform runs it on a staging
 * copy after the restore, before anything can reach it, the same way as init.
 */
export function neutralizeArgs(t: OdooTarget, configPath: string): string[] {
  requireKnown(t.version);
  return ['neutralize', '-c', configPath, '-d', t.database.name];
}

/** The parameter Odoo's neutralisation sets (base/data/neutralize.sql): the proof a copy was neutralised. */
const NEUTRALIZED_PARAMETER = 'database.is_neutralized';
/** Whether the database was neutralised (one row, `neutralized` true, once it ran). */
export const IS_NEUTRALIZED_SQL = `SELECT coalesce((SELECT value FROM ir_config_parameter WHERE key = '${NEUTRALIZED_PARAMETER}'), 'false') IN ('true', 'True', '1') AS neutralized`;

const confValue = (v: string) => {
  if (/[\r\n]/.test(v)) throw new Error('odoo.conf values cannot contain line breaks');
  return v;
};

/**
 * The `odoo.conf` text (INI, section `[options]`; keys are the long option
 * names of odoo/tools/config.py). Holds the database password and the
 * master password hash: keep it in a Secret / a 0600 file, never a ConfigMap.
 */
export function configFile(t: OdooTarget, s: OdooServeSettings): string {
  requireKnown(t.version);
  const workers = s.workers ?? 0;
  const mem = s.memoryMiB ?? 2048;
  const opts: [string, string | number | boolean][] = [
    ['db_host', t.database.host],
    ['db_port', t.database.port],
    ['db_user', t.database.user],
    ['db_password', t.database.password],
    ['db_name', t.database.name],
    ['list_db', false],
    ['proxy_mode', true],
    ['admin_passwd', s.masterPasswordHash],
    ['data_dir', s.dataDir],
    ['http_port', s.httpPort ?? ODOO_HTTP_PORT],
    ...(s.httpInterface ? [['http_interface', s.httpInterface] as [string, string]] : []),
    ['workers', workers],
    ...(workers > 0
      ? ([
          ['gevent_port', s.geventPort ?? ODOO_GEVENT_PORT],
          // Per worker, leaving room for the gevent process: soft at 1/(workers+1) of the memory, hard 20% above.
          ['limit_memory_soft', Math.floor((mem * 1024 * 1024) / (workers + 1))],
          ['limit_memory_hard', Math.floor(((mem * 1024 * 1024) / (workers + 1)) * 1.2)],
        ] as [string, number][])
      : []),
  ];
  return `[options]\n${opts.map(([k, v]) => `${k} = ${confValue(String(v))}`).join('\n')}\n`;
}

/** Odoo workers for a plan's CPUs (Odoo's rule of thumb: 2 × CPU + 1; none on a one-CPU plan, which runs threaded). */
export function workersFor(cpu: number): number {
  return cpu <= 1 ? 0 : Math.floor(cpu) * 2 + 1;
}

// ---- the database, as Odoo creates its own (odoo/service/db.py `_create_empty_database`) ----

const ident = (s: string) => `"${s.replace(/"/g, '""')}"`;

/**
 * `CREATE DATABASE` as Odoo does: from template0, UTF8, LC_COLLATE 'C'
 * (Odoo 17+ relies on byte order for its indexes), owned by the tenant role.
 * Run by the provisioner (CREATEDB, member of the role).
 */
export function createDatabaseSql(database: string, owner: string): string {
  return `CREATE DATABASE ${ident(database)} OWNER ${ident(owner)} ENCODING 'UTF8' LC_COLLATE 'C' TEMPLATE template0`;
}

/**
 * Run in the new database as its owner: Odoo creates pg_trgm there itself
 * (trusted since PostgreSQL 13, so the owner may) for its trigram indexes.
 */
export const CREATE_EXTENSIONS_SQL = 'CREATE EXTENSION IF NOT EXISTS pg_trgm';

// ---- fast init: a copy of a template database (odoo/service/db.py `exp_duplicate_database`) ----

/**
 * `CREATE DATABASE … TEMPLATE`: a copy of a database that the same init
 * command initialised, as Odoo's own duplication does (`exp_duplicate_database`
 * runs `CREATE DATABASE "new" ENCODING 'unicode' TEMPLATE "old"` after
 * `_drop_conn` closed the template's connections; ours has none: it is marked
 * IS_TEMPLATE and ALLOW_CONNECTIONS false). Encoding and LC_COLLATE come from
 * the template, which createDatabaseSql made. Run by the provisioner.
 */
export function copyDatabaseSql(database: string, owner: string, template: string): string {
  return `CREATE DATABASE ${ident(database)} OWNER ${ident(owner)} TEMPLATE ${ident(template)}`;
}

/**
 * Licence parameters of Odoo Enterprise (`publisher_warranty`, the
 * expiration banner): a copy must not carry the template's.
 */
export const LICENCE_PARAMETERS = [
  'database.enterprise_code',
  'database.expiration_date',
  'database.expiration_reason',
  'database.already_linked_subscription_url',
  'database.already_linked_email',
  'database.already_linked_send_mail_url',
] as const;

/** A version 1 UUID (time and random node), the form Odoo gives `database.uuid` (`uuid.uuid1()`). */
export function uuid1(now = Date.now()): string {
  // 100 ns intervals since 1582-10-15 (the Gregorian reform), as RFC 4122 counts them.
  const t = BigInt(now) * 10000n + 0x01b21dd213814000n + BigInt(randomBytes(2).readUInt16BE(0) % 10000);
  const hex = t.toString(16).padStart(15, '0');
  const r = randomBytes(8);
  r[0] = (r[0] & 0x3f) | 0x80; // variant RFC 4122
  r[2] |= 0x01; // multicast bit: a random node, not a MAC address (RFC 4122 4.5)
  const rh = r.toString('hex');
  return `${hex.slice(7, 15)}-${hex.slice(3, 7)}-1${hex.slice(0, 3)}-${rh.slice(0, 4)}-${rh.slice(4, 16)}`;
}

/**
 * What Odoo does to a copy after `CREATE DATABASE … TEMPLATE`
 * (`exp_duplicate_database` → `ir.config_parameter.init(force=True)`, whose
 * `_default_parameters` are a new `database.secret` (uuid4), `database.uuid`
 * (uuid1), `database.create_date` (now) and `web.base.url` reset to
 * localhost): else every tenant would share the template's signing secret.
 * No licence parameter is carried over. Run in the copy, in one transaction.
 */
export function freshCopyStatements(o: { httpPort?: number; now?: Date } = {}): Statement[] {
  const now = (o.now ?? new Date()).toISOString().slice(0, 19).replace('T', ' ');
  const param = (key: string, value: string): Statement => ({
    text: `INSERT INTO ir_config_parameter (key, value, create_uid, create_date, write_uid, write_date)
           VALUES ($1, $2, 1, now() at time zone 'UTC', 1, now() at time zone 'UTC')
           ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, write_date = EXCLUDED.write_date`,
    values: [key, value],
  });
  return [
    param('database.secret', randomUUID()),
    param('database.uuid', uuid1()),
    param('database.create_date', now),
    param('web.base.url', `http://localhost:${o.httpPort ?? ODOO_HTTP_PORT}`),
    { text: `DELETE FROM ir_config_parameter WHERE key = ANY($1::text[]) OR key = 'web.base.url.freeze'`, values: [[...LICENCE_PARAMETERS]] },
  ];
}

// ---- readiness ----

/** One row with `state` = 'installed' once `-i base` has finished (ir_module_module). */
export const BASE_INSTALLED_SQL = `SELECT state FROM ir_module_module WHERE name = 'base'`;
/** Whether the database was initialised at all (table present) — to_regclass answers null otherwise. */
export const IS_INITIALISED_SQL = `SELECT to_regclass('public.ir_module_module') IS NOT NULL AS initialised`;

// ---- configure: the customer's login, the company name, the URL ----

/** What configure writes. `passwordHash` is already an Odoo (passlib pbkdf2-sha512) hash. */
export type ConfigureInput = {
  login: string;
  passwordHash: string;
  /** The customer's name for their Odoo user (its partner). */
  userName: string;
  email: string;
  lang?: string;
  /** Company name: the instance's name. */
  companyName: string;
  /** `web.base.url`, frozen. */
  baseUrl: string;
};

export type Statement = { text: string; values: unknown[] };

/**
 * The configure statements, in order, to run in ONE transaction as the
 * tenant role, after init and before anything can reach Odoo (so `admin` /
 * `admin` never works). The admin user is found by its XML id
 * (`base.user_admin` in ir_model_data), not by id; name, email and lang live
 * on its partner (res.users `_inherits` res.partner); the company name is
 * stored on res_company and on its partner (with `complete_name`, a stored
 * compute since 16). `web.base.url.freeze` stops the first admin login from
 * rewriting `web.base.url` with the request's host (ir_http `_authenticate`
 * → `web.base.url` update unless frozen).
 *
 * Each statement must affect a row: `configure` checks the admin user and
 * main company were found.
 */
const param = (key: string, value: string): Statement => ({
  text: `INSERT INTO ir_config_parameter (key, value, create_uid, create_date, write_uid, write_date)
         VALUES ($1, $2, 1, now() at time zone 'UTC', 1, now() at time zone 'UTC')
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, write_date = EXCLUDED.write_date`,
  values: [key, value],
});

/** `web.base.url`, frozen: the address Odoo puts in its own links and mails (configure, and a new primary custom domain). */
export function baseUrlStatements(baseUrl: string): Statement[] {
  return [param('web.base.url', baseUrl), param('web.base.url.freeze', 'True')];
}

export function configureStatements(c: ConfigureInput): Statement[] {
  const lang = c.lang ?? DEFAULT_LANG;
  const admin = `(SELECT res_id FROM ir_model_data WHERE module = 'base' AND name = 'user_admin' AND model = 'res.users')`;
  const company = `(SELECT res_id FROM ir_model_data WHERE module = 'base' AND name = 'main_company' AND model = 'res.company')`;
  return [
    { text: `UPDATE res_users SET login = $1, password = $2, write_date = now() at time zone 'UTC' WHERE id = ${admin}`, values: [c.login, c.passwordHash] },
    {
      text: `UPDATE res_partner SET name = $1, complete_name = $1, email = $2, lang = $3, write_date = now() at time zone 'UTC'
              WHERE id = (SELECT partner_id FROM res_users WHERE id = ${admin})`,
      values: [c.userName, c.email, lang],
    },
    { text: `UPDATE res_company SET name = $1, write_date = now() at time zone 'UTC' WHERE id = ${company}`, values: [c.companyName] },
    {
      text: `UPDATE res_partner SET name = $1, complete_name = $1, write_date = now() at time zone 'UTC'
              WHERE id = (SELECT partner_id FROM res_company WHERE id = ${company})`,
      values: [c.companyName],
    },
    ...baseUrlStatements(c.baseUrl),
  ];
}

/** Only the password (reset_odoo_password): the same admin user, found the same way. */
export function setPasswordStatements(passwordHash: string): Statement[] {
  return [
    {
      text: `UPDATE res_users SET password = $1, write_date = now() at time zone 'UTC'
           WHERE id = (SELECT res_id FROM ir_model_data WHERE module = 'base' AND name = 'user_admin' AND model = 'res.users')`,
      values: [passwordHash],
    },
  ];
}

// ---- passwords as Odoo stores them: passlib pbkdf2_sha512 ----

/** Odoo's rounds (res_users.py DEFAULT_CRYPT_CONTEXT `pbkdf2_sha512__rounds=600_000`). */
export const ODOO_PBKDF2_ROUNDS = 600_000;

/**
 * Rounds for the hash of a random secret nobody ever types (the master
 * password: 144 random bits, thrown away once hashed). Rounds slow down
 * guessing from a dictionary; there is none for such a secret, so Odoo's
 * 600,000 (about a second of a core on every provisioning) buy nothing.
 */
export const RANDOM_SECRET_PBKDF2_ROUNDS = 1000;

/** passlib's "adapted base64": standard alphabet with '.' for '+', no padding (passlib.utils.binary.ab64_encode). */
export function ab64Encode(b: Buffer): string {
  return b.toString('base64').replace(/\+/g, '.').replace(/=+$/, '');
}

export function ab64Decode(s: string): Buffer {
  return Buffer.from(s.replace(/\./g, '+'), 'base64');
}

/**
 * `$pbkdf2-sha512$<rounds>$<salt>$<checksum>`: PBKDF2-HMAC-SHA512, 16-byte
 * salt, 64-byte key, both in adapted base64 — passlib's pbkdf2_sha512, the
 * format Odoo writes to res_users.password and verifies. Also used for
 * `admin_passwd` in odoo.conf (tools/config.py `verify_admin_password`).
 */
export async function odooPasswordHash(plain: string, o: { rounds?: number; salt?: Buffer } = {}): Promise<string> {
  const rounds = o.rounds ?? ODOO_PBKDF2_ROUNDS;
  const salt = o.salt ?? randomBytes(16);
  const key = await pbkdf2Async(Buffer.from(plain, 'utf8'), salt, rounds, 64, 'sha512');
  return `$pbkdf2-sha512$${rounds}$${ab64Encode(salt)}$${ab64Encode(key)}`;
}

/** Verifies `plain` against a passlib pbkdf2_sha512 hash (false for anything else). */
export async function verifyOdooPassword(plain: string, hash: string): Promise<boolean> {
  const m = /^\$pbkdf2-sha512\$(\d{1,9})\$([A-Za-z0-9./]+)\$([A-Za-z0-9./]+)$/.exec(hash);
  if (!m) return false;
  const rounds = Number(m[1]);
  const want = ab64Decode(m[3]);
  if (rounds < 1 || want.length !== 64) return false;
  const got = await pbkdf2Async(Buffer.from(plain, 'utf8'), ab64Decode(m[2]), rounds, 64, 'sha512');
  return timingSafeEqual(got, want);
}

// ---- from an instance spec ----

/** The contract's view of a runtime InstanceSpec (drivers call this). */
export function targetOf(spec: { odooVersion: string; database: OdooDatabase; demoData?: boolean; lang?: string }): OdooTarget {
  return { version: spec.odooVersion, database: spec.database, demo: spec.demoData ?? false, lang: spec.lang ?? DEFAULT_LANG };
}

/** Serve settings from an instance spec's plan resources; `dataDir` and the listen address are the driver's. */
export function serveSettingsOf(
  spec: { resources: { cpu: number; memoryMiB: number }; masterPasswordHash?: string },
  o: { dataDir: string; httpPort?: number; httpInterface?: string; workers?: number },
): OdooServeSettings {
  if (!spec.masterPasswordHash) throw new Error('the instance has no master password hash');
  return {
    dataDir: o.dataDir,
    httpPort: o.httpPort,
    httpInterface: o.httpInterface,
    masterPasswordHash: spec.masterPasswordHash,
    workers: o.workers ?? workersFor(spec.resources.cpu),
    memoryMiB: spec.resources.memoryMiB,
  };
}
