/**
 * The pool health check of a CloudNativePG server (issue 20 item 4 on the
 * kubernetes driver): the platform holds no credentials for it, so the check
 * reads the Cluster's status through the Kubernetes API (the fake API server,
 * with exactly the runtime's RBAC rules) and applies the same rules as to any
 * pool: a failure degrades it, three in a row make it unhealthy
 * (`pool.unhealthy`, which mails the operator), a healthy status makes it
 * active again (`pool.recovered`). The Cluster's status is patched here as
 * CloudNativePG would write it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resetConfig } from '@saasodoo/platform/config';
import { closeDatabases, db } from '@saasodoo/platform/db/index';
import { dropNamespace, migrate } from '@saasodoo/platform/db/migrate';
import { dedicatedPoolName } from '@saasodoo/platform/instances/dedicated';
import { checkPools } from '@saasodoo/platform/instances/pool-health';
import { log } from '@saasodoo/platform/log';
import { resetRuntime, runtime, type InstanceSpec } from '@saasodoo/platform/runtime/index';
import { RUNTIME_RBAC_RULES } from '@saasodoo/platform/runtime/kubernetes/driver';
import { dbClusterName } from '@saasodoo/platform/runtime/kubernetes/objects';
import { startFakeKube, type FakeKube } from '../../helpers/fake-kube.ts';

const NS = 'saasodoo-instances';
const CLUSTER = 'postgresql.cnpg.io/v1';
const spec: InstanceSpec = {
  id: 'cccc1111-2222-4333-8444-555566667777',
  customerId: 'c-pool-health',
  name: 'Premium Books',
  subdomain: 'premium-books',
  odooVersion: '17',
  plan: 'premium-monthly',
  resources: { cpu: 4, memoryMiB: 8192, storageGiB: 50 },
  database: { host: 'unused', port: 5432, name: 'odoo_pool_health', user: 'tenant_pool_health', password: 'not-a-real-password' },
};
const pool = dedicatedPoolName(spec.id);
const cmd = { eventId: 'tick', eventType: 'com.saasodoo.health.tick', data: {}, log };
let fake: FakeKube;
let dir: string;
const saved = { ...process.env };

beforeAll(async () => {
  fake = await startFakeKube({ rbac: { rules: RUNTIME_RBAC_RULES.map((r) => ({ apiGroups: [...r.apiGroups], resources: [...r.resources], verbs: [...r.verbs] })), namespace: NS } });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pool-health-cnpg-'));
  fs.writeFileSync(path.join(dir, 'kubeconfig'), fake.kubeConfig(NS).exportConfig());
  Object.assign(process.env, { RUNTIME_DRIVER: 'kubernetes', KUBECONFIG: path.join(dir, 'kubeconfig'), K8S_NAMESPACE: NS });
  resetConfig();
  resetRuntime();
  await migrate({ databases: ['instance'] });
});
afterAll(async () => {
  for (const k of ['RUNTIME_DRIVER', 'KUBECONFIG', 'K8S_NAMESPACE']) if (saved[k] === undefined) delete process.env[k];
  Object.assign(process.env, saved);
  resetConfig();
  resetRuntime();
  await fake?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  await closeDatabases();
  await dropNamespace();
});

const state = () => db('instance').one(`SELECT state, health_failures, last_error FROM db_pools WHERE name = $1`, [pool]);
const events = (type: string) => db('instance').manyOrNone(`SELECT data FROM outbox WHERE type = $1 AND subject = $2 ORDER BY created_at`, [`com.saasodoo.${type}`, pool]);
/** The status CloudNativePG writes: healthy, or its primary lost. */
const healthy = { instances: 1, readyInstances: 1, phase: 'Cluster in healthy state', conditions: [{ type: 'Ready', status: 'True', reason: 'ClusterIsReady' }] };
const failing = {
  instances: 1,
  readyInstances: 0,
  phase: 'Failing over',
  conditions: [{ type: 'Ready', status: 'False', reason: 'ClusterIsNotReady', message: 'Cluster Is Not Ready' }],
};

describe('the pool health check of a CloudNativePG server', () => {
  it('reads the Cluster status: ready is active; not ready degrades it, three times unhealthy (pool.unhealthy); ready again is active (pool.recovered)', async () => {
    const rt = await runtime();
    expect(rt.name).toBe('kubernetes');
    // As dedicated.ts registers it: the driver's address, no admin (CloudNativePG keeps its superuser).
    const server = await rt.ensureDatabaseServer(spec, { adminPassword: 'unused' });
    await db('instance').none(`INSERT INTO db_pools (name, kind, host, port, capacity) VALUES ($1, 'dedicated', $2, $3, 1)`, [pool, server.host, server.port]);
    const name = dbClusterName(spec.id);

    fake.setStatus(CLUSTER, 'Cluster', NS, name, healthy);
    await checkPools(cmd);
    expect(await state()).toEqual({ state: 'active', health_failures: 0, last_error: null });

    fake.setStatus(CLUSTER, 'Cluster', NS, name, failing);
    await checkPools(cmd);
    expect(await state()).toMatchObject({ state: 'degraded', health_failures: 1 });
    expect((await state()).last_error).toBe('CloudNativePG reports it not ready: ClusterIsNotReady (Cluster Is Not Ready) (phase: Failing over)');
    await checkPools(cmd);
    expect(await events('pool.unhealthy')).toEqual([]);
    const third = await checkPools(cmd);
    expect(third.unhealthy).toBe(1);
    expect(await state()).toMatchObject({ state: 'unhealthy', health_failures: 3 });
    expect(await events('pool.unhealthy')).toEqual([{ data: { pool, failures: 3, reason: expect.stringContaining('not ready') } }]);
    await checkPools(cmd); // still failing: no second mail
    expect(await events('pool.unhealthy')).toHaveLength(1);

    fake.setStatus(CLUSTER, 'Cluster', NS, name, healthy);
    await checkPools(cmd);
    expect(await state()).toEqual({ state: 'active', health_failures: 0, last_error: null });
    expect(await events('pool.recovered')).toEqual([{ data: { pool } }]);
  });

  it('fewer ready instances than the Cluster has, a phase other than healthy without conditions, or no Cluster at all are failures too', async () => {
    const name = dbClusterName(spec.id);
    fake.setStatus(CLUSTER, 'Cluster', NS, name, { ...healthy, instances: 2, readyInstances: 1 });
    await checkPools(cmd);
    expect(await state()).toMatchObject({ state: 'degraded', health_failures: 1, last_error: '1 of 2 PostgreSQL instance(s) ready (phase: Cluster in healthy state)' });
    fake.setStatus(CLUSTER, 'Cluster', NS, name, { instances: 1, readyInstances: 1, phase: 'Setting up primary' });
    await checkPools(cmd);
    expect(await state()).toMatchObject({ state: 'degraded', health_failures: 2, last_error: 'CloudNativePG reports the phase "Setting up primary"' });
    await (await runtime()).removeDatabaseServer(spec.id);
    await checkPools(cmd);
    expect(await state()).toMatchObject({ state: 'unhealthy', health_failures: 3, last_error: 'its CloudNativePG Cluster does not exist' });
    // Every read went through the runtime's own RBAC rules.
    expect(fake.requests.filter((r) => r.status === 403)).toEqual([]);
    expect(fake.requests.some((r) => r.method === 'GET' && r.resource === 'clusters' && r.name === name)).toBe(true);
  });
});
