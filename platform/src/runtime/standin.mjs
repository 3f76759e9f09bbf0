/**
 * The stand-in for Odoo (ARCHITECTURE: used when ODOO_COMMAND is unset). A
 * tiny HTTP server, one process per instance, that answers Odoo's
 * `/web/health` and serves a page saying plainly that it is a stand-in, with
 * the instance's name and Odoo version, and what it reads from the instance
 * database (proving the instance's role, password and database work).
 *
 * Run as `node standin.mjs` with PORT, INSTANCE_NAME, ODOO_VERSION and the
 * libpq variables PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE in the
 * environment. Plain JavaScript on purpose: it runs once per instance, and
 * without the TypeScript loader (and its esbuild service) a stand-in costs
 * about 13 MB of private memory instead of about 90 MB, so a laptop or the
 * fault suite can run hundreds of them.
 */
// @ts-check
import http from 'node:http';
import pg from 'pg';

/** @param {string} s */
const esc = (s) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** @returns {Promise<{ ok: true; database: string; tables: number } | { ok: false; error: string }>} */
async function readDatabase() {
  const client = new pg.Client({ connectionTimeoutMillis: 3000, statement_timeout: 3000 });
  try {
    await client.connect();
    const r = await client.query(
      "select current_database() as db, (select count(*) from pg_tables where schemaname = 'public') as tables",
    );
    return { ok: true, database: r.rows[0].db, tables: Number(r.rows[0].tables) };
  } catch (err) {
    return { ok: false, error: /** @type {Error} */ (err).message };
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * @param {string} name
 * @param {string} version
 * @param {Awaited<ReturnType<typeof readDatabase>>} db
 */
function page(name, version, db) {
  const dbLine = db.ok
    ? `<p>Database <code>${esc(db.database)}</code> is reachable as this instance's own role: <strong id="tables">${db.tables}</strong> table(s) in its public schema.</p>`
    : `<p>The instance database is <strong>not reachable</strong>: ${esc(db.error)}</p>`;
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(name)} (stand-in)</title></head>
<body style="font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;line-height:1.5">
<h1>${esc(name)}</h1>
<p><strong>This is a stand-in, not Odoo.</strong> SaaSOdoo runs this small server in place of Odoo ${esc(version)}
because no <code>ODOO_COMMAND</code> is configured on this machine.</p>
<p>Odoo version: <strong id="version">${esc(version)}</strong></p>
${dbLine}
</body></html>`;
}

const name = process.env.INSTANCE_NAME ?? 'instance';
const version = process.env.ODOO_VERSION ?? '?';
const server = http.createServer(async (req, res) => {
  const url = new URL(req.url ?? '/', 'http://standin');
  if (url.pathname === '/web/health') {
    res.writeHead(200, { 'content-type': 'application/json' });
    return res.end(JSON.stringify({ status: 'pass' }));
  }
  if (url.pathname === '/standin.json') {
    res.writeHead(200, { 'content-type': 'application/json' });
    return res.end(JSON.stringify({ standin: true, name, odooVersion: version, database: await readDatabase() }));
  }
  const html = page(name, version, await readDatabase());
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'x-saasodoo-standin': '1' });
  res.end(html);
});
server.listen(Number(process.env.PORT), '127.0.0.1');
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// The runtime daemon that started us kills and restarts its instances when it
// comes back; if it died (SIGKILL, a crashed test), do not linger as an orphan.
const parent = process.ppid;
setInterval(() => process.ppid !== parent && process.exit(0), 2000).unref();
