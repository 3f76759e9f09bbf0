/**
 * The docker runtime driver against the real Docker engine and PostgreSQL,
 * with the stand-in image the tests build from this machine's files (nothing
 * is pulled): init container → serving container at its URL through the
 * gateway; limits, labels and restart policy in the container; stop, suspend,
 * start; a container killed outside the platform is started again by the
 * runtime host (a stopped or suspended one stays down); quota; backup → change → restore; the platform restarted; remove leaves
 * nothing behind.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { config } from '@saasodoo/platform/config';
import { dropNamespace } from '@saasodoo/platform/db/migrate';
import { startGateway } from '@saasodoo/platform/host/gateway';
import type { Supervisor } from '@saasodoo/platform/host/supervisor';
import { odooPasswordHash } from '@saasodoo/platform/odoo/contract';
import { DockerDriver, containerName } from '@saasodoo/platform/runtime/docker/driver';
import { restartDelay, startDockerRuntime, type DieOutcome, type DockerRuntimeHost } from '@saasodoo/platform/runtime/docker/host';
import { probeOne } from '@saasodoo/platform/runtime/health';
import type { InstanceSpec } from '@saasodoo/platform/runtime/types';
import { docker, dockerAvailable, TEST_IMAGE_UID, testOdooImage } from '../../helpers/docker-image.ts';
import { createInstanceDb, dropInstanceDb, instanceDbExists, instanceQuery } from '../../helpers/instance-db.ts';
import { freePortRange } from '../../helpers/ports.ts';

const available = await dockerAvailable();
if (!available) console.warn('docker runtime tests skipped: no Docker engine answers on /var/run/docker.sock (.ci/run starts dockerd)');

let driver: DockerDriver;
let host: DockerRuntimeHost;
let gateway: http.Server;
let gatewayPort: number;
let spec: InstanceSpec;

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

/** What the runtime host does about the next `die` of `id`'s container. */
function nextDie(id: string): Promise<DieOutcome> {
  const h = host;
  return new Promise((resolve) => {
    const on = (d: DieOutcome) => {
      if (d.instanceId !== id) return;
      h.events.off('die', on);
      resolve(d);
    };
    h.events.on('die', on);
  });
}

describe.skipIf(!available)('docker runtime', () => {
  beforeAll(async () => {
    const template = await testOdooImage();
    driver = new DockerDriver({
      settings: {
        image: template,
        network: 'host',
        dbHost: 'host.docker.internal',
        dataDir: config().dataDir,
        portBase: await freePortRange(20),
        baseDomain: 'localhost',
        gatewayPort: 8080,
        scheme: 'http',
      },
    });
    host = await startDockerRuntime(driver);
    gateway = await startGateway({ port: 0, supervisor: {} as Supervisor, baseDomain: 'localhost', instanceRouter: (s) => host.router(s) });
    gatewayPort = (gateway.address() as AddressInfo).port;
    const short = randomBytes(4).toString('hex');
    spec = {
      id: `00000000-0000-4000-8000-${randomBytes(6).toString('hex')}`,
      customerId: `c-${short}`,
      name: 'Acme Books',
      subdomain: `acme-${short}`,
      odooVersion: '17',
      plan: 'basic-monthly',
      resources: { cpu: 1, memoryMiB: 256, storageGiB: 10 },
      database: await createInstanceDb(short),
      masterPasswordHash: await odooPasswordHash(randomBytes(12).toString('hex'), { rounds: 1000 }),
    };
  });

  afterAll(async () => {
    await driver?.remove(spec.id).catch(() => {});
    await host?.stop();
    await new Promise((r) => gateway?.close(r));
    await dropNamespace();
  });

  it("initialize runs Odoo's init in a one-shot container; apply then serves at the instance URL through the gateway", async () => {
    await driver.initialize(spec, 60_000);
    expect((await driver.status(spec.id)).state).toBe('stopped');
    await driver.apply(spec);
    const states: string[] = [];
    await driver.waitReady(spec.id, 30_000, (p) => states.push(p.state));
    expect(states.at(-1)).toBe('running');
    const st = await driver.status(spec.id);
    expect(st).toMatchObject({ state: 'running', url: `http://${spec.subdomain}.localhost:8080`, replicas: 1, container: containerName(spec.id) });
    expect((await probeOne(st.healthUrl!)).ok).toBe(true);

    // The init ran as the image's user (read from the image), on the instance's own database and data folder, and is gone.
    expect(await instanceQuery(spec.database, `SELECT state FROM ir_module_module WHERE name = 'base'`)).toEqual([{ state: 'installed' }]);
    expect(fs.statSync(path.join(driver.dataDirOf(spec.id), 'filestore', spec.database.name)).uid).toBe(TEST_IMAGE_UID);
    await expect(docker.getContainer(`${containerName(spec.id)}-init`).inspect()).rejects.toMatchObject({ statusCode: 404 });

    const page = await viaGateway(spec.subdomain);
    expect(page.status).toBe(200);
    expect(page.body).toContain('This is a stand-in, not Odoo');
    expect(page.body).toContain(spec.database.name);
    // odoo.conf holds the database password: the image's user may read it, nobody else.
    const conf = fs.statSync(path.join(driver.instanceDir(spec.id), 'odoo.conf'));
    expect([conf.mode & 0o777, conf.uid]).toEqual([0o400, TEST_IMAGE_UID]);
  });

  it('the container: named after the instance, labelled, plan limits, unless-stopped, no entrypoint, data bind-mounted', async () => {
    const info = await docker.getContainer(containerName(spec.id)).inspect();
    expect(info.Config.Labels).toMatchObject({ 'saasodoo.io/instance-id': spec.id, 'saasodoo.io/customer-id': spec.customerId, 'saasodoo.io/plan': 'basic-monthly' });
    expect(info.HostConfig).toMatchObject({ NanoCpus: 1e9, Memory: 256 * 1024 * 1024, RestartPolicy: { Name: 'unless-stopped' }, NetworkMode: 'host' });
    // Odoo itself, not the image entrypoint (which waits for PostgreSQL through the `postgres` database).
    expect(info.Config.Entrypoint).toEqual(['odoo']);
    expect(info.Config.Cmd).toEqual(['-c', '/etc/odoo/odoo.conf', '-d', spec.database.name, '--no-database-list', '--proxy-mode']);
    expect(info.Config.Env?.join('\n') ?? '').not.toContain(spec.database.password);
    expect(info.Mounts.filter((m) => m.Type === 'volume')).toEqual([]);
    expect(info.Mounts.map((m) => m.Destination).sort()).toEqual(['/etc/odoo/odoo.conf', '/mnt/extra-addons', '/var/lib/odoo']);
  });

  it('ports given to an instance being applied are not given again before its state is written', async () => {
    const [a, b] = [0, 1].map((i) => ({ ...spec, id: `${spec.id.slice(0, -4)}aaa${i}`, subdomain: `${spec.subdomain}-p${i}` }));
    try {
      await driver.apply(a, { replicas: 0 });
      const taken = await driver.readState(a.id);
      // As another function sees it mid-apply: ports chosen, state not yet written, no container listening.
      fs.rmSync(path.join(driver.instanceDir(a.id), 'docker.json'));
      await driver.apply(b, { replicas: 0 });
      const got = await driver.readState(b.id);
      expect([taken!.httpPort, taken!.geventPort]).not.toContain(got!.httpPort);
      expect([taken!.httpPort, taken!.geventPort]).not.toContain(got!.geventPort);
    } finally {
      for (const o of [a, b]) await driver.remove(o.id);
    }
  });

  it('refuses a second instance with the same subdomain', async () => {
    await expect(driver.apply({ ...spec, id: `${spec.id.slice(0, -4)}ffff` })).rejects.toMatchObject({ name: 'RuntimeError', code: 'invalid' });
  });

  it('reports usage against the quota', async () => {
    fs.writeFileSync(path.join(driver.dataDirOf(spec.id), 'filestore', 'blob.bin'), randomBytes(64 * 1024));
    const u = await driver.usage(spec.id);
    expect(u).toMatchObject({ limitBytes: 10 * 1024 ** 3, exceeded: false });
    expect(u.usedBytes).toBeGreaterThan(64 * 1024);
    await driver.setQuota(spec.id, 1024);
    expect(await driver.usage(spec.id)).toMatchObject({ limitBytes: 1024, exceeded: true });
    await driver.setQuota(spec.id, 10 * 1024 ** 3);
  });

  it('stop, suspend and start: the container stops and starts, clear pages meanwhile', async () => {
    await driver.scale(spec.id, 0);
    expect((await driver.status(spec.id)).state).toBe('stopped');
    expect((await docker.getContainer(containerName(spec.id)).inspect()).State.Running).toBe(false);
    const stopped = await viaGateway(spec.subdomain);
    expect([stopped.status, stopped.body.includes('Instance stopped')]).toEqual([503, true]);
    await driver.scale(spec.id, 0, { suspended: true });
    expect((await driver.status(spec.id)).state).toBe('suspended');
    const suspended = await viaGateway(spec.subdomain);
    expect([suspended.status, suspended.body.includes('suspended'), suspended.body.includes('stand-in')]).toEqual([403, true, false]);
    await driver.scale(spec.id, 1);
    await driver.waitReady(spec.id, 30_000);
    expect((await docker.getContainer(containerName(spec.id)).inspect()).State.Running).toBe(true);
    expect((await viaGateway(spec.subdomain)).body).toContain('stand-in');
  });

  it('a container killed outside the platform is started again by the runtime host at once, and status says when', async () => {
    const c = docker.getContainer(containerName(spec.id));
    const before = (await c.inspect()).State.StartedAt;
    expect((await driver.status(spec.id)).restartedAt).toBeUndefined();
    const died = nextDie(spec.id);
    await c.kill();
    // Docker leaves a killed container alone (unless-stopped restarts crashes, not kills): the host's own restart.
    expect(await died).toEqual({ instanceId: spec.id, outcome: 'restarted', delayMs: 0 });
    await driver.waitReady(spec.id, 30_000);
    const info = await c.inspect();
    expect([info.State.Running, info.State.StartedAt === before, info.RestartCount]).toEqual([true, false, 0]);
    const st = await driver.status(spec.id);
    expect(st.state).toBe('running');
    expect(Date.parse(st.restartedAt!)).toBeGreaterThan(Date.parse(before));
    expect((await viaGateway(spec.subdomain)).body).toContain('stand-in');
  });

  it('a stopped or suspended instance whose container dies stays down, whoever started and killed it', async () => {
    const c = docker.getContainer(containerName(spec.id));
    const stopped = nextDie(spec.id);
    await driver.scale(spec.id, 0);
    expect(await stopped).toMatchObject({ outcome: 'left down' });
    for (const suspended of [false, true]) {
      await driver.scale(spec.id, 0, { suspended });
      // Started outside the platform, then killed outside it: still not the platform's to bring back.
      await c.start();
      const killed = nextDie(spec.id);
      await c.kill();
      expect(await killed).toMatchObject({ outcome: 'left down' });
      expect((await c.inspect()).State.Running).toBe(false);
      expect((await driver.status(spec.id)).state).toBe(suspended ? 'suspended' : 'stopped');
    }
    await driver.scale(spec.id, 1);
    await driver.waitReady(spec.id, 30_000);
    expect((await viaGateway(spec.subdomain)).body).toContain('stand-in');
  });

  it("the host's restarts back off as the kubelet's: at once, then 10 s doubling to 5 min", () => {
    expect([0, 1, 2, 3, 5, 6, 20].map(restartDelay)).toEqual([0, 10_000, 20_000, 40_000, 160_000, 300_000, 300_000]);
  });

  it('backup → change data → restore → data back, files owned by the image user', async () => {
    await instanceQuery(spec.database, 'CREATE TABLE notes (id serial primary key, body text)');
    await instanceQuery(spec.database, "INSERT INTO notes (body) VALUES ('before')");
    const fileA = path.join(driver.dataDirOf(spec.id), 'filestore', 'a.txt');
    fs.writeFileSync(fileA, 'version 1');
    const m = await driver.backup(spec, 'b1', 'manual');
    expect(m).toMatchObject({ backupId: 'b1', instanceId: spec.id, kind: 'manual', odooVersion: '17' });
    expect(m.parts.database.bytes).toBeGreaterThan(0);
    expect(m.parts.filestore.bytes).toBeGreaterThan(0);

    await instanceQuery(spec.database, "UPDATE notes SET body = 'after'");
    fs.writeFileSync(fileA, 'version 2');
    fs.writeFileSync(path.join(driver.dataDirOf(spec.id), 'filestore', 'b.txt'), 'new');

    const { safety } = await driver.restore(spec, 'b1');
    expect(safety.kind).toBe('safety');
    expect((await instanceQuery(spec.database, 'SELECT body FROM notes ORDER BY id')).map((r) => r.body)).toEqual(['before']);
    expect(fs.readFileSync(fileA, 'utf8')).toBe('version 1');
    expect(fs.statSync(fileA).uid).toBe(TEST_IMAGE_UID);
    expect(fs.existsSync(path.join(driver.dataDirOf(spec.id), 'filestore', 'b.txt'))).toBe(false);
    await driver.waitReady(spec.id, 30_000);
    expect((await driver.listBackups(spec.id)).map((b) => b.backupId)).toEqual(expect.arrayContaining(['b1', safety.backupId]));
  });

  it('the platform restarted: an instance that should run comes back', async () => {
    await host.stop();
    // While the platform is down, the container goes (a host reboot without dockerd's restart, an operator).
    await docker.getContainer(containerName(spec.id)).stop({ t: 1 });
    host = await startDockerRuntime(driver);
    await driver.waitReady(spec.id, 30_000);
    expect((await viaGateway(spec.subdomain)).body).toContain('stand-in');
  });

  it('remove leaves no container, no volume, no folder and no route; backups stay', async () => {
    const before = await docker.getContainer(containerName(spec.id)).inspect();
    const volumes = before.Mounts.filter((m) => m.Type === 'volume').map((m) => m.Name);
    await driver.remove(spec.id);
    await dropInstanceDb(spec.database);
    await expect(docker.getContainer(containerName(spec.id)).inspect()).rejects.toMatchObject({ statusCode: 404 });
    const left = (await docker.listContainers({ all: true, filters: { label: [`saasodoo.io/instance-id=${spec.id}`] } })).length;
    expect(left).toBe(0);
    const names = ((await docker.listVolumes()).Volumes ?? []).map((v) => v.Name);
    expect(volumes.filter((v) => names.includes(v!))).toEqual([]);
    expect(fs.existsSync(driver.instanceDir(spec.id))).toBe(false);
    expect(await driver.status(spec.id)).toEqual({ state: 'missing' });
    expect(await instanceDbExists(spec.database)).toEqual({ database: false, role: false });
    expect((await viaGateway(spec.subdomain)).status).toBe(404);
    expect((await driver.listBackups(spec.id)).length).toBeGreaterThan(0);
    await driver.remove(spec.id); // idempotent
  });
});
