/**
 * A premium (dedicated database) instance on the docker driver (issue 20):
 * its database lives on a PostgreSQL server of its own (initdb/pg_ctl on
 * this machine, another port), which Odoo's container reaches across a
 * bridge network: the server also listens on the bridge's gateway, open to
 * its subnet, and on no public interface. The platform's own PostgreSQL
 * listens on loopback only here, so nothing of this instance can have used
 * it. The plan's CPUs are capped at the machine's. The customer logs in
 * through the gateway; terminate leaves no server, folder, database, role or
 * container behind.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { config } from '@saasodoo/platform/config';
import { db } from '@saasodoo/platform/db/index';
import { instanceDatabaseExists } from '@saasodoo/platform/instances/database';
import { dedicatedPoolName } from '@saasodoo/platform/instances/dedicated';
import { instanceDbNames } from '@saasodoo/platform/instances/names';
import { unseal } from '@saasodoo/platform/instances/secrets';
import { containerName } from '@saasodoo/platform/runtime/docker/driver';
import { dedicatedServerDir, removeAllLocalDedicated } from '@saasodoo/platform/runtime/dedicated-local';
import { localPgUnavailable } from '@saasodoo/platform/runtime/local-postgres';
import { createTestUser, type TestUser } from '../../helpers/auth.ts';
import { docker, dockerAvailable } from '../../helpers/docker-image.ts';
import { call, deliver, odooLoginAt, provisioned, row, startHarness, type Harness } from './harness.ts';

const why = !(await dockerAvailable()) ? 'no Docker engine answers on /var/run/docker.sock' : localPgUnavailable();
if (why) console.warn(`docker premium tests skipped: ${why}`);

const NETWORK = `saasodoo-t-${randomBytes(3).toString('hex')}`;
let h: Harness;
let alice: TestUser;
let id: string;

beforeAll(async () => {
  if (why) return;
  h = await startHarness({ driver: 'docker', dockerNetwork: NETWORK });
  alice = await createTestUser();
}, 120_000);
afterAll(async () => {
  if (why) return;
  await h?.stop();
  await removeAllLocalDedicated(config().dataDir);
  await docker
    .getNetwork(NETWORK)
    .remove()
    .catch(() => {});
});

/** Odoo's JSON-RPC login through the gateway at the instance's host: the uid, or the exception name. */
async function odooLogin(login: string, password: string): Promise<{ uid?: number; error?: string }> {
  const r = await row(id);
  return odooLoginAt(h.docker!.gatewayPort, `${r.subdomain}.localhost:8080`, r.db_name, login, password);
}

/** SQL as the instance's own role, on the server its row names. */
async function asTenant(text: string): Promise<any[]> {
  const r = await row(id);
  const c = new pg.Client({ host: r.db_host, port: r.db_port, user: r.db_role, password: unseal(r.db_password_sealed), database: r.db_name });
  await c.connect();
  try {
    return (await c.query(text)).rows;
  } finally {
    await c.end();
  }
}

/** Whether a TCP connection to address:port is accepted. */
function accepts(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: address, port, timeout: 2000 });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
    s.once('timeout', () => (s.destroy(), resolve(false)));
  });
}

describe.skipIf(!!why)('a premium instance on the docker driver (bridge network)', () => {
  let gateway: string;

  it('its database is on its own server, which the container reaches at the bridge gateway; the customer logs in through the gateway', async () => {
    id = await provisioned(h, alice.accessToken, alice.userId, { name: 'Premium', plan: 'premium-monthly' });
    const r = await row(id);
    expect(r.status, `${r.error_step}: ${r.error_reason}`).toBe('running');
    const bridge = await docker.getNetwork(NETWORK).inspect();
    gateway = bridge.IPAM!.Config!.find((c) => !c.Subnet!.includes(':'))!.Gateway!;
    expect(r).toMatchObject({ db_pool: dedicatedPoolName(id), db_host: gateway, odoo_template: null });
    expect(r.db_port).not.toBe(config().DATABASE_PORT);
    expect(fs.existsSync(path.join(dedicatedServerDir(config().dataDir, id), 'data', 'PG_VERSION'))).toBe(true);
    expect(await db('instance').one('SELECT kind, capacity, port FROM db_pools WHERE name = $1', [dedicatedPoolName(id)])).toEqual({ kind: 'dedicated', capacity: 1, port: r.db_port });
    // Never on the platform's own server.
    expect(await instanceDatabaseExists(instanceDbNames(id, alice.userId))).toEqual({ database: false, role: false });

    // The container is on the bridge and its odoo.conf names the dedicated server at the gateway.
    const info = await docker.getContainer(containerName(id)).inspect();
    expect(info.HostConfig.NetworkMode).toBe(NETWORK);
    // The plan's 4 CPUs, capped at what this machine has (Docker refuses a limit above it).
    expect(info.HostConfig.NanoCpus).toBe(Math.min(4, (await docker.info()).NCPU) * 1e9);
    const conf = fs.readFileSync(path.join(config().dataDir, 'instances', id, 'odoo.conf'), 'utf8');
    expect(conf).toMatch(new RegExp(`^db_host = ${gateway.replaceAll('.', '\\.')}$`, 'm'));
    expect(conf).toMatch(new RegExp(`^db_port = ${r.db_port}$`, 'm'));

    // The server answers on loopback and the bridge gateway only: no other interface of this machine.
    expect(await accepts('127.0.0.1', r.db_port)).toBe(true);
    expect(await accepts(gateway, r.db_port)).toBe(true);
    const others = Object.values(os.networkInterfaces())
      .flat()
      .filter((a) => a && a.family === 'IPv4' && !a.internal && a.address !== gateway)
      .map((a) => a!.address);
    expect(others.length).toBeGreaterThan(0);
    for (const a of others) expect(await accepts(a, r.db_port), a).toBe(false);

    // Odoo initialised it as the tenant's own role (no superuser), for this customer.
    expect(await asTenant('SELECT rolsuper, current_user AS me FROM pg_roles WHERE rolname = current_user')).toEqual([{ rolsuper: false, me: r.db_role }]);
    expect(await asTenant(`SELECT u.login FROM res_users u JOIN ir_model_data d ON d.res_id = u.id AND d.module = 'base' AND d.name = 'user_admin'`)).toEqual([{ login: alice.email }]);
    // The customer logs in to Odoo (in the container, reading the dedicated server) at the instance URL.
    const shown = await call(h.fn.instances, alice.accessToken, { query: { id } });
    expect((await odooLogin(alice.email, shown.body.adminPassword)).uid).toBeGreaterThan(0);
    expect(await odooLogin('admin', 'admin')).toEqual({ error: 'odoo.exceptions.AccessDenied' });
  });

  it('terminate leaves no dedicated server, folder, database, role or container behind (after the final backup)', async () => {
    const r = await row(id);
    const t = await deliver(h.fn.instanceOps, 'com.saasodoo.instance.terminate', { instanceId: id, customerId: alice.userId, reason: 'test' });
    expect(t.status).toBeLessThan(300);
    expect(await row(id)).toMatchObject({ status: 'terminated', db_pool: null });
    expect(await db('instance').oneOrNone(`SELECT 1 FROM backups WHERE instance_id = $1 AND kind = 'final' AND status = 'completed'`, [id])).not.toBeNull();
    expect(await docker.listContainers({ all: true, filters: { label: [`saasodoo.io/instance-id=${id}`] } })).toEqual([]);
    expect(fs.existsSync(path.join(config().dataDir, 'instances', id))).toBe(false);
    expect(fs.existsSync(dedicatedServerDir(config().dataDir, id))).toBe(false);
    expect(await db('instance').oneOrNone('SELECT 1 FROM db_pools WHERE name = $1', [dedicatedPoolName(id)])).toBeNull();
    // The server (with the database and role in it) is gone: nothing answers on its port, on either address.
    expect(await accepts('127.0.0.1', r.db_port)).toBe(false);
    expect(await accepts(gateway, r.db_port)).toBe(false);
    expect(await instanceDatabaseExists(instanceDbNames(id, alice.userId))).toEqual({ database: false, role: false });
  });
});
