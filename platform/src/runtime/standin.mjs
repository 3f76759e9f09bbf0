/**
 * The stand-in for Odoo (used when ODOO_COMMAND is unset): a double of the
 * Odoo contract (platform/src/odoo/contract.ts), run with exactly the
 * command line and odoo.conf real Odoo gets, so the platform's code path is
 * the same with or without Odoo:
 *
 * - it accepts only the flags the platform passes and, like Odoo's optparse,
 *   exits 2 on any other;
 * - `-i base --stop-after-init` initialises the database with the tables and
 *   rows the contract reads (ir_module_module with base installed and its
 *   demo flag, ir_model_data XML ids, res_users with admin/admin as Odoo
 *   leaves it, res_partner, res_company, res_lang, ir_config_parameter with
 *   database.secret/uuid/create_date) and exits;
 * - serving, it refuses an uninitialised database as Odoo does (an error page,
 *   not a login form), shows a login form on GET /web/login, verifies POST
 *   /web/session/authenticate against res_users (passlib pbkdf2-sha512) and
 *   answers AccessDenied as a JSON-RPC error with HTTP 200 as Odoo does;
 *   /web/health passes without touching the database, and with
 *   `db_server_status` fails when the database server cannot be reached;
 * - `neutralize -c <conf> -d <db>` runs what base's `data/neutralize.sql` does
 *   (the only module it installs): outgoing mail servers off behind a dummy
 *   one, crons off but the autovacuum, `database.is_neutralized` set, and
 *   exits; `--stdout` prints the SQL instead, as Odoo's command does.
 *
 * Every page says plainly that this is a stand-in, not Odoo. Plain
 * JavaScript on purpose: without the TypeScript loader a stand-in costs
 * about 13 MB instead of 90 MB, so a laptop can run hundreds.
 */
// @ts-check
import { createHash, pbkdf2Sync, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import pg from 'pg';

/** @param {string} msg @returns {never} */
function usageError(msg) {
  process.stderr.write(`Usage: odoo-bin [options]\n\nodoo-bin: error: ${msg}\n`);
  process.exit(2);
}

// ---- command line: exactly the contract's flags (contract.ts PLATFORM_FLAGS) ----
const version = process.env.ODOO_VERSION ?? '17';
/** @type {{ command?: 'neutralize'; toStdout?: boolean; config?: string; database?: string; init?: string; stopAfterInit: boolean; withoutDemo?: string; withDemo: boolean; lang?: string; listDb: boolean; proxyMode: boolean }} */
const opts = { stopAfterInit: false, withDemo: false, listDb: true, proxyMode: false };
{
  const argv = process.argv.slice(2);
  // odoo-bin's commands come first (odoo/cli/command.py `main`): a first argument without a dash names one.
  if (argv[0] && !argv[0].startsWith('-')) {
    if (argv[0] !== 'neutralize') usageError(`unknown command ${argv[0]}`);
    opts.command = 'neutralize';
    argv.shift();
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = () => {
      if (inline !== undefined) return inline;
      const v = argv[++i];
      if (v === undefined) usageError(`${flag} option requires 1 argument`);
      return v;
    };
    switch (flag) {
      case '-c':
        opts.config = value();
        break;
      case '-d':
        opts.database = value();
        break;
      case '-i':
        opts.init = value();
        break;
      case '--stop-after-init':
        opts.stopAfterInit = true;
        break;
      case '--without-demo':
        opts.withoutDemo = value();
        break;
      case '--load-language':
        opts.lang = value();
        break;
      case '--no-database-list':
        opts.listDb = false;
        break;
      case '--proxy-mode':
        opts.proxyMode = true;
        break;
      case '--stdout':
        if (!opts.command) usageError('no such option: --stdout');
        opts.toStdout = true;
        break;
      case '--with-demo':
        // Odoo 19 made demo data opt-in; earlier versions have no such option.
        if (Number(version) < 19) usageError('no such option: --with-demo');
        opts.withDemo = true;
        break;
      default:
        usageError(`no such option: ${flag}`);
    }
  }
}
if (!opts.config) usageError('the platform always passes -c <odoo.conf>');

/** odoo.conf: INI, section [options] (odoo/tools/config.py). @type {Record<string, string>} */
const conf = {};
try {
  for (const line of fs.readFileSync(opts.config, 'utf8').split('\n')) {
    const m = /^\s*([a-z_]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (m) conf[m[1]] = m[2];
  }
} catch (err) {
  usageError(`cannot read the config file ${opts.config}: ${/** @type {Error} */ (err).message}`);
}
const dbName = opts.database ?? conf.db_name;
if (!dbName) usageError('no database (-d)');
const dataDir = conf.data_dir ?? path.join(process.cwd(), '.local/share/Odoo');
/** @param {string} [database] */
const pgConfig = (database = dbName) => ({
  host: conf.db_host,
  port: Number(conf.db_port || 5432),
  user: conf.db_user,
  password: conf.db_password,
  database,
  connectionTimeoutMillis: 3000,
  statement_timeout: 5000,
});

/** @param {string} s */
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
/** @param {Buffer} b */
const ab64 = (b) => b.toString('base64').replace(/\+/g, '.').replace(/=+$/, '');

/** passlib pbkdf2_sha512 as Odoo's res.users writes it (600 000 rounds). @param {string} plain */
function odooHash(plain, rounds = 600_000) {
  const salt = randomBytes(16);
  return `$pbkdf2-sha512$${rounds}$${ab64(salt)}$${ab64(pbkdf2Sync(plain, salt, rounds, 64, 'sha512'))}`;
}

/** @param {string} plain @param {string} hash */
function verifyHash(plain, hash) {
  const m = /^\$pbkdf2-sha512\$(\d{1,9})\$([A-Za-z0-9./]+)\$([A-Za-z0-9./]+)$/.exec(hash ?? '');
  if (!m) return false;
  const want = Buffer.from(m[3].replace(/\./g, '+'), 'base64');
  if (want.length !== 64) return false;
  const got = pbkdf2Sync(plain, Buffer.from(m[2].replace(/\./g, '+'), 'base64'), Number(m[1]), 64, 'sha512');
  return timingSafeEqual(got, want);
}

// ---- init: what `odoo -i base --stop-after-init` leaves in the database ----
async function init() {
  if (opts.init !== 'base' || !opts.stopAfterInit) usageError('the stand-in initialises with -i base --stop-after-init only');
  const demo = Number(version) >= 19 ? opts.withDemo : opts.withoutDemo === undefined;
  const lang = opts.lang ?? 'en_US';
  const client = new pg.Client(pgConfig());
  try {
    await client.connect();
  } catch (err) {
    process.stderr.write(`odoo.sql_db: Connection to the database failed: ${/** @type {Error} */ (err).message}\n`);
    process.exit(1);
  }
  try {
    const done = await client.query(`SELECT to_regclass('public.ir_module_module') IS NOT NULL AS t`);
    if (done.rows[0].t) {
      // Odoo would update base: nothing the contract reads changes.
      process.stdout.write(`odoo.modules.loading: base already installed in ${dbName}\n`);
      return;
    }
    await client.query('BEGIN');
    await client.query(`
      CREATE TABLE ir_module_module (id serial PRIMARY KEY, name varchar NOT NULL UNIQUE, state varchar, demo boolean DEFAULT false,
        latest_version varchar, create_date timestamp, write_date timestamp);
      CREATE TABLE ir_model_data (id serial PRIMARY KEY, module varchar NOT NULL, name varchar NOT NULL, model varchar NOT NULL,
        res_id integer, noupdate boolean DEFAULT false, UNIQUE (module, name));
      CREATE TABLE res_lang (id serial PRIMARY KEY, name varchar NOT NULL, code varchar NOT NULL UNIQUE, active boolean);
      CREATE TABLE res_partner (id serial PRIMARY KEY, name varchar, complete_name varchar, email varchar, lang varchar,
        company_id integer, active boolean DEFAULT true, create_date timestamp, write_date timestamp);
      CREATE TABLE res_company (id serial PRIMARY KEY, name varchar NOT NULL, partner_id integer NOT NULL REFERENCES res_partner (id),
        create_date timestamp, write_date timestamp);
      CREATE TABLE res_users (id serial PRIMARY KEY, login varchar NOT NULL, password varchar, partner_id integer NOT NULL REFERENCES res_partner (id),
        company_id integer REFERENCES res_company (id), active boolean DEFAULT true, share boolean DEFAULT false,
        create_date timestamp, write_date timestamp, CONSTRAINT res_users_login_key UNIQUE (login));
      CREATE TABLE ir_config_parameter (id serial PRIMARY KEY, key varchar NOT NULL, value text NOT NULL, create_uid integer,
        create_date timestamp, write_uid integer, write_date timestamp, CONSTRAINT ir_config_parameter_key_uniq UNIQUE (key));
      CREATE TABLE ir_cron (id serial PRIMARY KEY, cron_name varchar NOT NULL, active boolean DEFAULT true, interval_number integer,
        interval_type varchar, nextcall timestamp, create_date timestamp, write_date timestamp);
      CREATE TABLE ir_mail_server (id serial PRIMARY KEY, name varchar NOT NULL, smtp_host varchar, smtp_port integer, smtp_encryption varchar,
        smtp_authentication varchar, smtp_user varchar, active boolean DEFAULT true, sequence integer DEFAULT 10, create_date timestamp, write_date timestamp);
      CREATE TABLE ir_attachment (id serial PRIMARY KEY, name varchar NOT NULL, res_model varchar, res_id integer, store_fname varchar,
        checksum varchar(40), file_size integer, mimetype varchar, create_date timestamp, write_date timestamp);`);
    const now = `now() at time zone 'UTC'`;
    const xmlid = (/** @type {string} */ name, /** @type {string} */ model, /** @type {number} */ id) =>
      client.query('INSERT INTO ir_model_data (module, name, model, res_id, noupdate) VALUES ($1, $2, $3, $4, true)', ['base', name, model, id]);
    const partner = async (/** @type {string} */ name, /** @type {string | null} */ email) =>
      (
        await client.query(`INSERT INTO res_partner (name, complete_name, email, lang, company_id, create_date, write_date) VALUES ($1, $1, $2, $3, 1, ${now}, ${now}) RETURNING id`, [
          name,
          email,
          lang,
        ])
      ).rows[0].id;
    const user = async (/** @type {string} */ login, /** @type {string} */ password, /** @type {number} */ partnerId, active = true) =>
      (
        await client.query(`INSERT INTO res_users (login, password, partner_id, company_id, active, create_date, write_date) VALUES ($1, $2, $3, 1, $4, ${now}, ${now}) RETURNING id`, [
          login,
          password,
          partnerId,
          active,
        ])
      ).rows[0].id;
    const mainPartner = await partner('My Company', 'info@yourcompany.com');
    const company = (await client.query(`INSERT INTO res_company (name, partner_id, create_date, write_date) VALUES ('My Company', $1, ${now}, ${now}) RETURNING id`, [mainPartner])).rows[0].id;
    await xmlid('main_partner', 'res.partner', mainPartner);
    await xmlid('main_company', 'res.company', company);
    // Ids as Odoo has them: 1 is the inactive superuser __system__, 2 the administrator (admin/admin).
    const rootPartner = await partner('OdooBot', 'odoobot@example.com');
    await xmlid('partner_root', 'res.partner', rootPartner);
    await xmlid('user_root', 'res.users', await user('__system__', '', rootPartner, false));
    const adminPartner = await partner('Administrator', 'admin@example.com');
    await xmlid('partner_admin', 'res.partner', adminPartner);
    await xmlid('user_admin', 'res.users', await user('admin', odooHash('admin'), adminPartner));
    if (demo) {
      const demoPartner = await partner('Marc Demo', 'mark.brown23@example.com');
      await xmlid('partner_demo', 'res.partner', demoPartner);
      await xmlid('user_demo', 'res.users', await user('demo', odooHash('demo'), demoPartner));
    }
    // Base's scheduled actions (a neutralisation keeps only the autovacuum running).
    for (const [xml, cron] of [
      ['autovacuum_job', 'Base: Auto-vacuum internal data'],
      ['ir_cron_res_users_deletion', 'Base: Portal Users Deletion'],
    ]) {
      const id = (
        await client.query(
          `INSERT INTO ir_cron (cron_name, active, interval_number, interval_type, nextcall, create_date, write_date) VALUES ($1, true, 1, 'days', ${now}, ${now}, ${now}) RETURNING id`,
          [cron],
        )
      ).rows[0].id;
      await client.query('INSERT INTO ir_model_data (module, name, model, res_id, noupdate) VALUES ($1, $2, $3, $4, true)', ['base', xml, 'ir.cron', id]);
    }
    for (const name of ['base', 'web']) {
      await client.query(`INSERT INTO ir_module_module (name, state, demo, latest_version, create_date, write_date) VALUES ($1, 'installed', $2, $3, ${now}, ${now})`, [
        name,
        demo,
        `${version}.0.1.3`,
      ]);
    }
    await client.query(`INSERT INTO res_lang (name, code, active) VALUES ('English (US)', 'en_US', true)`);
    if (lang !== 'en_US') await client.query('INSERT INTO res_lang (name, code, active) VALUES ($1, $1, true)', [lang]);
    // What Odoo's ir.config_parameter `init` writes on a new database.
    for (const [key, value] of [
      ['database.secret', randomUUID()],
      ['database.uuid', randomUUID()],
      ['database.create_date', new Date().toISOString().slice(0, 19).replace('T', ' ')],
      ['web.base.url', `http://localhost:${conf.http_port || 8069}`],
    ]) {
      await client.query(`INSERT INTO ir_config_parameter (key, value, create_uid, create_date, write_uid, write_date) VALUES ($1, $2, 1, ${now}, 1, ${now})`, [key, value]);
    }
    // Attachments live in the filestore as Odoo keeps them (ir_attachment `_file_write`: <data_dir>/filestore/<db>/<sha1[:2]>/<sha1>).
    const logo = Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><text y="8">${version}</text></svg>`);
    const sha = createHash('sha1').update(logo).digest('hex');
    const fname = `${sha.slice(0, 2)}/${sha}`;
    await client.query(
      `INSERT INTO ir_attachment (name, res_model, res_id, store_fname, checksum, file_size, mimetype, create_date, write_date)
      VALUES ('logo', 'res.company', $1, $2, $3, $4, 'image/svg+xml', ${now}, ${now})`,
      [company, fname, sha, logo.length],
    );
    fs.mkdirSync(path.join(dataDir, 'filestore', dbName, sha.slice(0, 2)), { recursive: true, mode: 0o700 });
    fs.writeFileSync(path.join(dataDir, 'filestore', dbName, fname), logo, { mode: 0o600 });
    await client.query('COMMIT');
    process.stdout.write(`odoo.modules.loading: base installed in ${dbName} (stand-in for Odoo ${version}; demo ${demo})\n`);
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    process.stderr.write(`odoo.modules.loading: init failed: ${/** @type {Error} */ (err).message}\n`);
    process.exitCode = 1;
  } finally {
    await client.end().catch(() => {});
  }
}

// ---- neutralize: what `odoo neutralize` does with base installed (odoo/addons/base/data/neutralize.sql) ----

const NEUTRALIZE_SQL = `-- deactivate mail servers
UPDATE ir_mail_server
   SET active = false;

-- insert dummy mail server to prevent using fallback servers specified using command line
INSERT INTO ir_mail_server(name, smtp_port, smtp_host, smtp_encryption, active, smtp_authentication)
VALUES ('neutralization - disable emails', 1025, 'invalid', 'none', true, 'login');

-- deactivate crons
UPDATE ir_cron
   SET active = false
 WHERE id NOT IN (
       SELECT res_id
         FROM ir_model_data
        WHERE model = 'ir.cron'
          AND name = 'autovacuum_job'
);

-- neutralization flag for the database
INSERT INTO ir_config_parameter (key, value)
VALUES ('database.is_neutralized', true)
    ON CONFLICT (key) DO
       UPDATE SET value = true;
`;

async function neutralize() {
  if (opts.init || opts.stopAfterInit) usageError('neutralize takes neither -i nor --stop-after-init');
  if (opts.toStdout) {
    // odoo/cli/neutralize.py --stdout: the queries, in a transaction, for a human to run.
    process.stdout.write(`BEGIN;\n${NEUTRALIZE_SQL}COMMIT;\n`);
    return;
  }
  const client = new pg.Client(pgConfig());
  try {
    await client.connect();
  } catch (err) {
    process.stderr.write(`odoo.sql_db: Connection to the database failed: ${/** @type {Error} */ (err).message}\n`);
    process.exit(1);
  }
  try {
    const done = await client.query(`SELECT to_regclass('public.ir_module_module') IS NOT NULL AS t`);
    if (!done.rows[0].t) throw new Error(`database ${dbName} is not initialised`);
    // One transaction, as Odoo runs the installed modules' scripts in one cursor.
    await client.query('BEGIN');
    await client.query(NEUTRALIZE_SQL);
    await client.query('COMMIT');
    process.stdout.write(`odoo.modules.neutralize: Neutralization finished for ${dbName} (stand-in for Odoo ${version})\n`);
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    process.stderr.write(`odoo.modules.neutralize: Neutralization failed: ${/** @type {Error} */ (err).message}\n`);
    process.exitCode = 1;
  } finally {
    await client.end().catch(() => {});
  }
}

// ---- serve ----

/**
 * @template T
 * @param {(c: pg.Client) => Promise<T>} fn
 * @param {string} [database]
 */
async function withDb(fn, database) {
  const client = new pg.Client(pgConfig(database));
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** @returns {Promise<{ ok: true; initialised: boolean; company?: string; neutralized?: boolean; tables: number } | { ok: false; error: string }>} */
async function readDatabase() {
  try {
    return await withDb(async (c) => {
      const r = await c.query(`SELECT (SELECT count(*) FROM pg_tables WHERE schemaname = 'public') AS tables,
        to_regclass('public.ir_module_module') IS NOT NULL AS has_modules`);
      const tables = Number(r.rows[0].tables);
      if (!r.rows[0].has_modules) return { ok: true, initialised: false, tables };
      const base = await c.query(`SELECT state FROM ir_module_module WHERE name = 'base'`);
      const company = await c.query(`SELECT c.name FROM res_company c JOIN ir_model_data d ON d.res_id = c.id AND d.module = 'base' AND d.name = 'main_company'`);
      // web.neutralize_banner: Odoo says so on every page of a neutralised database.
      const neutralized = await c.query(`SELECT value FROM ir_config_parameter WHERE key = 'database.is_neutralized'`);
      return { ok: true, initialised: base.rows[0]?.state === 'installed', company: company.rows[0]?.name, neutralized: ['true', 'True'].includes(neutralized.rows[0]?.value), tables };
    });
  } catch (err) {
    return { ok: false, error: /** @type {Error} */ (err).message };
  }
}

const notice = () => `<p><strong>This is a stand-in, not Odoo.</strong> SaaSOdoo runs this small server in place of Odoo ${esc(version)}
because no <code>ODOO_COMMAND</code> is configured on this machine. It keeps Odoo's database, login and health contract.</p>`;

/** @param {string} title @param {string} body */
const html = (title, body) => `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)} (stand-in for Odoo)</title></head>
<body style="font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;line-height:1.5">
${body}
</body></html>`;

/** @param {http.ServerResponse} res @param {number} status @param {string} body @param {string} [type] */
function send(res, status, body, type = 'text/html; charset=utf-8') {
  res.writeHead(status, { 'content-type': type, 'x-saasodoo-standin': '1', 'cache-control': 'no-store' });
  res.end(body);
}

/** Odoo's answer when the database was never initialised: an error, not a login form. */
function notInitialised(res) {
  send(
    res,
    500,
    html(
      'Internal Server Error',
      `<h1>Internal Server Error</h1>
<p>Database <code>${esc(dbName)}</code> not initialized, you can force it with <code>-i base</code>.</p>${notice()}`,
    ),
  );
}

/** Odoo's `web.neutralize_banner`, which a neutralised database shows on its pages. */
const NEUTRALIZED_BANNER = '<p id="neutralize_banner" style="background:#fde68a;padding:.5rem"><strong>This database is neutralized.</strong></p>';

/** @param {http.IncomingMessage} req */
async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const c of req) {
    size += c.length;
    if (size > 1024 * 1024) throw new Error('body too large');
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** @param {unknown} id @param {string} name @param {string} message */
const rpcError = (id, name, message) =>
  JSON.stringify({
    jsonrpc: '2.0',
    id,
    error: { code: 200, message: 'Odoo Server Error', data: { name, debug: '', message, arguments: [message], context: {} } },
  });

/** POST /web/session/authenticate: JSON-RPC {params: {db, login, password}} (addons/web/controllers/session.py). */
async function authenticate(req, res) {
  let id = null;
  let params;
  try {
    const body = JSON.parse(await readBody(req));
    id = body?.id ?? null;
    params = body?.params ?? {};
  } catch {
    return send(res, 400, html('Bad Request', '<h1>Bad Request</h1><p>Invalid JSON data</p>'));
  }
  const { db, login, password } = params;
  if (db !== dbName) return send(res, 200, rpcError(id, 'odoo.exceptions.AccessError', 'Database not found.'), 'application/json');
  const state = await readDatabase();
  if (!state.ok || !state.initialised) return notInitialised(res);
  const user =
    typeof login === 'string' && typeof password === 'string' && login && password
      ? await withDb(
          async (c) =>
            (
              await c.query(
                `SELECT u.id, u.login, u.password, u.partner_id, u.company_id, p.name FROM res_users u JOIN res_partner p ON p.id = u.partner_id
        WHERE u.login = $1 AND u.active`,
                [login],
              )
            ).rows[0],
        )
      : undefined;
  if (!user || !verifyHash(password, user.password)) {
    return send(res, 200, rpcError(id, 'odoo.exceptions.AccessDenied', 'Access Denied'), 'application/json');
  }
  res.setHeader('set-cookie', `session_id=${randomBytes(20).toString('hex')}; HttpOnly; Path=/; SameSite=Lax`);
  send(
    res,
    200,
    JSON.stringify({
      jsonrpc: '2.0',
      id,
      result: { uid: user.id, db: dbName, username: user.login, name: user.name, partner_id: user.partner_id, company_id: user.company_id, server_version: `${version}.0`, standin: true },
    }),
    'application/json',
  );
}

async function serve() {
  if (opts.init || opts.stopAfterInit) usageError('serving takes neither -i nor --stop-after-init');
  fs.mkdirSync(path.join(dataDir, 'sessions'), { recursive: true, mode: 0o700 });
  const name = process.env.INSTANCE_NAME ?? 'instance';
  const server = http.createServer(async (req, res) => {
    try {
      const url = new URL(req.url ?? '/', 'http://standin');
      if (url.pathname === '/web/health') {
        // addons/web/controllers/webclient.py `health`: db_server_status connects to the `postgres` database.
        if (!url.searchParams.get('db_server_status')) return send(res, 200, JSON.stringify({ status: 'pass' }), 'application/json');
        const up = await withDb(async (c) => c.query('SELECT 1'), 'postgres').then(
          () => true,
          () => false,
        );
        return send(res, up ? 200 : 500, JSON.stringify({ status: up ? 'pass' : 'fail', db_server_status: up }), 'application/json');
      }
      if (url.pathname === '/web/session/authenticate' && req.method === 'POST') return await authenticate(req, res);
      if (url.pathname === '/web/login' && req.method === 'GET') {
        const state = await readDatabase();
        if (!state.ok) return send(res, 500, html('Internal Server Error', `<h1>Internal Server Error</h1><p>The database is not reachable.</p>${notice()}`));
        if (!state.initialised) return notInitialised(res);
        return send(
          res,
          200,
          html(
            state.company ?? name,
            `${state.neutralized ? NEUTRALIZED_BANNER : ''}<h1>${esc(state.company ?? name)}</h1>${notice()}
<form class="oe_login_form" method="post" action="/web/login">
<input type="hidden" name="db" value="${esc(dbName)}">
<p><label for="login">Email</label> <input id="login" name="login" type="text" autocomplete="username" required></p>
<p><label for="password">Password</label> <input id="password" name="password" type="password" autocomplete="current-password" required></p>
<p><button type="submit">Log in</button></p>
</form>`,
          ),
        );
      }
      if (url.pathname === '/web/login' && req.method === 'POST') {
        // A browser's form post: checked like authenticate, answered with a page (no Odoo web client here).
        const form = new URLSearchParams(await readBody(req));
        const user = await withDb(async (c) => (await c.query('SELECT id, password FROM res_users WHERE login = $1 AND active', [form.get('login') ?? ''])).rows[0]).catch(() => undefined);
        const ok = !!user && verifyHash(form.get('password') ?? '', user.password);
        return send(
          res,
          ok ? 200 : 401,
          html(
            'Login',
            ok
              ? `<h1 id="logged-in">Logged in</h1><p>As user ${esc(String(user.id))} of <code>${esc(dbName)}</code>.</p>${notice()}`
              : `<h1>Wrong login/password</h1>${notice()}<p><a href="/web/login">Try again</a></p>`,
          ),
        );
      }
      const state = await readDatabase();
      if (url.pathname === '/standin.json') {
        return send(res, 200, JSON.stringify({ standin: true, name, odooVersion: version, database: { ...state, database: dbName } }), 'application/json');
      }
      const dbLine = state.ok
        ? `<p>Database <code>${esc(dbName)}</code> is reachable as this instance's own role: <strong id="tables">${state.tables}</strong> table(s) in its public schema${state.initialised ? ', initialised' : ', not initialised'}.</p>`
        : `<p>The instance database is <strong>not reachable</strong>: ${esc(state.error)}</p>`;
      return send(
        res,
        200,
        html(
          name,
          `<h1>${esc(name)}</h1>${notice()}
<p>Odoo version: <strong id="version">${esc(version)}</strong></p>
${dbLine}
<p><a href="/web/login">Log in</a></p>`,
        ),
      );
    } catch (err) {
      if (!res.headersSent) send(res, 500, html('Internal Server Error', `<h1>Internal Server Error</h1>${notice()}`));
      else res.destroy();
      void err;
    }
  });
  const host = conf.http_interface || '127.0.0.1';
  const port = Number(conf.http_port || 8069);
  // Odoo's own line once it listens: the local runtime waits for it (fs.watch on the log) instead of polling.
  server.listen(port, host, () => process.stdout.write(`odoo.service.server: HTTP service (werkzeug) running on ${host}:${port}\n`));
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // The runtime daemon that started us kills and restarts its instances when it
  // comes back; if it died (SIGKILL, a crashed test), do not linger as an orphan.
  const parent = process.ppid;
  setInterval(() => process.ppid !== parent && process.exit(0), 2000).unref();
}

/**
 * Odoo's start with `-d` (odoo/cli/server.py `main`) first connects to the
 * `postgres` database to see whether the database exists
 * (service/db.py `_create_empty_database`); a refused connection is not
 * caught there, so Odoo stops before serving or initialising anything.
 */
async function startupCheck() {
  try {
    await withDb(async (c) => c.query('SELECT datname FROM pg_database WHERE datname = $1', [dbName]), 'postgres');
  } catch (err) {
    process.stderr.write(`psycopg2.OperationalError: ${/** @type {Error} */ (err).message}\n`);
    process.exit(1);
  }
}

await startupCheck();
if (opts.command === 'neutralize') await neutralize();
else if (opts.stopAfterInit || opts.init) await init();
else await serve();
