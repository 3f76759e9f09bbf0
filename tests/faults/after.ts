/**
 * The fault suite's end-of-run checks (issue 25 item 4), each asked of the
 * outside world rather than of the platform's tables where it can be:
 *
 * - every instance that should run answers at its URL (through the gateway,
 *   as a browser would with the instance's host name) and its customer logs
 *   in to Odoo (the stand-in) with the email and the password the portal
 *   showed them;
 * - every backup on disk verifies against its manifest and restores: the
 *   dump into a scratch database where Odoo's users are found, the filestore
 *   archive listed by tar;
 * - nothing is left of a terminated instance: no database, no role, no data
 *   folder, no process carrying its id.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import pg from 'pg';

type DbFn = (typeof import('@saasodoo/platform/db/index'))['db'];
type Row = { id: string; status: string; subdomain: string; db_name: string | null; db_role: string | null };
export type Owner = { instanceId: string; accessToken: string; email: string; running: boolean };

/**
 * PostgreSQL as its superuser, straight (DATABASE_ADMIN_URL: the run's own
 * cluster, or the machine's server, never the suite's proxy): what is left is
 * asked of the server itself. `database`: another database of that server.
 */
function adminUrl(database = 'postgres'): string {
  const u = new URL(process.env.DATABASE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
  u.pathname = `/${database}`;
  return u.toString();
}
const admin = () => new pg.Client({ connectionString: adminUrl() });

/**
 * A POST or GET to the gateway with the instance's host name, as a browser at
 * `url` would send it (node:http: fetch does not let a caller set Host).
 */
export function atInstance(gateway: string, url: string, pathName: string, body?: unknown): Promise<{ status: number; text: string }> {
  const payload = body ? JSON.stringify(body) : undefined;
  const g = new URL(gateway);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: g.hostname,
        port: g.port,
        method: payload ? 'POST' : 'GET',
        path: pathName,
        headers: { host: new URL(url).host, ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}) },
        timeout: 30_000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(payload);
  });
}

/** Running instances answer and their customers log in; returns the problems found. */
export async function checkRunning(gateway: string, owners: Owner[]): Promise<{ problems: string[]; loggedIn: number }> {
  const problems: string[] = [];
  let loggedIn = 0;
  for (const o of owners.filter((x) => x.running)) {
    const r = await fetch(`${gateway}/api/instances?id=${o.instanceId}`, { headers: { authorization: `Bearer ${o.accessToken}` } });
    const body = (await r.json().catch(() => ({}))) as { odoo?: { url: string; database: string; login: string }; adminPassword?: string };
    if (r.status !== 200 || !body.odoo) {
      problems.push(`instance ${o.instanceId}: GET /api/instances answered ${r.status}`);
      continue;
    }
    const page = await atInstance(gateway, body.odoo.url, '/web/login');
    if (page.status !== 200) problems.push(`instance ${o.instanceId}: ${body.odoo.url}/web/login answered ${page.status}`);
    if (!body.adminPassword) {
      problems.push(`instance ${o.instanceId}: the portal never showed its customer the Odoo password`);
      continue;
    }
    const auth = await atInstance(gateway, body.odoo.url, '/web/session/authenticate', {
      jsonrpc: '2.0',
      method: 'call',
      id: 1,
      params: { db: body.odoo.database, login: o.email, password: body.adminPassword },
    });
    // An error page (HTML) is a failed login to report, not a crash of the check.
    let uid: number | undefined;
    try {
      uid = (JSON.parse(auth.text || '{}') as { result?: { uid?: number } }).result?.uid;
    } catch {
      uid = undefined;
    }
    if (auth.status === 200 && uid) loggedIn++;
    else problems.push(`instance ${o.instanceId}: its customer could not log in to Odoo (${auth.status} ${auth.text.slice(0, 120)})`);
  }
  return { problems, loggedIn };
}

/** Every backup under `root` verifies and restores into a scratch database; returns the problems and the count checked. */
export async function checkBackups(root: string): Promise<{ problems: string[]; checked: number }> {
  const { BackupStore } = await import('@saasodoo/platform/runtime/backup-store');
  const store = new BackupStore(root);
  const problems: string[] = [];
  let checked = 0;
  const instances = fs.existsSync(root) ? fs.readdirSync(root).filter((d) => !d.startsWith('.')) : [];
  const c = admin();
  await c.connect();
  try {
    for (const instanceId of instances) {
      for (const m of await store.list(instanceId)) {
        const tag = `backup ${m.backupId} (${m.kind}) of ${instanceId}`;
        checked++;
        try {
          await store.verify(instanceId, m.backupId);
        } catch (err) {
          problems.push(`${tag}: does not verify (${(err as Error).message})`);
          continue;
        }
        const dir = store.dir(instanceId, m.backupId);
        const scratch = `faults_restore_${m.backupId
          .replace(/[^a-z0-9]/gi, '')
          .slice(0, 24)
          .toLowerCase()}`;
        await c.query(`DROP DATABASE IF EXISTS ${scratch}`);
        await c.query(`CREATE DATABASE ${scratch}`);
        try {
          const restore = spawnSync('pg_restore', ['--no-owner', '--no-privileges', '--exit-on-error', '-d', adminUrl(scratch), path.join(dir, m.parts.database.file)], { encoding: 'utf8' });
          if (restore.status !== 0) {
            problems.push(`${tag}: pg_restore failed (${restore.stderr.slice(0, 200)})`);
            continue;
          }
          const s = new pg.Client({ connectionString: adminUrl(scratch) });
          await s.connect();
          const users = await s.query<{ n: number }>('SELECT count(*)::int AS n FROM res_users').finally(() => s.end());
          if (!users.rows[0]?.n) problems.push(`${tag}: restored database has no Odoo users`);
          const tar = spawnSync('tar', ['-tzf', path.join(dir, m.parts.filestore.file)], { encoding: 'utf8' });
          if (tar.status !== 0) problems.push(`${tag}: filestore archive unreadable (${tar.stderr.slice(0, 200)})`);
        } finally {
          await c.query(`DROP DATABASE IF EXISTS ${scratch}`);
        }
      }
    }
  } finally {
    await c.end();
  }
  return { problems, checked };
}

/** Processes whose environment names an instance (the local runtime starts each with SAASODOO_INSTANCE=<id>). */
function instanceProcesses(): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let env: string;
    try {
      env = fs.readFileSync(`/proc/${d}/environ`, 'utf8');
    } catch {
      continue;
    }
    const m = /(?:^|\0)SAASODOO_INSTANCE=([^\0]+)/.exec(env);
    if (m) out.set(m[1], [...(out.get(m[1]) ?? []), Number(d)]);
  }
  return out;
}

/** Docker containers of instances (any state), by instance id; none unless the run uses the Docker driver. */
async function instanceContainers(): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  if (process.env.FAULT_DRIVER !== 'docker') return out;
  const { docker } = await import('../helpers/docker-image.ts');
  const { INSTANCE_LABEL } = await import('@saasodoo/platform/runtime/docker/driver');
  for (const c of await docker.listContainers({ all: true, filters: { label: [INSTANCE_LABEL] } })) {
    const id = c.Labels[INSTANCE_LABEL];
    if (id) out.set(id, [...(out.get(id) ?? []), `container ${c.Names[0] ?? c.Id} (${c.State})`]);
  }
  return out;
}

/** Nothing of a terminated instance is left: database, role, data folder, process, container (FAULT_DRIVER=docker). */
export async function checkTerminated(db: DbFn, dataDir: string): Promise<{ problems: string[]; checked: number }> {
  const rows = await db('instance').manyOrNone<Row>(`SELECT id, status, subdomain, db_name, db_role FROM instances WHERE status = 'terminated'`);
  const problems: string[] = [];
  const procs = new Map<string, (number | string)[]>(instanceProcesses());
  for (const [id, names] of await instanceContainers()) procs.set(id, [...(procs.get(id) ?? []), ...names]);
  const c = admin();
  await c.connect();
  try {
    for (const r of rows) {
      if (r.db_name && (await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [r.db_name])).rowCount) problems.push(`terminated ${r.id}: database ${r.db_name} still exists`);
      if (r.db_role && (await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [r.db_role])).rowCount) problems.push(`terminated ${r.id}: role ${r.db_role} still exists`);
      if (fs.existsSync(path.join(dataDir, 'instances', r.id))) problems.push(`terminated ${r.id}: data folder still there`);
      if (procs.has(r.id)) problems.push(`terminated ${r.id}: process(es) or container(s) ${procs.get(r.id)!.join(', ')} still there`);
    }
  } finally {
    await c.end();
  }
  return { problems, checked: rows.length };
}
