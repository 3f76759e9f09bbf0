/**
 * The instance functions on the docker driver (RUNTIME_DRIVER=docker, the
 * real engine, the stand-in image the tests build): provision (init container,
 * configure) → running, the customer logging in at the instance URL through
 * the gateway, the plan's limits on the container; stop / start; a container killed with `docker
 * kill` → started again by the runtime host at once → the drift recorded once
 * in the history, in the customer's words → the customer logs in again; a
 * suspended instance killed stays down; with the runtime host away, the
 * same kill → drift → unhealthy → restarted by instance-ops (on
 * instance.unhealthy, as triggers.yaml routes it) → recovered; backup →
 * change data → restore; the platform restarted; delete → terminate leaves
 * no container, volume, folder, database or role.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { loadTriggers } from '@saasodoo/events/triggers';
import { config } from '@saasodoo/platform/config';
import { instanceDatabaseExists } from '@saasodoo/platform/instances/database';
import { instanceDbNames } from '@saasodoo/platform/instances/names';
import { unseal } from '@saasodoo/platform/instances/secrets';
import { findPlan } from '@saasodoo/platform/plans';
import { containerName, DockerDriver } from '@saasodoo/platform/runtime/docker/driver';
import { startDockerRuntime, type DieOutcome } from '@saasodoo/platform/runtime/docker/host';
import { reasonWords } from '@saasodoo/web/lib/words';
import { runtime } from '@saasodoo/platform/runtime/index';
import { db } from '@saasodoo/platform/db/index';
import { startGateway } from '@saasodoo/platform/host/gateway';
import type { Supervisor } from '@saasodoo/platform/host/supervisor';
import { subdomainForDomain } from '@saasodoo/platform/instances/domains';
import { applyRoutes } from '@saasodoo/platform/instances/routes';
import { log } from '@saasodoo/platform/log';
import { specOf } from '@saasodoo/platform/instances/runtime-spec';
import { docker, dockerAvailable } from '../../helpers/docker-image.ts';
import { call, deliver, odooLoginAt, deliverQueued, harnessWithInstance, queued, row, until } from './harness.ts';

const available = await dockerAvailable();
if (!available) console.warn('docker instance tests skipped: no Docker engine answers on /var/run/docker.sock (.ci/run starts dockerd)');

describe.skipIf(!available)('instances on the docker driver', () => {
  const h = harnessWithInstance({ driver: 'docker' });

  /** GET through the harness gateway, as a browser at http://<subdomain>.localhost:8080 would. */
  const viaGateway = async (p = '/'): Promise<{ status: number; body: string }> => {
    const sub = (await row(h.id)).subdomain;
    return new Promise((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port: h.docker!.gatewayPort, path: p, headers: { host: `${sub}.localhost:8080` } }, (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        })
        .on('error', reject);
    });
  };
  /** Odoo's JSON-RPC login through the gateway at the instance's host: the uid, or the exception name. */
  const odooLogin = async (login: string, password: string): Promise<{ uid?: number; error?: string }> => {
    const r = await row(h.id);
    return odooLoginAt(h.docker!.gatewayPort, `${r.subdomain}.localhost:8080`, r.db_name, login, password);
  };
  const container = () => docker.getContainer(containerName(h.id));
  /** What the runtime host does about the next `die` of the instance's container. */
  const nextDie = (): Promise<DieOutcome> => {
    const events = h.docker!.host.events;
    return new Promise((resolve) => {
      const on = (d: DieOutcome) => {
        if (d.instanceId !== h.id) return;
        events.off('die', on);
        resolve(d);
      };
      events.on('die', on);
    });
  };
  /** The Odoo password the portal showed the customer (once: the first test keeps it). */
  let shownPassword = '';
  /** The customer's Odoo login with that password: true when it gives the admin user's uid. */
  const customerLogsIn = async () => {
    const [admin] = await sql(`SELECT res_id FROM ir_model_data WHERE module = 'base' AND name = 'user_admin'`);
    return (await odooLogin(h.alice.email, shownPassword)).uid === admin.res_id;
  };
  const action = (a: string, extra: Record<string, unknown> = {}) => call(h.fn.instanceAction, h.alice.accessToken, { body: { id: h.id, action: a, ...extra } });
  const sql = async (text: string) => {
    const r = await row(h.id);
    const c = new pg.Client({ host: config().DATABASE_HOST, port: config().DATABASE_PORT, database: r.db_name, user: r.db_role, password: unseal(r.db_password_sealed) });
    await c.connect();
    try {
      return (await c.query(text)).rows;
    } finally {
      await c.end();
    }
  };

  it('provisioned → running: the customer logs in at the instance URL; the container carries the plan', async () => {
    const r = await row(h.id);
    expect(r.status, `${r.error_step}: ${r.error_reason}`).toBe('running');
    expect((await runtime()).name).toBe('docker');
    const page = await viaGateway();
    expect(page.status).toBe(200);
    expect(page.body).toContain('This is a stand-in, not Odoo');
    expect(page.body).toContain(r.db_name);
    // The customer logs in to Odoo at the instance URL with their email and the password shown once.
    const shown = await call(h.fn.instances, h.alice.accessToken, { query: { id: h.id } });
    expect(shown.body.odoo).toMatchObject({ url: `http://${r.subdomain}.localhost:8080`, login: h.alice.email });
    const [admin] = await sql(`SELECT res_id FROM ir_model_data WHERE module = 'base' AND name = 'user_admin'`);
    shownPassword = shown.body.adminPassword;
    expect(await odooLogin(h.alice.email, shownPassword)).toEqual({ uid: admin.res_id });
    expect(await odooLogin('admin', 'admin')).toEqual({ error: 'odoo.exceptions.AccessDenied' });
    const info = await container().inspect();
    const plan = findPlan(r.plan, true)!;
    expect(info.Config.Labels).toMatchObject({ 'saasodoo.io/instance-id': h.id, 'saasodoo.io/customer-id': h.alice.userId, 'saasodoo.io/plan': r.plan });
    expect(info.HostConfig).toMatchObject({ NanoCpus: plan.resources.cpu * 1e9, Memory: plan.resources.memoryMiB * 1024 * 1024, RestartPolicy: { Name: 'unless-stopped' } });
  });

  it('a verified custom domain: the gateway routes it to the container, and Odoo calls itself by it', async () => {
    const domain = `erp-${Date.now().toString(36)}.acme.test`;
    const routes = () => applyRoutes({ eventId: randomUUID(), eventType: 'test', data: { instanceId: h.id, customerId: h.alice.userId }, log });
    const baseUrl = async () => (await sql(`SELECT value FROM ir_config_parameter WHERE key = 'web.base.url'`))[0].value;
    // Verified as domains.ts leaves a claim whose DNS records checked out (their checks are custom-domains.test.ts').
    await db('instance').none(`INSERT INTO instance_domains (instance_id, domain, token, verified_at) VALUES ($1, $2, 'token', now())`, [h.id, domain]);
    await db('instance').none('UPDATE instances SET custom_domains = ARRAY[$2] WHERE id = $1', [h.id, domain]);
    await routes();
    const gw = await startGateway({ port: 0, supervisor: {} as Supervisor, baseDomain: 'localhost', instanceRouter: (sub) => h.docker!.host.router(sub), customDomain: subdomainForDomain });
    const viaHost = (host: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        http
          .get({ host: '127.0.0.1', port: (gw.address() as AddressInfo).port, path: '/web/login', headers: { host } }, (res) => {
            let body = '';
            res.on('data', (c) => (body += c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          })
          .on('error', reject);
      });
    try {
      const page = await viaHost(domain);
      expect(page.status).toBe(200);
      expect(page.body).toContain((await row(h.id)).db_name);
      expect((await viaHost('not-verified.acme.test')).status).toBe(404);
      expect(await baseUrl()).toBe(`http://${domain}:${config().GATEWAY_PORT}`);
    } finally {
      await new Promise((r) => gw.close(r));
      await db('instance').none('DELETE FROM instance_domains WHERE instance_id = $1', [h.id]);
      await db('instance').none("UPDATE instances SET custom_domains = '{}' WHERE id = $1", [h.id]);
      await routes();
    }
    expect(await baseUrl()).toBe(`http://${(await row(h.id)).subdomain}.localhost:${config().GATEWAY_PORT}`);
  });

  it('stop → container stopped, the stopped page; start → running again', async () => {
    await action('stop');
    await deliverQueued(h.fn.instanceOps, h.id, 'instance.stop');
    expect((await row(h.id)).status).toBe('stopped');
    expect((await container().inspect()).State.Running).toBe(false);
    expect(await viaGateway()).toMatchObject({ status: 503, body: expect.stringContaining('Instance stopped') });
    await action('start');
    await deliverQueued(h.fn.instanceOps, h.id, 'instance.start');
    expect((await row(h.id)).status).toBe('running');
    expect((await container().inspect()).State.Running).toBe(true);
    expect((await viaGateway()).body).toContain('stand-in');
  });

  it('docker kill → started again by the runtime host → drift recorded once, in words → the customer logs in again', async () => {
    expect((await h.tick()).status).toBe(204);
    expect((await row(h.id)).health).toBe('healthy');
    const before = (await container().inspect()).State.StartedAt;
    const died = nextDie();
    await container().kill();
    // Docker leaves a killed container alone (unless-stopped restarts crashes, not kills): the host starts it again.
    expect(await died).toMatchObject({ outcome: 'restarted', delayMs: 0 });
    await (await runtime()).waitReady(h.id, 30_000);
    expect((await container().inspect()).State.StartedAt).not.toBe(before);
    // Probed twice: the restart is recorded once, the instance stays running and healthy.
    for (let i = 0; i < 2; i++) expect((await h.tick()).status).toBe(204);
    expect(await row(h.id)).toMatchObject({ status: 'running', health: 'healthy', health_failures: 0 });
    const hist = (await call(h.fn.instances, h.alice.accessToken, { query: { id: h.id } })).body.history;
    const drift = hist.filter((x: any) => /^drift: /.test(x.reason ?? ''));
    expect(drift).toHaveLength(1);
    expect(reasonWords(drift[0])).toBe('Odoo stopped unexpectedly; the system started it again.');
    await until('instance.drift_detected', () => h.eventsOf('instance.drift_detected').length === 1);
    expect(h.eventsOf('instance.drift_detected')[0].data.runtimeState).toBe('restarted');
    expect(h.eventsOf('instance.unhealthy')).toHaveLength(0);
    // The customer is unaffected: their URL answers and they log in with the same password.
    expect((await viaGateway()).body).toContain('stand-in');
    expect(await customerLogsIn()).toBe(true);
  });

  it('a suspended instance whose container is started and killed outside the platform stays down', async () => {
    const ids = { instanceId: h.id, customerId: h.alice.userId };
    const stopped = nextDie();
    expect((await deliver(h.fn.instanceOps, 'com.saasodoo.instance.suspend', { ...ids, reason: 'overdue' })).status).toBeLessThan(300);
    expect(await stopped).toMatchObject({ outcome: 'left down' });
    await container().start();
    const killed = nextDie();
    await container().kill();
    expect(await killed).toMatchObject({ outcome: 'left down' });
    expect((await container().inspect()).State.Running).toBe(false);
    expect((await row(h.id)).status).toBe('suspended');
    expect(await viaGateway()).toMatchObject({ status: 403, body: expect.stringContaining('suspended') });
    expect((await deliver(h.fn.instanceOps, 'com.saasodoo.instance.resume', ids)).status).toBeLessThan(300);
    expect((await row(h.id)).status).toBe('running');
    expect(await customerLogsIn()).toBe(true);
  });

  it('with the runtime host away: docker kill → drift → unhealthy → restarted by instance-ops → recovered', async () => {
    await h.docker!.host.stop();
    try {
      await container().kill();
      await until('container dead', async () => !(await container().inspect()).State.Running);
      for (let i = 0; i < 3; i++) await h.tick();
      expect(await row(h.id)).toMatchObject({ status: 'running', health: 'unhealthy', health_failures: 3 });
      const hist = (await call(h.fn.instances, h.alice.accessToken, { query: { id: h.id } })).body.history;
      expect(hist.filter((x: any) => /drift: runtime is stopped/.test(x.reason ?? ''))).toHaveLength(1);
      await until('instance.drift_detected', () => h.eventsOf('instance.drift_detected').some((e) => e.data.runtimeState === 'stopped'));
      const unhealthy = await until('instance.unhealthy', () => h.eventsOf('instance.unhealthy')[0]);

      // The routing table sends instance.unhealthy to instance-ops, which restarts the instance.
      expect(loadTriggers().some((t) => t.filter.attributes.type === 'com.saasodoo.instance.unhealthy' && t.subscriber === 'instance-ops')).toBe(true);
      expect((await deliver(h.fn.instanceOps, unhealthy.type, unhealthy.data, unhealthy.id)).status).toBe(204);
      expect((await row(h.id)).status).toBe('running');
      expect((await container().inspect()).State.Running).toBe(true);
      await h.tick();
      expect(await row(h.id)).toMatchObject({ health: 'healthy', health_failures: 0 });
      await until('instance.recovered', () => h.eventsOf('instance.recovered').length === 1);
      expect((await viaGateway()).body).toContain('stand-in');
    } finally {
      h.docker!.host = await startDockerRuntime(DockerDriver.fromConfig());
    }
  });

  it('backup → change data → restore → data back', async () => {
    await sql(`CREATE TABLE notes (v text); INSERT INTO notes VALUES ('before')`);
    const file = path.join(config().dataDir, 'instances', h.id, 'data', 'filestore', 'doc.txt');
    fs.writeFileSync(file, 'before');
    await action('backup');
    const backupId = (await queued(h.id, 'instance.backup')).data.backupId;
    await deliverQueued(h.fn.instanceOps, h.id, 'instance.backup');
    const b = (await call(h.fn.instances, h.alice.accessToken, { query: { id: h.id } })).body.backups.find((x: any) => x.id === backupId);
    expect(b).toMatchObject({ kind: 'manual', status: 'completed' });
    await sql(`UPDATE notes SET v = 'after'`);
    fs.writeFileSync(file, 'after');
    await action('stop');
    await deliverQueued(h.fn.instanceOps, h.id, 'instance.stop');
    expect((await action('restore', { backupId })).body.status).toBe('restoring');
    await deliverQueued(h.fn.instanceOps, h.id, 'instance.restore');
    expect((await row(h.id)).status).toBe('stopped');
    expect(await sql('SELECT v FROM notes')).toEqual([{ v: 'before' }]);
    expect(fs.readFileSync(file, 'utf8')).toBe('before');
    // A staging copy's step on this driver: `odoo neutralize` as a one-shot container, like init, the instance stopped.
    await (await runtime()).neutralize(specOf(await row(h.id)), 60_000);
    expect(await sql(`SELECT value FROM ir_config_parameter WHERE key = 'database.is_neutralized'`)).toEqual([{ value: 'true' }]);
    expect(await sql(`SELECT name FROM ir_mail_server WHERE active`)).toEqual([{ name: 'neutralization - disable emails' }]);
    await action('start');
    await deliverQueued(h.fn.instanceOps, h.id, 'instance.start');
    expect((await row(h.id)).status).toBe('running');
  });

  it('the platform restarted: the running instance is served again', async () => {
    await h.docker!.host.stop();
    await container().stop({ t: 1 }); // gone while the platform was down
    h.docker!.host = await startDockerRuntime(DockerDriver.fromConfig());
    await until('served', async () => (await viaGateway()).body.includes('stand-in'));
  });

  it('delete → terminate: no container, volume, folder, database or role left; the final backup kept', async () => {
    const volumes = (await container().inspect()).Mounts.filter((m) => m.Type === 'volume').map((m) => m.Name);
    expect((await action('delete')).body.status).toBe('terminating');
    const t = await deliver(h.fn.instanceOps, 'com.saasodoo.instance.terminate', { instanceId: h.id, customerId: h.alice.userId, reason: 'cancelled' });
    expect(t.status).toBe(204);
    expect((await row(h.id)).status).toBe('terminated');
    expect(await docker.listContainers({ all: true, filters: { label: [`saasodoo.io/instance-id=${h.id}`] } })).toEqual([]);
    const left = ((await docker.listVolumes()).Volumes ?? []).map((v) => v.Name);
    expect(volumes.filter((v) => left.includes(v!))).toEqual([]);
    expect(fs.existsSync(path.join(config().dataDir, 'instances', h.id))).toBe(false);
    expect(await instanceDatabaseExists(instanceDbNames(h.id, h.alice.userId))).toEqual({ database: false, role: false });
    expect((await (await runtime()).status(h.id)).state).toBe('missing');
    const final = (await call(h.fn.instances, h.alice.accessToken, { query: { id: h.id } })).body.backups.find((b: any) => b.kind === 'final');
    expect(final.status).toBe('completed');
    expect((await viaGateway()).status).toBe(404);
  });
});
