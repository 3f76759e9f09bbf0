/**
 * Pod Security Admission `restricted` on the instances namespace (issue 15,
 * finding 9): every pod the kubernetes driver creates there (Odoo, backup,
 * restore and usage Jobs) and the status-page server would be admitted.
 * Objects as applied to the fake API server; infra/base/namespaces.yaml
 * labels the namespace (tests/unit/deploy/cluster-hardening.test.ts).
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { config } from '@saasodoo/platform/config';
import { BackupStore } from '@saasodoo/platform/runtime/backup-store';
import { KubernetesDriver } from '@saasodoo/platform/runtime/kubernetes/driver';
import { initJob, job, type KubeSettings } from '@saasodoo/platform/runtime/kubernetes/objects';
import { statusPageObjects } from '@saasodoo/platform/runtime/kubernetes/status-pages';
import type { InstanceSpec } from '@saasodoo/platform/runtime/types';
import { startFakeKube, type FakeKube } from '../../helpers/fake-kube.ts';
import { podSpecOf, restrictedViolations } from '../../helpers/pod-security.ts';

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
  id: '7a1c2a9e-1111-4222-8333-444455556666',
  customerId: 'cust-1',
  name: 'Acme',
  subdomain: 'acme',
  odooVersion: '17',
  plan: 'basic-monthly',
  resources: { cpu: 1, memoryMiB: 2048, storageGiB: 10 },
  database: { host: 'pg.saasodoo.svc', port: 5432, name: 'odoo_c1_i1', user: 'odoo_i1', password: 'not-a-real-password-123' },
  masterPasswordHash: '$pbkdf2-sha512$1000$MDEyMzQ1Njc4OWFiY2RlZg$OM0FAoIqCVK1sWtxDiffVlBejtLa.ks4TP71JiecwuSZCG8iLbnlIEPOMoVX.i2B2wkSxjQ8CRGR9OkNGuIPMQ',
};

let fake: FakeKube;
let driver: KubernetesDriver;

beforeAll(async () => {
  fake = await startFakeKube();
  driver = new KubernetesDriver({ kubeConfig: fake.kubeConfig(NS), settings, backups: new BackupStore(path.join(config().dataDir, 'psa-backups')) });
});

afterAll(async () => {
  await fake?.close();
});

describe('pod security restricted', () => {
  it('the checker refuses what restricted refuses (a pod without the hardening)', () => {
    const bare = { containers: [{ name: 'x', image: 'x' }], volumes: [{ name: 'h', hostPath: { path: '/' } }] };
    expect(restrictedViolations(bare)).toEqual([
      'volume h of type hostPath',
      'container x: allowPrivilegeEscalation must be false',
      'container x: runAsNonRoot must be true',
      'container x: seccompProfile must be RuntimeDefault or Localhost',
      'container x: capabilities must drop ALL',
    ]);
  });

  it('every pod the driver creates in the instances namespace would be admitted', async () => {
    await driver.apply(spec, { replicas: 1 });
    const workloads = fake.list({ namespace: NS }).filter((o) => podSpecOf(o));
    expect(workloads.map((o) => o.kind)).toContain('Deployment');
    const owner = { apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: 'u1' };
    const jobs = [...(['backup', 'restore', 'usage'] as const).map((k) => job(spec, settings, owner as never, k, 'b1', `job-${k}`)), initJob(spec, settings, owner as never, 'job-init')];
    for (const o of [...workloads, ...jobs, ...statusPageObjects(NS).filter((x) => podSpecOf(x))]) {
      expect([`${o.kind}/${o.metadata.name}`, restrictedViolations(podSpecOf(o))]).toEqual([`${o.kind}/${o.metadata.name}`, []]);
    }
  });
});
