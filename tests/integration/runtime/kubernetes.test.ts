/**
 * The kubernetes driver against the fake API server: the objects it applies
 * (validated with kubernetes-models and the Traefik / cert-manager CRD
 * schemas), ownership and cascade, readiness through the Watch API, Jobs for
 * backups, suspended / stopped / starting instances routed to the
 * status-page server (whose script is run here as deployed), and that
 * RUNTIME_RBAC_RULES is all it needs.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Ajv } from 'ajv';
import { ConfigMap, PersistentVolumeClaim, Secret, Service } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { Job } from 'kubernetes-models/batch/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { Certificate } from '@kubernetes-models/cert-manager/cert-manager.io/v1';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { config, repoRoot } from '@saasodoo/platform/config';
import { BackupStore } from '@saasodoo/platform/runtime/backup-store';
import { KubernetesDriver, RUNTIME_RBAC_RULES } from '@saasodoo/platform/runtime/kubernetes/driver';
import { instanceName, job, ownerRef, ROUTE_ANNOTATION, STATUS_PAGES_SERVICE, type KubeSettings } from '@saasodoo/platform/runtime/kubernetes/objects';
import { statusPageObjects } from '@saasodoo/platform/runtime/kubernetes/status-pages';
import { BackupError, RuntimeError, type InstanceSpec } from '@saasodoo/platform/runtime/types';
import { startFakeKube, type FakeKube, type KubeObject } from '../../helpers/fake-kube.ts';
import { initArgs, neutralizeArgs, serveArgs, targetOf } from '@saasodoo/platform/odoo/contract';
import { execFileSync } from 'node:child_process';
import { freePort } from '../../helpers/ports.ts';

const NS = 'saasodoo-instances';
const settings: KubeSettings = {
  namespace: NS,
  baseDomain: 'odoo.example.com',
  storageClass: 'cephfs',
  odooImage: 'odoo:{version}',
  backupImage: 'postgres:16',
  backupPvc: 'saasodoo-backups',
  clusterIssuer: 'letsencrypt',
};
const spec: InstanceSpec = {
  id: '3f1c2a9e-1111-4222-8333-444455556666',
  customerId: 'cust-1',
  name: 'Acme',
  subdomain: 'acme',
  odooVersion: '17',
  plan: 'standard-monthly',
  resources: { cpu: 2, memoryMiB: 4096, storageGiB: 20 },
  database: { host: 'pg.saasodoo.svc', port: 5432, name: 'odoo_c1_i1', user: 'odoo_i1', password: 'not-a-real-password-123' },
  masterPasswordHash: '$pbkdf2-sha512$1000$MDEyMzQ1Njc4OWFiY2RlZg$OM0FAoIqCVK1sWtxDiffVlBejtLa.ks4TP71JiecwuSZCG8iLbnlIEPOMoVX.i2B2wkSxjQ8CRGR9OkNGuIPMQ',
};
const name = instanceName(spec.id);

let fake: FakeKube;
let driver: KubernetesDriver;
let store: BackupStore;

const schemasDir = process.env.SCHEMAS_DIR ?? path.resolve(repoRoot, '../shared/reference/schemas');
// cert-manager's Certificate is checked with @kubernetes-models/cert-manager in any clone; Traefik's
// IngressRoute only against its CRD from SCHEMAS_DIR: @kubernetes-models/traefik needs Node 22 in every version.
const haveSchemas = fs.existsSync(path.join(schemasDir, 'crd-traefik.io_ingressroutes.yaml'));
const TRAEFIK_SKIP = `Traefik CRD schema not found in ${schemasDir} (set SCHEMAS_DIR): IngressRoute schema validation skipped (@kubernetes-models/traefik needs Node 22 in every version, so Traefik and CNPG stay on SCHEMAS_DIR)`;

function crdValidator(file: string, version: string) {
  const docs = YAML.parseAllDocuments(fs.readFileSync(path.join(schemasDir, file), 'utf8')).map((d) => d.toJS());
  const crd = docs.find((d) => d?.kind === 'CustomResourceDefinition');
  const schema = crd.spec.versions.find((v: any) => v.name === version).schema.openAPIV3Schema;
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
  return ajv.compile(schema);
}

const routeServices = () => fake.get('traefik.io/v1alpha1', 'IngressRoute', NS, name)!.spec.routes[0].services;
const ODOO_BACKEND = [{ name, port: 8069 }];
const pageBackend = (state: string) => [{ name: STATUS_PAGES_SERVICE, port: state }];

function objectsOf(kind: string): KubeObject[] {
  return fake.list({ namespace: NS, kind }).filter((o) => o.metadata.labels?.['saasodoo.io/instance-id'] === spec.id);
}

beforeAll(async () => {
  fake = await startFakeKube();
  store = new BackupStore(path.join(config().dataDir, 'k8s-backups'));
  driver = new KubernetesDriver({ kubeConfig: fake.kubeConfig(NS), settings, backups: store });
});

afterAll(async () => {
  await fake?.close();
});

beforeEach(() => fake.setRbac(undefined));

describe('kubernetes driver', () => {
  it('applies owned, valid objects sized from the plan', async () => {
    await driver.apply(spec);
    const cm = fake.get('v1', 'ConfigMap', NS, name)!;
    expect(cm).toBeDefined();
    expect(cm.data).not.toHaveProperty('password');
    expect(JSON.stringify(cm)).not.toContain(spec.database.password);
    const owned = (o: KubeObject) => expect(o.metadata.ownerReferences?.[0]).toMatchObject({ kind: 'ConfigMap', name, uid: cm.metadata.uid });

    const secret = fake.get('v1', 'Secret', NS, `${name}-db`)!;
    owned(secret);
    new Secret(secret as any).validate();
    expect((secret as any).stringData.PGPASSWORD).toBe(spec.database.password);

    const pvc = fake.get('v1', 'PersistentVolumeClaim', NS, `${name}-data`)!;
    owned(pvc);
    new PersistentVolumeClaim(pvc as any).validate();
    expect(pvc.spec).toMatchObject({ storageClassName: 'cephfs', accessModes: ['ReadWriteMany'], resources: { requests: { storage: '20Gi' } } });

    const dep = fake.get('apps/v1', 'Deployment', NS, name)!;
    owned(dep);
    new Deployment(dep as any).validate();
    expect(dep.spec.replicas).toBe(1);
    const c = dep.spec.template.spec.containers[0];
    expect(c.image).toBe('odoo:17');
    expect(c.resources).toEqual({ requests: { cpu: '2', memory: '4096Mi' }, limits: { cpu: '2', memory: '4096Mi' } });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/web/health?db_server_status=1', port: 8069 });
    expect(c.livenessProbe.httpGet).toEqual({ path: '/web/health', port: 8069 });
    expect(JSON.stringify(dep)).not.toContain(spec.database.password);

    const svc = fake.get('v1', 'Service', NS, name)!;
    owned(svc);
    new Service(svc as any).validate();
    new ConfigMap(cm as any).validate();

    const route = fake.get('traefik.io/v1alpha1', 'IngressRoute', NS, name)!;
    const cert = fake.get('cert-manager.io/v1', 'Certificate', NS, name)!;
    owned(route);
    owned(cert);
    expect(route.spec.routes[0].match).toBe('Host(`acme.odoo.example.com`)');
    expect(route.spec.tls.secretName).toBe(cert.spec.secretName);
    expect(cert.spec.dnsNames).toEqual(['acme.odoo.example.com']);
    new Certificate(cert as any).validate();
    if (!haveSchemas) {
      console.warn(TRAEFIK_SKIP);
      return;
    }
    const vRoute = crdValidator('crd-traefik.io_ingressroutes.yaml', 'v1alpha1');
    expect(vRoute(route), JSON.stringify(vRoute.errors)).toBe(true);
  });

  it('apply is idempotent (same objects, same uids)', async () => {
    const before = fake
      .list({ namespace: NS })
      .map((o) => `${o.kind}/${o.metadata.name}/${o.metadata.uid}`)
      .sort();
    await driver.apply(spec);
    expect(
      fake
        .list({ namespace: NS })
        .map((o) => `${o.kind}/${o.metadata.name}/${o.metadata.uid}`)
        .sort(),
    ).toEqual(before);
  });

  it('custom domains: a verified domain joins the IngressRoute hosts and the certificate; removed, it leaves both', async () => {
    await driver.apply({ ...spec, domains: ['erp.acme.test'] });
    const route = fake.get('traefik.io/v1alpha1', 'IngressRoute', NS, name)!;
    const cert = fake.get('cert-manager.io/v1', 'Certificate', NS, name)!;
    expect(route.spec.routes[0].match).toBe('(Host(`acme.odoo.example.com`) || Host(`erp.acme.test`))');
    expect(cert.spec.dnsNames).toEqual(['acme.odoo.example.com', 'erp.acme.test']);
    new Certificate(cert as any).validate();
    if (haveSchemas) {
      const vRoute = crdValidator('crd-traefik.io_ingressroutes.yaml', 'v1alpha1');
      expect(vRoute(route), JSON.stringify(vRoute.errors)).toBe(true);
    } else console.warn(TRAEFIK_SKIP);
    await driver.apply(spec);
    expect(fake.get('traefik.io/v1alpha1', 'IngressRoute', NS, name)!.spec.routes[0].match).toBe('Host(`acme.odoo.example.com`)');
    expect(fake.get('cert-manager.io/v1', 'Certificate', NS, name)!.spec.dnsNames).toEqual(['acme.odoo.example.com']);
  });

  it('waitReady follows the Deployment through the Watch API and then routes to Odoo', async () => {
    expect((await driver.status(spec.id)).state).toBe('starting');
    // Until a pod is ready, the customer gets the starting page.
    expect(routeServices()).toEqual(pageBackend('starting'));
    const seen: string[] = [];
    const ready = driver.waitReady(spec.id, 10_000, (p) => seen.push(p.state));
    await new Promise((r) => setTimeout(r, 100));
    const dep = fake.get('apps/v1', 'Deployment', NS, name)!;
    fake.setStatus('apps/v1', 'Deployment', NS, name, { observedGeneration: dep.metadata.generation, replicas: 1, readyReplicas: 0 });
    fake.setStatus('apps/v1', 'Deployment', NS, name, { observedGeneration: dep.metadata.generation, replicas: 1, readyReplicas: 1 });
    await ready;
    expect(seen).toEqual(['starting', 'running']);
    expect(routeServices()).toEqual(ODOO_BACKEND);
    expect(fake.get('apps/v1', 'Deployment', NS, name)!.metadata.annotations?.[ROUTE_ANNOTATION]).toBe('odoo');
    expect(await driver.status(spec.id)).toMatchObject({
      state: 'running',
      url: 'https://acme.odoo.example.com',
      healthUrl: `http://${name}.${NS}.svc.cluster.local:8069/web/health?db_server_status=1`,
      replicas: 1,
    });
  });

  it('waitReady fails on a stalled rollout and times out when nothing happens', async () => {
    await driver.scale(spec.id, 1);
    const dep = fake.get('apps/v1', 'Deployment', NS, name)!;
    fake.setStatus('apps/v1', 'Deployment', NS, name, { observedGeneration: dep.metadata.generation, replicas: 1, readyReplicas: 0 });
    await expect(driver.waitReady(spec.id, 300)).rejects.toMatchObject({ code: 'timeout' });
    const failing = driver.waitReady(spec.id, 10_000);
    fake.setStatus('apps/v1', 'Deployment', NS, name, {
      observedGeneration: dep.metadata.generation,
      replicas: 1,
      conditions: [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded' }],
    });
    await expect(failing).rejects.toMatchObject({ code: 'failed', message: expect.stringContaining('ProgressDeadlineExceeded') });
    await expect(driver.waitReady('no-such-instance', 1000)).rejects.toMatchObject({ code: 'not_found' });
  });

  it('scale: stopped and suspended are replicas 0, told apart', async () => {
    await driver.scale(spec.id, 0);
    expect(fake.get('apps/v1', 'Deployment', NS, name)!.spec.replicas).toBe(0);
    expect((await driver.status(spec.id)).state).toBe('stopped');
    await driver.scale(spec.id, 1, { suspended: true });
    expect(fake.get('apps/v1', 'Deployment', NS, name)!.spec.replicas).toBe(0);
    expect((await driver.status(spec.id)).state).toBe('suspended');
    await driver.apply(spec, { replicas: 1 });
    expect(fake.get('apps/v1', 'Deployment', NS, name)!.spec.replicas).toBe(1);
    expect((await driver.status(spec.id)).state).not.toBe('suspended');
    await expect(driver.scale('missing-one', 1)).rejects.toMatchObject({ code: 'not_found' });
  });

  it('suspend and stop route the instance to the status-page server; start and resume to the starting page, then to Odoo once ready', async () => {
    const route = () => fake.get('traefik.io/v1alpha1', 'IngressRoute', NS, name)!;
    const uid = route().metadata.uid;
    const odoo = ODOO_BACKEND;
    const page = pageBackend;
    const setReady = () => {
      const dep = fake.get('apps/v1', 'Deployment', NS, name)!;
      fake.setStatus('apps/v1', 'Deployment', NS, name, { observedGeneration: dep.metadata.generation, replicas: 1, readyReplicas: 1 });
    };
    const vRoute = haveSchemas ? crdValidator('crd-traefik.io_ingressroutes.yaml', 'v1alpha1') : undefined;
    const expectRoute = (services: unknown) => {
      const r = route();
      // With workers (2 CPUs), Odoo's bus goes to its gevent port, and only while the route points at Odoo.
      const websocket = { match: 'Host(`acme.odoo.example.com`) && PathPrefix(`/websocket`)', kind: 'Rule', services: [{ name, port: 8072 }] };
      expect(r.spec.routes).toEqual([{ match: 'Host(`acme.odoo.example.com`)', kind: 'Rule', services }, ...(services === odoo ? [websocket] : [])]);
      expect(r.spec.tls).toEqual({ secretName: `${name}-tls` });
      expect(r.metadata.uid).toBe(uid);
      expect(r.metadata.ownerReferences?.[0]).toMatchObject({ kind: 'ConfigMap', name });
      if (vRoute) expect(vRoute(r), JSON.stringify(vRoute.errors)).toBe(true);
    };
    const patches = () => fake.requests.filter((q) => q.method === 'PATCH' && ['deployments', 'ingressroutes'].includes(q.resource)).map((q) => q.resource);

    // The previous test's apply left a Deployment that the fake never made ready.
    expectRoute(page('starting'));
    let seen = fake.requests.length;
    await driver.scale(spec.id, 1, { suspended: true });
    expectRoute(page('suspended'));
    expect((await driver.status(spec.id)).state).toBe('suspended');
    // Going down, the route leaves Odoo before the pods do.
    expect(patches().slice(patches().length - 2)).toEqual(['ingressroutes', 'deployments']);
    expect(fake.requests.slice(seen).every((q) => q.status < 400)).toBe(true);

    await driver.scale(spec.id, 1);
    expectRoute(page('starting'));
    expect(patches().slice(patches().length - 2)).toEqual(['deployments', 'ingressroutes']);
    // Not ready (the stalled rollout of an earlier test): status() leaves the starting page alone.
    expect((await driver.status(spec.id)).state).not.toBe('running');
    expectRoute(page('starting'));
    const ready = driver.waitReady(spec.id, 10_000);
    setReady();
    await ready;
    expectRoute(odoo);

    // Starting an instance that already serves rolls nothing: its route never leaves Odoo.
    const generation = route().metadata.generation;
    await driver.scale(spec.id, 1);
    await driver.apply(spec);
    expectRoute(odoo);
    expect(route().metadata.generation).toBe(generation);

    await driver.scale(spec.id, 0);
    expectRoute(page('stopped'));
    await driver.apply(spec, { suspended: true });
    expectRoute(page('suspended'));
    expect(fake.get('apps/v1', 'Deployment', NS, name)!.spec.replicas).toBe(0);
    seen = fake.requests.length;
    await driver.apply(spec);
    expectRoute(page('starting'));
    expect(fake.get('apps/v1', 'Deployment', NS, name)!.spec.replicas).toBe(1);
    expect(fake.requests.slice(seen).every((q) => q.status < 400)).toBe(true);

    // With nobody waiting (a restore puts the instance back without waiting), status() moves a ready instance's route to Odoo.
    setReady();
    expect((await driver.status(spec.id)).state).toBe('running');
    expectRoute(odoo);
    expect(fake.get('apps/v1', 'Deployment', NS, name)!.metadata.annotations?.[ROUTE_ANNOTATION]).toBe('odoo');

    // Every port a route can name exists on the status-page Service and its pods.
    const objs = statusPageObjects(NS);
    const svc = objs.find((o) => o.kind === 'Service')!.spec as any;
    const container = (objs.find((o) => o.kind === 'Deployment')!.spec as any).template.spec.containers[0];
    for (const state of ['suspended', 'stopped', 'starting']) {
      const port = svc.ports.find((p: any) => p.name === state);
      expect(port, state).toBeDefined();
      expect(container.ports.map((p: any) => p.name)).toContain(port.targetPort);
    }
  });

  it('the status-page server, run from its ConfigMap as deployed, answers any path with the page of its state', async () => {
    const objs = statusPageObjects(NS);
    new ConfigMap(objs[0] as any).validate();
    new Deployment(objs[1] as any).validate();
    new Service(objs[2] as any).validate();
    new NetworkPolicy(objs[3] as any).validate();
    const cm = objs.find((o) => o.kind === 'ConfigMap') as any;
    const dep = objs.find((o) => o.kind === 'Deployment') as any;
    expect(dep.spec.template.spec.volumes).toEqual([{ name: 'pages', configMap: { name: cm.metadata.name } }]);
    expect(dep.spec.template.spec.containers[0].command).toEqual(['node', `/pages/${Object.keys(cm.data).find((k) => k.endsWith('.mjs'))}`]);

    // The ConfigMap's files in a folder, as the volume mounts them; only the ports change (free ones here).
    fs.mkdirSync(config().dataDir, { recursive: true });
    const dir = fs.mkdtempSync(path.join(config().dataDir, 'status-pages-'));
    const pages = JSON.parse(cm.data['pages.json']) as { state: string; port: number }[];
    for (const p of pages) p.port = await freePort();
    for (const [file, text] of Object.entries(cm.data as Record<string, string>)) fs.writeFileSync(path.join(dir, file), file === 'pages.json' ? JSON.stringify(pages) : text);
    const child = spawn(process.execPath, [path.join(dir, dep.spec.template.spec.containers[0].command[1].split('/').pop())], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let err = '';
      child.stderr.on('data', (d) => (err += d));
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d) => String(d).includes('status pages:') && resolve());
        child.once('exit', (code) => reject(new Error(`status-page server exited ${code}: ${err}`)));
      });
      const get = async (state: string, urlPath: string) => {
        const r = await fetch(`http://127.0.0.1:${pages.find((p) => p.state === state)!.port}${urlPath}`);
        return { status: r.status, type: r.headers.get('content-type'), body: await r.text() };
      };
      const suspended = await get('suspended', '/web/login?redirect=%2Fodoo');
      expect(suspended).toMatchObject({ status: 403, type: 'text/html; charset=utf-8' });
      expect(suspended.body).toContain('<h1>Instance suspended</h1>');
      expect(suspended.body).toContain('suspended because of an unpaid invoice');
      expect(suspended.body).not.toContain('stopped');
      expect(await get('suspended', '/')).toEqual(suspended);
      const stopped = await get('stopped', '/web');
      expect(stopped.status).toBe(503);
      expect(stopped.body).toContain('<h1>Instance stopped</h1>');
      expect(stopped.body).not.toContain('suspended');
      const starting = await get('starting', '/web/login');
      expect(starting).toMatchObject({ status: 503, type: 'text/html; charset=utf-8' });
      expect(starting.body).toContain('<h1>Instance starting</h1>');
      expect(starting.body).toContain('is starting; try again in a few seconds');
    } finally {
      child.kill();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('quota: the PVC grows, never shrinks', async () => {
    await driver.setQuota(spec.id, 30 * 1024 ** 3);
    expect(fake.get('v1', 'PersistentVolumeClaim', NS, `${name}-data`)!.spec.resources.requests.storage).toBe(String(30 * 1024 ** 3));
    await expect(driver.setQuota(spec.id, 1024 ** 3)).rejects.toMatchObject({ code: 'invalid' });
    await driver.apply(spec); // re-apply keeps the grown size
    expect(fake.get('v1', 'PersistentVolumeClaim', NS, `${name}-data`)!.spec.resources.requests.storage).toBe(String(30 * 1024 ** 3));
  });

  it('backup runs a Job; its parts are checked and hashed; a failed Job or empty dump is a BackupError', async () => {
    const jobDone = async (write: (dir: string) => void, ok = true) => {
      let jobs: KubeObject[] = [];
      for (let i = 0; i < 200 && !(jobs = objectsOf('Job')).length; i++) await new Promise((r) => setTimeout(r, 10));
      const j = jobs[0];
      new Job(j as any).validate();
      expect(j.metadata.ownerReferences?.[0].kind).toBe('ConfigMap');
      const backupId = j.metadata.labels!['saasodoo.io/backup-id'];
      write(store.partialDir(spec.id, backupId));
      fake.setStatus('batch/v1', 'Job', NS, j.metadata.name, ok ? { succeeded: 1 } : { failed: 1, conditions: [{ type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded' }] });
      return j;
    };
    const p = driver.backup(spec, 'k1', 'daily');
    const j = await jobDone((dir) => {
      fs.writeFileSync(path.join(dir, 'db.dump'), 'PGDMP fake dump');
      fs.writeFileSync(path.join(dir, 'filestore.tar.gz'), 'fake tar');
    });
    expect(j.spec.template.spec.containers[0].command.join(' ')).toContain('pg_dump -Fc');
    const m = await p;
    expect(m).toMatchObject({ backupId: 'k1', kind: 'daily', parts: { database: { bytes: 15 } } });
    expect(objectsOf('Job')).toEqual([]); // deleted after
    expect((await driver.listBackups(spec.id)).map((b) => b.backupId)).toEqual(['k1']);

    const empty = driver.backup(spec, 'k2', 'manual');
    await jobDone((dir) => {
      fs.writeFileSync(path.join(dir, 'db.dump'), '');
      fs.writeFileSync(path.join(dir, 'filestore.tar.gz'), 'x');
    });
    await expect(empty).rejects.toMatchObject({ name: 'BackupError', part: 'database' });

    const failed = driver.backup(spec, 'k3', 'manual');
    await jobDone(() => {}, false);
    await expect(failed).rejects.toBeInstanceOf(BackupError);
    expect((await driver.listBackups(spec.id)).map((b) => b.backupId)).toEqual(['k1']);
  });

  it('needs nothing beyond RUNTIME_RBAC_RULES; anything else is forbidden', async () => {
    const auto = await startFakeKube({
      simulate: { deployments: 'ready', jobs: 'succeed', delayMs: 5 },
      rbac: { rules: RUNTIME_RBAC_RULES.map((r) => ({ ...r, apiGroups: [...r.apiGroups], resources: [...r.resources], verbs: [...r.verbs] })), namespace: NS },
    });
    try {
      const d = new KubernetesDriver({ kubeConfig: auto.kubeConfig(NS), settings, backups: store });
      const s2 = { ...spec, id: 'aaaa1111-2222-4333-8444-555566667777', subdomain: 'other' };
      await d.apply(s2);
      await d.waitReady(s2.id, 5000);
      await d.scale(s2.id, 0);
      await d.setQuota(s2.id, 40 * 1024 ** 3);
      await expect(d.backup(s2, 'r1', 'manual')).rejects.toMatchObject({ name: 'BackupError', message: expect.stringContaining('missing') });
      await d.remove(s2.id);
      expect(auto.requests.filter((r) => r.status === 403)).toEqual([]);
      expect(auto.list({ namespace: NS })).toEqual([]);
      auto.setRbac({ rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get'] }], namespace: NS });
      await expect(d.apply(s2)).rejects.toBeInstanceOf(RuntimeError);
      expect(auto.requests.at(-1)).toMatchObject({ status: 403, verb: 'patch', resource: 'configmaps' });
    } finally {
      await auto.close();
    }
  });

  it("Odoo's init runs as a Job with the instance's image, odoo.conf Secret and volume, before any Deployment; the Deployment mounts the whole data dir", async () => {
    const auto = await startFakeKube({
      simulate: { deployments: 'ready', jobs: 'succeed', delayMs: 5 },
      rbac: { rules: RUNTIME_RBAC_RULES.map((r) => ({ ...r, apiGroups: [...r.apiGroups], resources: [...r.resources], verbs: [...r.verbs] })), namespace: NS },
    });
    try {
      const d = new KubernetesDriver({ kubeConfig: auto.kubeConfig(NS), settings, backups: store });
      const s3: InstanceSpec = { ...spec, id: 'bbbb1111-2222-4333-8444-555566667777', subdomain: 'fresh', demoData: true, odooVersion: '19' };
      const n3 = instanceName(s3.id);
      // Provisioning's order: storage (replicas 0), odoo_init, then the runtime.
      await d.apply(s3, { replicas: 0 });
      expect(auto.get('apps/v1', 'Deployment', NS, n3)).toBeUndefined();
      expect(await d.status(s3.id)).toMatchObject({ state: 'stopped' });
      let initJob: KubeObject | undefined;
      const seen = setInterval(() => {
        initJob ??= auto.list({ namespace: NS, kind: 'Job' })[0];
      }, 1);
      await d.initialize(s3, 10_000);
      clearInterval(seen);
      await d.apply(s3, { replicas: 1 });
      await d.waitReady(s3.id, 5000);
      expect(auto.requests.filter((r) => r.status === 403)).toEqual([]);

      const order = auto.requests.filter((r) => r.method === 'PATCH' && ['jobs', 'deployments'].includes(r.resource)).map((r) => r.resource);
      expect(order[0]).toBe('jobs');
      expect(order.indexOf('deployments')).toBeGreaterThan(order.indexOf('jobs'));
      expect(auto.list({ namespace: NS, kind: 'Job' })).toEqual([]); // deleted once done

      // The Job's command line is the contract's init, for version 19 with demo data asked for.
      expect(initJob).toBeDefined();
      new Job(initJob as any).validate();
      const jc = initJob!.spec.template.spec.containers[0];
      expect(jc.image).toBe('odoo:19');
      expect([...jc.command, ...jc.args]).toEqual(['odoo', ...initArgs(targetOf(s3), '/etc/odoo/odoo.conf')]);
      expect(jc.args).toEqual(['-c', '/etc/odoo/odoo.conf', '-d', s3.database.name, '-i', 'base', '--stop-after-init', '--with-demo']);
      const mounts = (c: any) => Object.fromEntries(c.volumeMounts.map((m: any) => [m.mountPath, m]));
      expect(mounts(jc)['/var/lib/odoo']).toEqual({ name: 'data', mountPath: '/var/lib/odoo' });
      expect(initJob!.spec.template.spec.volumes).toEqual(
        expect.arrayContaining([
          { name: 'data', persistentVolumeClaim: { claimName: `${n3}-data` } },
          { name: 'odoo-conf', secret: { secretName: `${n3}-odoo`, defaultMode: 0o440 } },
        ]),
      );

      // odoo.conf lives in a Secret (database password, master password hash), never in the ConfigMap.
      const conf = auto.get('v1', 'Secret', NS, `${n3}-odoo`)!;
      new Secret(conf as any).validate();
      expect((conf as any).stringData['odoo.conf']).toContain(`admin_passwd = ${s3.masterPasswordHash}`);
      expect((conf as any).stringData['odoo.conf']).toContain(`db_password = ${s3.database.password}`);
      expect((conf as any).stringData['odoo.conf']).toContain('data_dir = /var/lib/odoo');
      expect(JSON.stringify(auto.get('v1', 'ConfigMap', NS, n3))).not.toContain(s3.masterPasswordHash!);

      // The Deployment: odoo itself (not the entrypoint, which puts the password on the command line), the
      // contract's serve line (no --db-filter), the whole data dir on the volume, the gevent port with workers.
      const dep = auto.get('apps/v1', 'Deployment', NS, n3)!;
      new Deployment(dep as any).validate();
      const c = dep.spec.template.spec.containers[0];
      expect([...c.command, ...c.args]).toEqual(['odoo', ...serveArgs(targetOf(s3), '/etc/odoo/odoo.conf')]);
      expect(c.args).not.toContain('--db-filter');
      expect(mounts(c)['/var/lib/odoo']).toEqual({ name: 'data', mountPath: '/var/lib/odoo' });
      expect(c.volumeMounts.some((m: any) => m.subPath && m.name === 'data')).toBe(false);
      expect(c.ports).toEqual([
        { name: 'http', containerPort: 8069 },
        { name: 'websocket', containerPort: 8072 },
      ]);
      expect(c.env ?? []).toEqual([]);
      expect(JSON.stringify(dep)).not.toContain(s3.database.password);
      expect(JSON.stringify(initJob)).not.toContain(s3.database.password);
      expect(auto.get('v1', 'Service', NS, n3)!.spec.ports.map((p: any) => p.port)).toEqual([8069, 8072]);
    } finally {
      await auto.close();
    }
  });

  it('a failed init Job fails initialize with the reason', async () => {
    const s4: InstanceSpec = { ...spec, id: 'cccc1111-2222-4333-8444-555566667777', subdomain: 'broken' };
    const p = driver.initialize(s4, 10_000);
    let jobs: KubeObject[] = [];
    for (let i = 0; i < 500 && !(jobs = fake.list({ namespace: NS, kind: 'Job' }).filter((j) => j.metadata.labels?.['saasodoo.io/instance-id'] === s4.id)).length; i++)
      await new Promise((r) => setTimeout(r, 10));
    fake.setStatus('batch/v1', 'Job', NS, jobs[0].metadata.name, { failed: 1, conditions: [{ type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded' }] });
    await expect(p).rejects.toMatchObject({ name: 'RuntimeError', code: 'failed', message: expect.stringContaining('init Job failed: BackoffLimitExceeded') });
    await driver.remove(s4.id);
  });

  it("a staging copy: the original's backup published under the copy (filestore renamed), restored by a Job without a safety backup, then `odoo neutralize` as a Job like init's; all valid", async () => {
    const copy: InstanceSpec = {
      ...spec,
      id: 'dddd1111-2222-4333-8444-555566667777',
      subdomain: 'acme-staging',
      database: { ...spec.database, name: 'odoo_c1_i2', user: 'odoo_i2', password: 'another-not-real-password-456' },
    };
    // A finished backup of the original, its filestore keyed by the original's database.
    const partial = await store.begin(spec.id, 'st1');
    const work = fs.mkdtempSync(path.join(config().dataDir, 'fs-'));
    fs.mkdirSync(path.join(work, 'filestore', spec.database.name, 'ab'), { recursive: true });
    fs.writeFileSync(path.join(work, 'filestore', spec.database.name, 'ab', 'abcdef'), 'logo');
    execFileSync('tar', ['-czf', path.join(partial, 'filestore.tar.gz'), '-C', work, 'filestore']);
    fs.writeFileSync(path.join(partial, 'db.dump'), 'PGDMP fake dump');
    await store.finalize(spec.id, 'st1', { kind: 'safety', odooVersion: '17' });

    await driver.apply(copy, { replicas: 0 });
    const m = await driver.copyBackup(spec, 'st1', copy);
    expect(m).toMatchObject({ instanceId: copy.id, backupId: 'st1', kind: 'safety' });
    const listed = execFileSync('tar', ['-tzf', path.join(store.dir(copy.id, 'st1'), 'filestore.tar.gz')], { encoding: 'utf8' });
    expect(listed).toContain(`filestore/${copy.database.name}/ab/abcdef`);
    expect(listed).not.toContain(spec.database.name);

    /** Waits for the copy's Job of `component`, checks it is valid, and lets it succeed. */
    const finish = async (component: string) => {
      let j: KubeObject | undefined;
      for (let i = 0; i < 500 && !j; i++) {
        j = fake.list({ namespace: NS, kind: 'Job' }).find((x) => x.metadata.labels?.['saasodoo.io/instance-id'] === copy.id && x.metadata.labels?.['app.kubernetes.io/component'] === component);
        if (!j) await new Promise((r) => setTimeout(r, 10));
      }
      expect(j, `${component} Job`).toBeDefined();
      new Job(j as any).validate();
      fake.setStatus('batch/v1', 'Job', NS, j!.metadata.name, { succeeded: 1 });
      return j!;
    };
    const restoring = driver.restoreCopy(copy, 'st1');
    const restore = await finish('restore');
    await restoring;
    const script = restore.spec.template.spec.containers[0].command.join(' ');
    expect(script).toContain(`/backups/${copy.id}/st1`);
    expect(script).toContain('mkdir -p /instance/filestore'); // a copy's volume has no filestore yet
    expect(restore.spec.template.spec.volumes.map((v: any) => v.persistentVolumeClaim?.claimName)).toContain(`${instanceName(copy.id)}-data`);

    const neutralizing = driver.neutralize(copy, 10_000);
    const nj = await finish('neutralize');
    await neutralizing;
    const c = nj.spec.template.spec.containers[0];
    expect(c.image).toBe('odoo:17');
    expect([...c.command, ...c.args]).toEqual(['odoo', ...neutralizeArgs(targetOf(copy), '/etc/odoo/odoo.conf')]);
    expect(c.args).toEqual(['neutralize', '-c', '/etc/odoo/odoo.conf', '-d', copy.database.name]);
    expect(nj.spec.template.spec.volumes).toEqual(
      expect.arrayContaining([
        { name: 'data', persistentVolumeClaim: { claimName: `${instanceName(copy.id)}-data` } },
        { name: 'odoo-conf', secret: { secretName: `${instanceName(copy.id)}-odoo`, defaultMode: 0o440 } },
      ]),
    );
    expect(JSON.stringify(nj)).not.toContain(copy.database.password);
    // No safety backup Job ran for the copy: its data is replaced by design.
    expect(fake.requests.filter((r) => r.method === 'PATCH' && r.resource === 'jobs' && r.name?.includes(instanceName(copy.id)) && r.name.includes('-backup-'))).toEqual([]);

    // Its own objects at its own address, valid.
    await driver.apply(copy);
    const route = fake.get('traefik.io/v1alpha1', 'IngressRoute', NS, instanceName(copy.id))!;
    expect(route.spec.routes[0].match).toBe('Host(`acme-staging.odoo.example.com`)');
    new Deployment(fake.get('apps/v1', 'Deployment', NS, instanceName(copy.id)) as any).validate();
    new PersistentVolumeClaim(fake.get('v1', 'PersistentVolumeClaim', NS, `${instanceName(copy.id)}-data`) as any).validate();
    if (haveSchemas) {
      const vRoute = crdValidator('crd-traefik.io_ingressroutes.yaml', 'v1alpha1');
      expect(vRoute(route), JSON.stringify(vRoute.errors)).toBe(true);
    }
    await driver.deleteBackup(copy.id, 'st1');
    await driver.remove(copy.id);
    fs.rmSync(work, { recursive: true, force: true });
  });

  it("a dedicated database: a CloudNativePG Cluster (valid against its CRD) sized from the plan, bootstrapped with the instance's database, owner and a basic-auth Secret of its credentials, owned by the instance; ready through the Watch API; removed alone or with the instance", async () => {
    const auto = await startFakeKube({
      rbac: { rules: RUNTIME_RBAC_RULES.map((r) => ({ ...r, apiGroups: [...r.apiGroups], resources: [...r.resources], verbs: [...r.verbs] })), namespace: NS },
    });
    try {
      const d = new KubernetesDriver({ kubeConfig: auto.kubeConfig(NS), settings, backups: store });
      const s3: InstanceSpec = { ...spec, id: 'bbbb1111-2222-4333-8444-555566667777', subdomain: 'premium', plan: 'premium-monthly', resources: { cpu: 4, memoryMiB: 8192, storageGiB: 50 } };
      const n = `${instanceName(s3.id)}-pg`;
      expect(await d.ensureDatabaseServer(s3, { adminPassword: 'not-used-by-cnpg' })).toEqual({ host: `${n}-rw.${NS}.svc`, port: 5432 });
      const cm = auto.get('v1', 'ConfigMap', NS, instanceName(s3.id))!;
      const cluster = auto.get('postgresql.cnpg.io/v1', 'Cluster', NS, n)!;
      expect(cluster.metadata.ownerReferences?.[0]).toMatchObject({ kind: 'ConfigMap', name: instanceName(s3.id), uid: cm.metadata.uid });
      expect(cluster.spec).toMatchObject({
        instances: 1,
        enableSuperuserAccess: false,
        bootstrap: { initdb: { database: s3.database.name, owner: s3.database.user, secret: { name: `${n}-owner` }, localeCollate: 'C' } },
        storage: { size: '50Gi' },
        resources: { requests: { cpu: '1000m', memory: '2048Mi' }, limits: { memory: '2048Mi' } },
      });
      // CloudNativePG's own postgres database and superuser are never the instance's.
      expect([cluster.spec.bootstrap.initdb.database, cluster.spec.bootstrap.initdb.owner]).not.toContain('postgres');
      expect(JSON.stringify(cluster)).not.toContain(s3.database.password);
      const secret = auto.get('v1', 'Secret', NS, `${n}-owner`)!;
      new Secret(secret as any).validate();
      expect(secret).toMatchObject({ type: 'kubernetes.io/basic-auth', stringData: { username: s3.database.user, password: s3.database.password } });
      expect(secret.metadata.ownerReferences?.[0]).toMatchObject({ kind: 'Cluster', name: n, uid: cluster.metadata.uid });
      if (fs.existsSync(path.join(schemasDir, 'crd-cnpg-postgresql.cnpg.io_clusters.yaml'))) {
        const valid = crdValidator('crd-cnpg-postgresql.cnpg.io_clusters.yaml', 'v1');
        expect(valid(cluster), JSON.stringify(valid.errors)).toBe(true);
        // The validator is not a rubber stamp: a wrong field type fails.
        expect(valid({ ...cluster, spec: { ...cluster.spec, instances: 'one' } })).toBe(false);
      } else {
        console.warn(`crd-cnpg-postgresql.cnpg.io_clusters.yaml not found in ${schemasDir} (set SCHEMAS_DIR): Cluster schema validation skipped`);
      }
      // Backup and restore Jobs connect to the server their spec names (a move restores onto its target before the switch).
      const restoreJob = job({ ...s3, database: { ...s3.database, host: `${n}-rw.${NS}.svc` } }, settings, ownerRef(cm as any), 'restore', 'b1', 'restore-b1');
      const c0 = (restoreJob as any).spec.template.spec.containers[0];
      expect(c0.env).toEqual([
        { name: 'PGHOST', value: `${n}-rw.${NS}.svc` },
        { name: 'PGPORT', value: '5432' },
      ]);
      new Job(restoreJob as any).validate();
      // Ready when CloudNativePG says an instance is.
      const ready = d.waitDatabaseServer(s3.id, 5000);
      setTimeout(() => auto.setStatus('postgresql.cnpg.io/v1', 'Cluster', NS, n, { readyInstances: 1, phase: 'Cluster in healthy state' }), 50);
      await ready;
      // A move back to a shared plan removes the server alone; the instance's other objects stay.
      await d.removeDatabaseServer(s3.id);
      await d.removeDatabaseServer(s3.id);
      expect(auto.get('postgresql.cnpg.io/v1', 'Cluster', NS, n)).toBeUndefined();
      expect(auto.get('v1', 'Secret', NS, `${n}-owner`)).toBeUndefined();
      expect(auto.get('v1', 'ConfigMap', NS, instanceName(s3.id))).toBeDefined();
      // Terminate: removing the instance takes its database server with it.
      await d.ensureDatabaseServer(s3, { adminPassword: 'x' });
      await d.remove(s3.id);
      expect(auto.list({ namespace: NS })).toEqual([]);
      expect(auto.requests.filter((r) => r.status === 403)).toEqual([]);
    } finally {
      await auto.close();
    }
  });

  it('remove cascades through owner references and is idempotent', async () => {
    expect(objectsOf('Deployment')).toHaveLength(1);
    await driver.remove(spec.id);
    expect(fake.list({ namespace: NS })).toEqual([]);
    expect(await driver.status(spec.id)).toEqual({ state: 'missing' });
    await driver.remove(spec.id);
  });
});

describe('fake API server', () => {
  it('409 on a stale resourceVersion; watch resumes from a resourceVersion', async () => {
    const kc = fake.kubeConfig(NS);
    const base = fake.url;
    const token = { authorization: 'Bearer x', 'content-type': 'application/json' };
    const created = await (await fetch(`${base}/api/v1/namespaces/${NS}/configmaps`, { method: 'POST', headers: token, body: JSON.stringify({ metadata: { name: 'c' }, data: { a: '1' } }) })).json();
    expect((await fetch(`${base}/api/v1/namespaces/${NS}/configmaps`, { method: 'POST', headers: token, body: JSON.stringify({ metadata: { name: 'c' } }) })).status).toBe(409);
    const put = (rv: string) =>
      fetch(`${base}/api/v1/namespaces/${NS}/configmaps/c`, { method: 'PUT', headers: token, body: JSON.stringify({ metadata: { name: 'c', resourceVersion: rv }, data: { a: '2' } }) });
    const ok = await put(created.metadata.resourceVersion);
    expect(ok.status).toBe(200);
    const stale = await put(created.metadata.resourceVersion);
    expect(stale.status).toBe(409);
    expect((await stale.json()).reason).toBe('Conflict');
    expect((await fetch(`${base}/api/v1/namespaces/${NS}/configmaps/nope`)).status).toBe(404);
    const events: string[] = [];
    const { Watch } = await import('@kubernetes/client-node');
    const ctrl = await new Watch(kc).watch(
      `/api/v1/namespaces/${NS}/configmaps`,
      { resourceVersion: created.metadata.resourceVersion },
      (t, o) => events.push(`${t} ${o.data?.a ?? ''}`),
      () => {},
    );
    await fetch(`${base}/api/v1/namespaces/${NS}/configmaps/c`, { method: 'DELETE', headers: token });
    for (let i = 0; i < 100 && events.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    ctrl.abort();
    expect(events).toEqual(['MODIFIED 2', 'DELETED 2']);
  });
});
