/**
 * Runtime benchmark: medians of the irreducible steps of bringing up a local
 * instance (create role, create database as Odoo does, make its directories,
 * Odoo's init with the stand-in, configure: hash the password and run the
 * contract's SQL, spawn the stand-in until readiness answers) against the local driver doing the
 * same (apply → waitReady, role and database made beforehand), and a
 * health-probe sweep over 10,000 loopback endpoints (time, peak memory).
 * `irreducibleSteps` is exported for the provisioning benchmark.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { config, repoRoot } from '@saasodoo/platform/config';
import { probeAll, probeOne } from '@saasodoo/platform/runtime/health';
import { STANDIN, startLocalRuntime } from '@saasodoo/platform/runtime/local/daemon';
import { LocalDriver } from '@saasodoo/platform/runtime/local/driver';
import type { InstanceSpec } from '@saasodoo/platform/runtime/types';
import { configFile, configureStatements, copyDatabaseSql, createDatabaseSql, freshCopyStatements, initArgs, ODOO_PATHS, odooPasswordHash, serveArgs } from '@saasodoo/platform/odoo/contract';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (x: number) => `${x.toFixed(1)} ms`;
const ident = (s: string) => `"${s}"`;

async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t = performance.now();
  const r = await fn();
  return [performance.now() - t, r];
}

async function freePort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

/** `templateCopy`: CREATE DATABASE … TEMPLATE + REASSIGN OWNED + fresh parameters + the filestore copy (instances/templates.ts), in place of `database` + `odooInit`. */
export type StepTimes = { role: number; database: number; dirs: number; odooInit: number; templateCopy: number; odooConfigure: number; spawnHealthy: number };

/** The admin connection string, on database `name`. */
function adminUrlOf(name: string): string {
  const u = new URL(config().DATABASE_ADMIN_URL);
  u.pathname = `/${name}`;
  return u.toString();
}

/** Runs a process to its exit; rejects on a non-zero code. */
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { cwd: repoRoot, env, stdio: 'ignore' });
    c.once('error', reject);
    c.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited with ${code}`))));
  });
}

/** Runs the irreducible steps `n` times; returns per-step medians (ms). Cleans up after itself. */
export async function irreducibleSteps(n: number): Promise<StepTimes> {
  const admin = new pg.Client({ connectionString: config().DATABASE_ADMIN_URL });
  await admin.connect();
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'bench-rt-'));
  const t: Record<keyof StepTimes, number[]> = { role: [], database: [], dirs: [], odooInit: [], templateCopy: [], odooConfigure: [], spawnHealthy: [] };
  const masterPasswordHash = await odooPasswordHash(randomBytes(12).toString('hex'));
  // The template, made once as templates.ts makes it: Odoo's init as a role that owns no database, then IS_TEMPLATE.
  const tpl = `bench_tpl_${randomBytes(4).toString('hex')}`;
  const env = { ...process.env, INSTANCE_NAME: 'bench', ODOO_VERSION: '17' };
  try {
    const tplPassword = randomBytes(12).toString('hex');
    await admin.query(`CREATE ROLE ${ident(tpl)} LOGIN PASSWORD '${tplPassword}'`);
    await admin.query(`GRANT CONNECT ON DATABASE postgres TO ${ident(tpl)}`);
    await admin.query(createDatabaseSql(tpl, 'postgres'));
    await admin.query(`GRANT CONNECT, CREATE ON DATABASE ${ident(tpl)} TO ${ident(tpl)}`);
    const ta = new pg.Client({ connectionString: adminUrlOf(tpl) });
    await ta.connect();
    await ta.query(`GRANT CREATE ON SCHEMA public TO ${ident(tpl)}`);
    await ta.end();
    const tdir = path.join(dataDir, tpl);
    const ttarget = { version: '17', database: { host: '127.0.0.1', port: 5432, name: tpl, user: tpl, password: tplPassword } };
    await fs.mkdir(tdir, { recursive: true });
    await fs.writeFile(path.join(tdir, 'odoo.conf'), configFile(ttarget, { dataDir: tdir, masterPasswordHash, httpPort: 1, httpInterface: '127.0.0.1' }), { mode: 0o600 });
    await run(process.execPath, [STANDIN, ...initArgs(ttarget, path.join(tdir, 'odoo.conf'))], env);
    await admin.query(`ALTER DATABASE ${ident(tpl)} WITH ALLOW_CONNECTIONS false IS_TEMPLATE true`);
    for (let i = 0; i < n; i++) {
      const name = `bench_${randomBytes(4).toString('hex')}`;
      const password = randomBytes(12).toString('hex');
      try {
        t.role.push((await timed(() => admin.query(`CREATE ROLE ${ident(name)} LOGIN PASSWORD '${password}'`)))[0]);
        await admin.query(`GRANT CONNECT ON DATABASE postgres TO ${ident(name)}`);
        t.database.push((await timed(() => admin.query(createDatabaseSql(name, name))))[0]);
        const dir = path.join(dataDir, name);
        t.dirs.push((await timed(() => Promise.all(['addons', 'filestore', 'sessions'].map((d) => fs.mkdir(path.join(dir, d), { recursive: true })))))[0]);
        const port = await freePort();
        const target = { version: '17', database: { host: '127.0.0.1', port: 5432, name, user: name, password } };
        const conf = path.join(dir, 'odoo.conf');
        await fs.writeFile(conf, configFile(target, { dataDir: dir, masterPasswordHash, httpPort: port, httpInterface: '127.0.0.1' }), { mode: 0o600 });
        t.odooInit.push((await timed(() => run(process.execPath, [STANDIN, ...initArgs(target, conf)], env)))[0]);
        t.odooConfigure.push(
          (
            await timed(async () => {
              const passwordHash = await odooPasswordHash(randomBytes(18).toString('base64url'));
              const c = new pg.Client({ host: '127.0.0.1', port: 5432, user: name, password, database: name });
              await c.connect();
              try {
                await c.query('BEGIN');
                for (const st of configureStatements({
                  login: 'bench@example.com',
                  passwordHash,
                  userName: 'Bench',
                  email: 'bench@example.com',
                  companyName: 'Bench',
                  baseUrl: 'http://bench.localhost',
                }))
                  await c.query(st.text, st.values);
                await c.query('COMMIT');
              } finally {
                await c.end();
              }
            })
          )[0],
        );
        // The copy that replaces create database + init on a server with a template.
        const copy = `${name}_c`;
        t.templateCopy.push(
          (
            await timed(async () => {
              await admin.query(copyDatabaseSql(copy, name, tpl));
              const c = new pg.Client({ connectionString: adminUrlOf(copy) });
              await c.connect();
              try {
                await c.query('BEGIN');
                await c.query(`REASSIGN OWNED BY ${ident(tpl)} TO ${ident(name)}`);
                for (const st of freshCopyStatements()) await c.query(st.text, st.values);
                await c.query('COMMIT');
              } finally {
                await c.end();
              }
              await fs.cp(path.join(tdir, 'filestore', tpl), path.join(dir, 'filestore', copy), { recursive: true });
            })
          )[0],
        );
        await admin.query(`DROP DATABASE ${ident(copy)} WITH (FORCE)`);
        const [spawnMs, child] = await timed(async () => {
          const child = spawn(process.execPath, [STANDIN, ...serveArgs(target, conf)], { cwd: repoRoot, env, stdio: 'ignore' });
          while (!(await probeOne(`http://127.0.0.1:${port}${ODOO_PATHS.readiness}`, 1000)).ok) await new Promise((r) => setTimeout(r, 10));
          return child;
        });
        t.spawnHealthy.push(spawnMs);
        child.kill('SIGKILL');
      } finally {
        await admin.query(`DROP DATABASE IF EXISTS ${ident(name)} WITH (FORCE)`).catch(() => {});
        await admin.query(`DROP OWNED BY ${ident(name)}`).catch(() => {});
        await admin.query(`DROP ROLE IF EXISTS ${ident(name)}`).catch(() => {});
      }
    }
  } finally {
    await admin.query(`ALTER DATABASE ${ident(tpl)} WITH IS_TEMPLATE false`).catch(() => {});
    await admin.query(`DROP DATABASE IF EXISTS ${ident(tpl)} WITH (FORCE)`).catch(() => {});
    await admin.query(`DROP OWNED BY ${ident(tpl)}`).catch(() => {});
    await admin.query(`DROP ROLE IF EXISTS ${ident(tpl)}`).catch(() => {});
    await admin.end();
    await fs.rm(dataDir, { recursive: true, force: true });
  }
  return {
    role: median(t.role),
    database: median(t.database),
    dirs: median(t.dirs),
    odooInit: median(t.odooInit),
    templateCopy: median(t.templateCopy),
    odooConfigure: median(t.odooConfigure),
    spawnHealthy: median(t.spawnHealthy),
  };
}

/** The local driver's apply → running (role and database made beforehand, as provision does). */
async function driverApplyToRunning(n: number): Promise<number> {
  const admin = new pg.Client({ connectionString: config().DATABASE_ADMIN_URL });
  await admin.connect();
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'bench-rt-'));
  const token = randomBytes(16).toString('hex');
  const rt = await startLocalRuntime({
    port: 0,
    dataDir,
    token,
    portBase: 30_000 + Math.floor(Math.random() * 20_000),
    baseDomain: 'localhost',
    gatewayPort: 8080,
    scheme: 'http',
    readyTimeoutMs: 30_000,
  });
  const driver = new LocalDriver({ url: rt.url, token, dataDir });
  const times: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const name = `bench_${randomBytes(4).toString('hex')}`;
      const password = randomBytes(12).toString('hex');
      await admin.query(`CREATE ROLE ${ident(name)} LOGIN PASSWORD '${password}'`);
      await admin.query(`GRANT CONNECT ON DATABASE postgres TO ${ident(name)}`);
      await admin.query(`CREATE DATABASE ${ident(name)} OWNER ${ident(name)}`);
      const spec: InstanceSpec = {
        id: `bench-${i}-${randomBytes(4).toString('hex')}`,
        customerId: 'bench',
        name: 'Bench',
        subdomain: `bench-${randomBytes(4).toString('hex')}`,
        odooVersion: '17',
        plan: 'basic-monthly',
        resources: { cpu: 1, memoryMiB: 2048, storageGiB: 10 },
        database: { host: '127.0.0.1', port: 5432, name, user: name, password },
        masterPasswordHash: await odooPasswordHash(randomBytes(12).toString('hex'), { rounds: 1000 }),
      };
      try {
        times.push(
          (
            await timed(async () => {
              await driver.apply(spec);
              await driver.waitReady(spec.id, 30_000);
            })
          )[0],
        );
      } finally {
        await driver.remove(spec.id).catch(() => {});
        await admin.query(`DROP DATABASE IF EXISTS ${ident(name)} WITH (FORCE)`).catch(() => {});
        await admin.query(`DROP OWNED BY ${ident(name)}`).catch(() => {});
        await admin.query(`DROP ROLE IF EXISTS ${ident(name)}`).catch(() => {});
      }
    }
  } finally {
    await rt.stop();
    await admin.end();
    await fs.rm(dataDir, { recursive: true, force: true });
  }
  return median(times);
}

/** Probes `count` endpoints spread over 100 loopback servers; time and peak RSS. */
async function healthSweep(count: number): Promise<{ ms: number; okCount: number; peakRssMiB: number; baseRssMiB: number }> {
  const servers: http.Server[] = [];
  for (let i = 0; i < 100; i++) {
    const s = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"status":"pass"}');
    });
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    servers.push(s);
  }
  const urls = Array.from({ length: count }, (_, i) => `http://127.0.0.1:${(servers[i % 100].address() as AddressInfo).port}/i${i}/web/health`);
  global.gc?.();
  const baseRss = process.memoryUsage().rss;
  let peak = baseRss;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
  const [took, results] = await timed(() => probeAll(urls, { concurrency: 200, timeoutMs: 5000 }));
  clearInterval(sampler);
  peak = Math.max(peak, process.memoryUsage().rss);
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
  return { ms: took, okCount: results.filter((r) => r.ok).length, peakRssMiB: peak / 2 ** 20, baseRssMiB: baseRss / 2 ** 20 };
}

export async function bench(opts: { quick: boolean }) {
  const n = opts.quick ? 3 : 9;
  const steps = await irreducibleSteps(n);
  const sum = steps.role + steps.database + steps.dirs + steps.odooInit + steps.odooConfigure + steps.spawnHealthy;
  const driver = await driverApplyToRunning(n);
  const count = opts.quick ? 2_000 : 10_000;
  const sweep = await healthSweep(count);
  return [
    { name: `create role (median of ${n})`, value: ms(steps.role) },
    { name: `create database (median of ${n})`, value: ms(steps.database) },
    { name: `make instance dirs (median of ${n})`, value: ms(steps.dirs) },
    { name: `Odoo init, stand-in (-i base --stop-after-init; median of ${n})`, value: ms(steps.odooInit) },
    {
      name: `template copy (CREATE DATABASE … TEMPLATE + REASSIGN OWNED + own secret/uuid + filestore) vs create database + plain init (median of ${n})`,
      value: ms(steps.templateCopy),
      baseline: ms(steps.database + steps.odooInit),
      ratio: (steps.templateCopy / (steps.database + steps.odooInit)).toFixed(2),
    },
    { name: `Odoo configure (pbkdf2-sha512 600k rounds + SQL; median of ${n})`, value: ms(steps.odooConfigure) },
    { name: `spawn stand-in to ready (median of ${n})`, value: ms(steps.spawnHealthy) },
    {
      name: 'local driver apply → running vs spawn to healthy + dirs',
      value: ms(driver),
      baseline: ms(steps.dirs + steps.spawnHealthy),
      ratio: (driver / (steps.dirs + steps.spawnHealthy)).toFixed(2),
    },
    { name: 'sum of irreducible steps', value: ms(sum) },
    { name: `health sweep ${count} loopback endpoints (concurrency 200)`, value: ms(sweep.ms), baseline: `${sweep.okCount}/${count} ok` },
    {
      name: 'health sweep peak RSS (servers in-process too)',
      value: `${sweep.peakRssMiB.toFixed(0)} MiB`,
      baseline: `${sweep.baseRssMiB.toFixed(0)} MiB before`,
      ratio: (sweep.peakRssMiB / sweep.baseRssMiB).toFixed(2),
    },
  ];
}
