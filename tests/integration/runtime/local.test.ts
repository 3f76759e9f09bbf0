/**
 * The local runtime (daemon + driver) against real PostgreSQL and real
 * processes: apply → the stand-in answers through a gateway; stop, suspend,
 * crash, restart of the daemon; quota; backup → change → restore; broken
 * dumps are BackupErrors; remove leaves nothing.
 */
import { randomBytes } from 'node:crypto';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { config } from '@saasodoo/platform/config';
import { dropNamespace } from '@saasodoo/platform/db/migrate';
import { startGateway } from '@saasodoo/platform/host/gateway';
import type { Supervisor } from '@saasodoo/platform/host/supervisor';
import { probeOne } from '@saasodoo/platform/runtime/health';
import { STANDIN, startLocalRuntime, type LocalRuntime } from '@saasodoo/platform/runtime/local/daemon';
import { LocalDriver } from '@saasodoo/platform/runtime/local/driver';
import { BackupError, RestoreError, type InstanceSpec } from '@saasodoo/platform/runtime/types';
import { createInstanceDb, instanceQuery } from '../../helpers/instance-db.ts';
import { freePort } from '../../helpers/ports.ts';
import { tcpProxy } from '../../helpers/tcp-proxy.ts';
import pg from 'pg';
import { odooPasswordHash, verifyOdooPassword } from '@saasodoo/platform/odoo/contract';

const token = randomBytes(16).toString('hex');
let rt: LocalRuntime;
let gateway: http.Server;
let gatewayPort: number;
let driver: LocalDriver;
let spec: InstanceSpec;
const portBase = 20_000 + Math.floor(Math.random() * 20_000);

async function startRuntime(odooCommand?: string) {
  return startLocalRuntime({ port: 0, dataDir: config().dataDir, token, portBase, baseDomain: 'localhost', gatewayPort: 8080, scheme: 'http', readyTimeoutMs: 20_000, odooCommand });
}

function viaGateway(sub: string, p = '/'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: gatewayPort, path: p, headers: { host: `${sub}.localhost:8080` } }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A fake pg tool that runs the real one unless its arguments match `pattern`. */
function wrapper(name: string, body: string): string {
  const file = path.join(config().dataDir, `${name}-${randomBytes(3).toString('hex')}.sh`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return file;
}

beforeAll(async () => {
  rt = await startRuntime();
  gateway = await startGateway({ port: 0, supervisor: {} as Supervisor, baseDomain: 'localhost', instanceRouter: (s) => rt.router(s) });
  gatewayPort = (gateway.address() as AddressInfo).port;
  driver = new LocalDriver({ url: rt.url, token, dataDir: config().dataDir });
  const short = randomBytes(4).toString('hex');
  spec = {
    id: `00000000-0000-4000-8000-${randomBytes(6).toString('hex')}`,
    customerId: 'c1',
    name: 'Acme Books',
    subdomain: `acme-${short}`,
    odooVersion: '17',
    plan: 'basic-monthly',
    resources: { cpu: 1, memoryMiB: 2048, storageGiB: 10 },
    database: await createInstanceDb(short),
    masterPasswordHash: await odooPasswordHash(randomBytes(12).toString('hex'), { rounds: 1000 }),
  };
});

afterAll(async () => {
  await driver?.remove(spec.id).catch(() => {});
  await rt?.stop();
  await new Promise((r) => gateway?.close(r));
  await dropNamespace();
});

describe('local runtime', () => {
  it('applies an instance: the stand-in answers at its URL through the gateway, reading its database', async () => {
    await driver.apply(spec);
    const states: string[] = [];
    await driver.waitReady(spec.id, 20_000, (p) => states.push(p.state));
    expect(states.at(-1)).toBe('running');
    const st = await driver.status(spec.id);
    expect(st).toMatchObject({ state: 'running', url: `http://${spec.subdomain}.localhost:8080`, replicas: 1 });
    expect((await probeOne(st.healthUrl!)).ok).toBe(true);
    await instanceQuery(spec.database, 'CREATE TABLE notes (id serial primary key, body text)');
    const page = await viaGateway(spec.subdomain);
    expect(page.status).toBe(200);
    expect(page.body).toContain('This is a stand-in, not Odoo');
    expect(page.body).toContain('Acme Books');
    expect(page.body).toMatch(/Odoo version: <strong id="version">17</);
    expect(page.body).toContain(spec.database.name);
    expect(page.body).toMatch(/<strong id="tables">1</);
    expect(JSON.parse((await viaGateway(spec.subdomain, '/web/health')).body)).toEqual({ status: 'pass' });
    expect(fs.statSync(path.join(driver.instanceDir(spec.id), 'filestore')).isDirectory()).toBe(true);
    // The spec on disk holds the DB password: owner-only.
    expect(fs.statSync(path.join(driver.instanceDir(spec.id), 'spec.json')).mode & 0o077).toBe(0);
  });

  it('serving an uninitialised database is refused as Odoo refuses it: an error page, not a login form', async () => {
    const login = await viaGateway(spec.subdomain, '/web/login');
    expect(login.status).toBe(500);
    expect(login.body).toContain('not initialized, you can force it with <code>-i base</code>');
    expect(login.body).not.toContain('<form');
  });

  it("initialize runs Odoo's init with the contract's command line: base installed, no demo, admin/admin as Odoo leaves it", async () => {
    await driver.initialize(spec, 60_000);
    expect((await driver.status(spec.id)).state).toBe('stopped');
    expect(await instanceQuery(spec.database, `SELECT name, state, demo FROM ir_module_module WHERE name = 'base'`)).toEqual([{ name: 'base', state: 'installed', demo: false }]);
    expect(await instanceQuery(spec.database, `SELECT count(*)::int AS n FROM ir_model_data WHERE module = 'base' AND name = 'user_demo'`)).toEqual([{ n: 0 }]);
    const [admin] = await instanceQuery(spec.database, `SELECT u.login, u.password FROM res_users u JOIN ir_model_data d ON d.res_id = u.id AND d.module = 'base' AND d.name = 'user_admin'`);
    expect(admin.login).toBe('admin');
    expect(await verifyOdooPassword('admin', admin.password)).toBe(true);
    const params = await instanceQuery(spec.database, `SELECT key FROM ir_config_parameter ORDER BY key`);
    expect(params.map((p) => p.key)).toEqual(expect.arrayContaining(['database.create_date', 'database.secret', 'database.uuid']));
    // Odoo's filestore of the database is in the data dir, which is the instance directory.
    expect(fs.statSync(path.join(driver.instanceDir(spec.id), 'filestore', spec.database.name)).isDirectory()).toBe(true);
    // odoo.conf holds the database password and the master password hash: owner-only.
    const conf = path.join(driver.instanceDir(spec.id), 'odoo.conf');
    expect(fs.readFileSync(conf, 'utf8')).toContain(`admin_passwd = ${spec.masterPasswordHash}`);
    expect(fs.statSync(conf).mode & 0o077).toBe(0);
    await driver.scale(spec.id, 1);
    await driver.waitReady(spec.id, 20_000);
    const login = await viaGateway(spec.subdomain, '/web/login');
    expect(login.status).toBe(200);
    expect(login.body).toContain('<form class="oe_login_form"');
    expect(login.body).toContain('This is a stand-in, not Odoo');
  });

  it('the stand-in exits non-zero on a flag the platform never passes, as Odoo does', () => {
    const conf = path.join(driver.instanceDir(spec.id), 'odoo.conf');
    for (const extra of [['--db-filter', '.*'], ['--dev=all'], ['--with-demo']]) {
      const r = spawnSync(process.execPath, [STANDIN, '-c', conf, '-d', spec.database.name, ...extra], { encoding: 'utf8', env: { ...process.env, ODOO_VERSION: '17' } });
      expect(r.status, extra.join(' ')).toBe(2);
      expect(r.stderr).toContain('error: no such option');
    }
  });

  it('readiness (db_server_status) fails when the database server cannot be reached; liveness does not touch it', async () => {
    // Odoo checks the server at start (it connects to `postgres`), so the server goes away after the start.
    const proxy = await tcpProxy(spec.database.host, spec.database.port);
    const port = await freePort();
    const conf = path.join(config().dataDir, `down-${port}.conf`);
    const db = spec.database;
    fs.writeFileSync(
      conf,
      `[options]\ndb_host = 127.0.0.1\ndb_port = ${proxy.port}\ndb_user = ${db.user}\ndb_password = ${db.password}\nhttp_port = ${port}\nhttp_interface = 127.0.0.1\ndata_dir = ${path.join(config().dataDir, `down-${port}`)}\n`,
    );
    const child = spawn(process.execPath, [STANDIN, '-c', conf, '-d', db.name, '--no-database-list', '--proxy-mode'], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 300 && !(await probeOne(`http://127.0.0.1:${port}/web/health`, 1000)).ok; i++) await new Promise((r) => setTimeout(r, 100));
      expect((await fetch(`http://127.0.0.1:${port}/web/health?db_server_status=1`)).status).toBe(200);
      proxy.cut();
      expect((await probeOne(`http://127.0.0.1:${port}/web/health`, 5000)).ok).toBe(true);
      const ready = await fetch(`http://127.0.0.1:${port}/web/health?db_server_status=1`);
      expect(ready.status).toBe(500);
      expect(await ready.json()).toEqual({ status: 'fail', db_server_status: false });
    } finally {
      child.kill('SIGKILL');
      await proxy.close();
    }
  });

  it('Odoo stops at start when its role may not connect to the postgres database (as cli/server.py does)', async () => {
    const port = await freePort();
    const conf = path.join(config().dataDir, `nopg-${port}.conf`);
    // A login role with no CONNECT on `postgres` (PUBLIC has none there: db/migrate.ts).
    const stranger = { user: `${config().DB_NAMESPACE}stranger_${port}`, password: randomBytes(12).toString('hex') };
    const admin = new pg.Client({ connectionString: config().DATABASE_ADMIN_URL });
    await admin.connect();
    await admin.query(`REVOKE CONNECT ON DATABASE postgres FROM PUBLIC`);
    await admin.query(`CREATE ROLE "${stranger.user}" LOGIN PASSWORD '${stranger.password}'`);
    try {
      fs.writeFileSync(
        conf,
        `[options]\ndb_host = ${spec.database.host}\ndb_port = ${spec.database.port}\ndb_user = ${stranger.user}\ndb_password = ${stranger.password}\nhttp_port = ${port}\nhttp_interface = 127.0.0.1\ndata_dir = ${path.join(config().dataDir, `nopg-${port}`)}\n`,
      );
      const r = spawnSync(process.execPath, [STANDIN, '-c', conf, '-d', spec.database.name, '--no-database-list', '--proxy-mode'], { encoding: 'utf8', timeout: 20_000 });
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/OperationalError: permission denied for database "postgres"/);
    } finally {
      await admin.query(`DROP ROLE IF EXISTS "${stranger.user}"`);
      await admin.end();
    }
  });

  it('refuses a second instance with the same subdomain', async () => {
    await expect(driver.apply({ ...spec, id: `${spec.id.slice(0, -4)}ffff` })).rejects.toMatchObject({ name: 'RuntimeError', code: 'invalid' });
  });

  it('reports usage against the quota', async () => {
    fs.writeFileSync(path.join(driver.instanceDir(spec.id), 'filestore', 'blob.bin'), randomBytes(64 * 1024));
    const u = await driver.usage(spec.id);
    expect(u.limitBytes).toBe(10 * 1024 ** 3);
    expect(u.usedBytes).toBeGreaterThan(64 * 1024);
    expect(u.exceeded).toBe(false);
    await driver.setQuota(spec.id, 1024);
    expect(await driver.usage(spec.id)).toMatchObject({ limitBytes: 1024, exceeded: true });
    await driver.setQuota(spec.id, 10 * 1024 ** 3);
  });

  it('stop, suspend and start: clear pages while not running, no process left', async () => {
    const { pid } = await driver.status(spec.id);
    await driver.scale(spec.id, 0);
    expect((await driver.status(spec.id)).state).toBe('stopped');
    expect(alive(pid!)).toBe(false);
    const stopped = await viaGateway(spec.subdomain);
    expect(stopped.status).toBe(503);
    expect(stopped.body).toContain('Instance stopped');
    await driver.scale(spec.id, 0, { suspended: true });
    const suspended = await viaGateway(spec.subdomain);
    expect(suspended.status).toBe(403);
    expect(suspended.body).toContain('suspended');
    expect(suspended.body).not.toContain('stand-in');
    expect((await driver.status(spec.id)).state).toBe('suspended');
    await driver.scale(spec.id, 1);
    await driver.waitReady(spec.id, 20_000);
    expect((await viaGateway(spec.subdomain)).body).toContain('stand-in');
  });

  it('a status request asked to wait answers on the next change (what waitReady uses); the stand-in logs the line Odoo logs when it serves', async () => {
    await driver.scale(spec.id, 0);
    const waiting = fetch(`${rt.url}/instances/${spec.id}?changedFrom=stopped&waitMs=30000`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.json());
    await driver.scale(spec.id, 1);
    // The first settled state after the scale is `starting` (spawned, not serving yet): an answer only at the deadline would read `running`.
    expect(await waiting).toMatchObject({ state: 'starting' });
    await driver.waitReady(spec.id, 20_000);
    expect(fs.readFileSync(path.join(driver.instanceDir(spec.id), 'instance.log'), 'utf8')).toMatch(/odoo\.service\.server: HTTP service \(werkzeug\) running on 127\.0\.0\.1:\d+\n/);
  });

  it('a killed process is reported failed; scaling to 1 restarts it', async () => {
    const { pid } = await driver.status(spec.id);
    process.kill(pid!, 'SIGKILL');
    for (let i = 0; i < 100 && (await driver.status(spec.id)).state !== 'failed'; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await driver.status(spec.id)).toMatchObject({ state: 'failed', reason: expect.stringContaining('SIGKILL') });
    expect((await probeOne((await driver.status(spec.id)).healthUrl!, 1000)).ok).toBe(false);
    await driver.scale(spec.id, 1);
    await driver.waitReady(spec.id, 20_000);
  });

  it('backup → change data → restore → data back (safety backup kept)', async () => {
    await instanceQuery(spec.database, "INSERT INTO notes (body) VALUES ('before')");
    const fileA = path.join(driver.instanceDir(spec.id), 'filestore', 'a.txt');
    fs.writeFileSync(fileA, 'version 1');
    const m = await driver.backup(spec, 'b1', 'manual');
    expect(m).toMatchObject({ backupId: 'b1', instanceId: spec.id, kind: 'manual', odooVersion: '17' });
    expect(m.parts.database.bytes).toBeGreaterThan(0);
    expect(m.parts.database.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(m.parts.filestore.bytes).toBeGreaterThan(0);

    await instanceQuery(spec.database, "UPDATE notes SET body = 'after'");
    await instanceQuery(spec.database, "INSERT INTO notes (body) VALUES ('extra')");
    fs.writeFileSync(fileA, 'version 2');
    fs.writeFileSync(path.join(driver.instanceDir(spec.id), 'filestore', 'b.txt'), 'new');

    const { safety } = await driver.restore(spec, 'b1');
    expect(safety.kind).toBe('safety');
    expect((await instanceQuery(spec.database, 'SELECT body FROM notes ORDER BY id')).map((r) => r.body)).toEqual(['before']);
    expect(fs.readFileSync(fileA, 'utf8')).toBe('version 1');
    expect(fs.existsSync(path.join(driver.instanceDir(spec.id), 'filestore', 'b.txt'))).toBe(false);
    await driver.waitReady(spec.id, 20_000);
    const ids = (await driver.listBackups(spec.id)).map((b) => b.backupId);
    expect(ids).toEqual(expect.arrayContaining(['b1', safety.backupId]));

    // The download is a tar of the three parts.
    const dl = await driver.openBackup(spec.id, 'b1');
    const tarFile = path.join(config().dataDir, 'dl.tar');
    await new Promise<void>((resolve, reject) => dl.stream.pipe(fs.createWriteStream(tarFile)).on('finish', resolve).on('error', reject));
    expect(execFileSync('tar', ['-tf', tarFile], { encoding: 'utf8' }).split('\n').filter(Boolean).sort()).toEqual(['db.dump', 'filestore.tar.gz', 'manifest.json']);
    await expect(driver.openBackup(spec.id, 'nope')).rejects.toMatchObject({ code: 'not_found' });
    await expect(driver.openBackup(spec.id, '../etc')).rejects.toMatchObject({ code: 'invalid' });
  });

  it('a failed restore leaves the instance as it was', async () => {
    await instanceQuery(spec.database, "INSERT INTO notes (body) VALUES ('current')");
    const broken = new LocalDriver({
      url: rt.url,
      token,
      dataDir: config().dataDir,
      // pg_restore fails for the target backup only (after --clean would have started), works for the safety one.
      tools: { pgDump: 'pg_dump', pgRestore: wrapper('pg_restore', `case "$*" in *"/b1/db.dump"*) exit 1;; esac\nexec pg_restore "$@"`) },
    });
    await expect(broken.restore(spec, 'b1')).rejects.toBeInstanceOf(RestoreError);
    expect((await instanceQuery(spec.database, 'SELECT body FROM notes ORDER BY id')).map((r) => r.body)).toEqual(['before', 'current']);
    await driver.waitReady(spec.id, 20_000);
  });

  it('an empty or missing dump is a BackupError and leaves no backup behind', async () => {
    const before = (await driver.listBackups(spec.id)).length;
    const emptyDump = wrapper('pg_dump', 'while [ $# -gt 0 ]; do if [ "$1" = -f ]; then : > "$2"; fi; shift; done');
    const empty = new LocalDriver({ url: rt.url, token, dataDir: config().dataDir, tools: { pgDump: emptyDump, pgRestore: 'pg_restore' } });
    await expect(empty.backup(spec, 'e1', 'manual')).rejects.toMatchObject({ name: 'BackupError', part: 'database', message: expect.stringContaining('empty') });
    const none = new LocalDriver({ url: rt.url, token, dataDir: config().dataDir, tools: { pgDump: '/bin/true', pgRestore: 'pg_restore' } });
    await expect(none.backup(spec, 'e2', 'manual')).rejects.toBeInstanceOf(BackupError);
    const garbage = new LocalDriver({
      url: rt.url,
      token,
      dataDir: config().dataDir,
      tools: { pgDump: wrapper('pg_dump', 'while [ $# -gt 0 ]; do if [ "$1" = -f ]; then echo junk > "$2"; fi; shift; done'), pgRestore: 'pg_restore' },
    });
    await expect(garbage.backup(spec, 'e3', 'manual')).rejects.toMatchObject({ part: 'database' });
    expect((await driver.listBackups(spec.id)).length).toBe(before);
    expect(fs.readdirSync(path.join(config().dataDir, 'backups', spec.id)).filter((n) => n.endsWith('.partial'))).toEqual([]);
  });

  it('instances that should run come back when the daemon restarts (found ready without the serving line in the log)', async () => {
    const { pid } = await driver.status(spec.id);
    await rt.stop();
    expect(alive(pid!)).toBe(false);
    // An ODOO_COMMAND that logs elsewhere: readiness comes from the daemon's backing-off probe instead.
    rt = await startRuntime(`${process.execPath} ${STANDIN} >/dev/null`);
    driver = new LocalDriver({ url: rt.url, token, dataDir: config().dataDir });
    await driver.waitReady(spec.id, 20_000);
    expect((await viaGateway(spec.subdomain)).body).toContain('stand-in');
  });

  it('remove leaves no process, no directory and no route; backups stay', async () => {
    const { pid } = await driver.status(spec.id);
    await driver.remove(spec.id);
    expect(alive(pid!)).toBe(false);
    expect(fs.existsSync(driver.instanceDir(spec.id))).toBe(false);
    expect(await driver.status(spec.id)).toEqual({ state: 'missing' });
    expect((await viaGateway(spec.subdomain)).status).toBe(404);
    expect((await driver.listBackups(spec.id)).length).toBeGreaterThan(0);
    await driver.remove(spec.id); // idempotent
  });

  it('a stand-in whose daemon was SIGKILLed exits instead of lingering as an orphan', async () => {
    const port = await freePort();
    const conf = path.join(config().dataDir, `orphan-${port}.conf`);
    const db = spec.database;
    fs.writeFileSync(
      conf,
      `[options]\ndb_host = ${db.host}\ndb_port = ${db.port}\ndb_user = ${db.user}\ndb_password = ${db.password}\ndb_name = ${db.name}\nhttp_port = ${port}\nhttp_interface = 127.0.0.1\ndata_dir = ${path.join(config().dataDir, `orphan-${port}`)}\n`,
    );
    // A parent that starts a stand-in detached (as the daemon does), prints its pid, then waits to be killed.
    const parent = spawn(
      process.execPath,
      [
        '-e',
        `
      const c = require('node:child_process').spawn(process.execPath, [${JSON.stringify(STANDIN)}, '-c', ${JSON.stringify(conf)}, '-d', ${JSON.stringify(spec.database.name)}], { detached: true, stdio: 'ignore' });
      console.log(c.pid); setInterval(() => {}, 1000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const pid = Number(await new Promise<string>((resolve) => parent.stdout!.once('data', (d) => resolve(String(d).trim()))));
    try {
      for (let i = 0; i < 300 && !(await probeOne(`http://127.0.0.1:${port}/web/health`, 1000)).ok; i++) await new Promise((r) => setTimeout(r, 100));
      expect(alive(pid)).toBe(true);
      parent.kill('SIGKILL');
      for (let i = 0; i < 200 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
      expect(alive(pid)).toBe(false);
    } finally {
      parent.kill('SIGKILL');
    }
  });
});
