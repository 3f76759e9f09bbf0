/**
 * Provisioning benchmark on the docker driver: Kill Bill
 * SUBSCRIPTION_CREATION → instance `running` with RUNTIME_DRIVER=docker and
 * the stand-in image the tests build, through the real lifecycle, outbox
 * and provision steps, against the sum of its irreducible steps measured in
 * the same run: create role and database, the init container (create,
 * start, wait, remove), Odoo's configure, the serving container from create
 * to ready. Medians and their ratio; no assertion on time. Skipped (one row
 * saying so) when no Docker engine answers.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { config, resetConfig } from '@saasodoo/platform/config';
import { closeDatabases } from '@saasodoo/platform/db/index';
import { configFile, configureStatements, createDatabaseSql, initArgs, ODOO_PATHS, ODOO_RC, odooPasswordHash, serveArgs } from '@saasodoo/platform/odoo/contract';
import { probeOne } from '@saasodoo/platform/runtime/health';
import { docker, dockerAvailable, testOdooImage } from '../helpers/docker-image.ts';
import { freePort } from '../helpers/ports.ts';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ident = (s: string) => `"${s.replace(/"/g, '""')}"`;

async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t0 = performance.now();
  const v = await fn();
  return [performance.now() - t0, v];
}

/** The irreducible steps, each timed, n times. */
async function floorSteps(n: number, image: string): Promise<{ role: number; database: number; init: number; configure: number; serve: number }> {
  const admin = new pg.Client({ connectionString: config().DATABASE_ADMIN_URL });
  await admin.connect();
  const t = { role: [] as number[], database: [] as number[], init: [] as number[], configure: [] as number[], serve: [] as number[] };
  const masterPasswordHash = await odooPasswordHash(randomBytes(12).toString('hex'));
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'bench-docker-'));
  try {
    for (let i = 0; i < n; i++) {
      const name = `bench_${randomBytes(4).toString('hex')}`;
      const password = randomBytes(12).toString('hex');
      const dir = path.join(root, name);
      try {
        t.role.push((await timed(() => admin.query(`CREATE ROLE ${ident(name)} LOGIN PASSWORD '${password}'`)))[0]);
        await admin.query(`GRANT CONNECT ON DATABASE postgres TO ${ident(name)}`);
        t.database.push((await timed(() => admin.query(createDatabaseSql(name, name))))[0]);
        const port = await freePort();
        const target = { version: '17', database: { host: '127.0.0.1', port: 5432, name, user: name, password } };
        await fs.mkdir(path.join(dir, 'data'), { recursive: true });
        await fs.chmod(path.join(dir, 'data'), 0o777);
        await fs.writeFile(path.join(dir, 'odoo.conf'), configFile(target, { dataDir: '/var/lib/odoo', masterPasswordHash, httpPort: port, httpInterface: '127.0.0.1' }), { mode: 0o444 });
        const HostConfig = { NetworkMode: 'host', Binds: [`${path.join(dir, 'data')}:/var/lib/odoo`, `${path.join(dir, 'odoo.conf')}:${ODOO_RC}:ro`] };
        t.init.push(
          (
            await timed(async () => {
              const c = await docker.createContainer({ Image: image, Entrypoint: ['odoo'], Cmd: initArgs(target, ODOO_RC), HostConfig });
              const waited = c.wait({ condition: 'next-exit' });
              await c.start();
              await waited;
              await c.remove({ v: true, force: true });
            })
          )[0],
        );
        t.configure.push(
          (
            await timed(async () => {
              const c = new pg.Client({ host: '127.0.0.1', port: 5432, user: name, password, database: name });
              await c.connect();
              try {
                await c.query('BEGIN');
                for (const st of configureStatements({
                  login: 'bench@example.com',
                  passwordHash: masterPasswordHash,
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
        const [serveMs, c] = await timed(async () => {
          const c = await docker.createContainer({ Image: image, Entrypoint: ['odoo'], Cmd: serveArgs(target, ODOO_RC), HostConfig });
          await c.start();
          while (!(await probeOne(`http://127.0.0.1:${port}${ODOO_PATHS.readiness}`, 1000)).ok) await new Promise((r) => setTimeout(r, 10));
          return c;
        });
        t.serve.push(serveMs);
        await c.remove({ force: true, v: true });
      } finally {
        await admin.query(`DROP DATABASE IF EXISTS ${ident(name)} WITH (FORCE)`).catch(() => {});
        await admin.query(`REVOKE CONNECT ON DATABASE postgres FROM ${ident(name)}`).catch(() => {});
        await admin.query(`DROP ROLE IF EXISTS ${ident(name)}`).catch(() => {});
      }
    }
  } finally {
    await admin.end();
    await fs.rm(root, { recursive: true, force: true });
  }
  return { role: median(t.role), database: median(t.database), init: median(t.init), configure: median(t.configure), serve: median(t.serve) };
}

export async function bench(opts: { quick: boolean }) {
  if (!(await dockerAvailable())) return [{ name: 'skipped', value: 'no Docker engine answers on /var/run/docker.sock' }];
  const n = opts.quick ? 2 : 5;
  const id = `b${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const saved = { ...process.env };
  Object.assign(process.env, {
    DB_NAMESPACE: `${id}_`,
    REDIS_PREFIX: `${id}:`,
    BROKER_NAME: id,
    DATA_DIR: path.join(os.tmpdir(), 'saasodoo-bench', id),
    LOG_LEVEL: 'silent',
    NODE_ENV: 'test',
  });
  await closeDatabases();
  resetConfig();
  const { startHarness, call, deliver, row } = await import('../integration/instances/harness.ts');
  const { createTestUser } = await import('../helpers/auth.ts');
  const h = await startHarness({ realBilling: true, dispatch: true, driver: 'docker' });
  const image = process.env.ODOO_IMAGE!.replace('{version}', '17');
  const times: number[] = [];
  const ids: string[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const u = await createTestUser();
      const r = await call(h.fn.instances, u.accessToken, {
        body: { name: 'Bench', subdomain: `bench-${id}-${i}`, plan: 'basic-monthly', odooVersion: '17', trial: true },
      });
      if (r.status !== 202) throw new Error(`create: ${r.status} ${JSON.stringify(r.body)}`);
      ids.push(r.body.id);
      const sub = (await row(r.body.id)).subscription_id;
      const t0 = performance.now();
      await deliver(h.extra.lifecycle, 'org.killbill.subscription_creation', {
        eventType: 'SUBSCRIPTION_CREATION',
        accountId: null,
        objectType: 'SUBSCRIPTION',
        objectId: sub,
        metaData: null,
      });
      for (;;) {
        const s = (await row(r.body.id)).status;
        if (s === 'running') break;
        if (s === 'error') throw new Error('provisioning failed');
        if (performance.now() - t0 > 120_000) throw new Error('not running after 120 s');
        await new Promise((w) => setTimeout(w, 5));
      }
      times.push(performance.now() - t0);
    }
  } finally {
    const { runtime } = await import('@saasodoo/platform/runtime/index');
    const rt = await runtime();
    for (const i of ids) await rt.remove(i).catch(() => {});
    await h.stop();
    process.env = saved;
    resetConfig();
  }
  const s = await floorSteps(n, image);
  const floor = s.role + s.database + s.init + s.configure + s.serve;
  const total = median(times);
  return [
    { name: `of which init container (median of ${n})`, value: `${s.init.toFixed(0)} ms` },
    { name: `of which container start to ready (median of ${n})`, value: `${s.serve.toFixed(0)} ms` },
    {
      name: `SUBSCRIPTION_CREATION → running on docker, median of ${n}`,
      value: `${total.toFixed(0)} ms`,
      baseline: `${floor.toFixed(0)} ms (irreducible steps)`,
      ratio: `${(total / floor).toFixed(2)}x`,
    },
  ];
}
