/**
 * `platform deploy` against the fake Kubernetes API server: a dry run writes
 * nothing, missing Secrets stop the deploy before any write, an object the
 * cluster refuses (its server-side dry run) stops it before any write, the first run
 * applies every rendered object by server-side apply, a second run changes
 * nothing (no write request at all), a changed object is updated alone, and
 * the readiness wait finishes once the controllers (simulated) report ready.
 */
import fs from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { deploy, readiness, referencedSecrets } from '@saasodoo/platform/deploy/apply';
import { objectId, type KubeObject } from '@saasodoo/platform/deploy/objects';
import { render } from '@saasodoo/platform/deploy/render';
import { DEFAULT_RESOURCES, startFakeKube, type FakeKube, type FakeKubeOptions, type ResourceType } from '../../helpers/fake-kube.ts';
import { copyInfra, kubectlOrSkip } from '../../helpers/infra-copy.ts';

const kubectl = kubectlOrSkip('the deploy tests (render needs kubectl kustomize)');

/** Resource types the fake does not know yet, derived from the rendered objects. */
function extraTypes(objects: KubeObject[]): ResourceType[] {
  const known = new Set(DEFAULT_RESOURCES.map((t) => `${t.group ? `${t.group}/` : ''}${t.version}/${t.kind}`));
  const extra = new Map<string, ResourceType>();
  for (const o of objects) {
    const key = `${o.apiVersion}/${o.kind}`;
    if (known.has(key) || extra.has(key)) continue;
    const [group, version] = o.apiVersion.includes('/') ? o.apiVersion.split('/') : ['', o.apiVersion];
    extra.set(key, { group: group!, version: version!, kind: o.kind, plural: `${o.kind.toLowerCase()}s`, namespaced: !!o.metadata.namespace, subresources: ['status'] });
  }
  return [...extra.values()];
}

function secretsFor(objects: KubeObject[]): KubeObject[] {
  return referencedSecrets(objects).map((ref) => {
    const [namespace, name] = ref.split('/') as [string, string];
    return { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace }, type: 'Opaque', data: {} };
  });
}

/** Requests that change the cluster (a server-side dry run changes nothing). */
const writes = (kube: FakeKube) => kube.requests.filter((r) => r.method !== 'GET' && !r.dryRun).length;

describe.skipIf(!kubectl)('platform deploy', () => {
  let dir: string;
  let objects: KubeObject[];
  let kube: FakeKube | undefined;
  const lines: string[] = [];
  const progress = (l: string) => lines.push(l);

  beforeAll(async () => {
    dir = copyInfra();
    objects = (await render({ overlay: 'production', dir, tag: 'v1.0.0' })).objects;
  }, 120_000);

  afterEach(async () => {
    await kube?.close();
    kube = undefined;
    lines.length = 0;
  });

  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function fake(simulate?: FakeKubeOptions['simulate']) {
    kube = await startFakeKube({ resources: extraTypes(objects), simulate });
    return kube;
  }

  it('--dry-run writes nothing and reports every object as a create', async () => {
    const k = await fake();
    const r = await deploy(objects, { kubeConfig: k.kubeConfig(), dryRun: true, progress });
    expect(writes(k)).toBe(0);
    expect(r.changes.every((c) => c.action === 'create')).toBe(true);
    expect(r.changes).toHaveLength(objects.length);
    expect(lines.some((l) => l.startsWith('warning: Missing Secrets'))).toBe(true);
  });

  it('refuses to deploy while a referenced Secret is missing, naming it', async () => {
    const k = await fake();
    await expect(deploy(objects, { kubeConfig: k.kubeConfig(), wait: false, progress })).rejects.toThrow(/Missing Secrets[\s\S]*saasodoo-services\/saasodoo-db-auth/);
    expect(writes(k)).toBe(0);
  });

  it('applies everything, then a second run changes nothing; a changed object is updated alone', async () => {
    const k = await fake();
    for (const s of secretsFor(objects)) k.put(s as any);
    const before = writes(k);
    const first = await deploy(objects, { kubeConfig: k.kubeConfig(), wait: false, progress });
    expect(first.changes.filter((c) => c.action !== 'create')).toEqual([]);
    for (const o of objects) expect(k.get(o.apiVersion, o.kind, o.metadata.namespace, o.metadata.name), objectId(o)).toBeDefined();
    const applies = k.requests.filter((r) => r.method === 'PATCH' && !r.dryRun);
    expect(applies).toHaveLength(objects.length);
    // The cluster checked every object before the first write.
    const checks = k.requests.filter((r) => r.dryRun);
    expect(checks).toHaveLength(objects.length);
    expect(k.requests.indexOf(checks.at(-1)!)).toBeLessThan(k.requests.indexOf(applies[0]!));
    // Namespaces before anything namespaced; the Broker before Triggers; Knative Services before Triggers.
    const firstIndex = (resource: string) => applies.findIndex((r) => r.resource === resource);
    expect(firstIndex('namespaces')).toBe(0);
    expect(firstIndex('brokers')).toBeLessThan(firstIndex('triggers'));
    expect(applies.findIndex((r) => r.group === 'serving.knative.dev')).toBeLessThan(firstIndex('triggers'));

    const afterFirst = writes(k);
    expect(afterFirst - before).toBe(objects.length);
    const requestsBefore = k.requests.length;
    const second = await deploy(objects, { kubeConfig: k.kubeConfig(), wait: false, progress });
    expect(second.changes.every((c) => c.action === 'unchanged')).toBe(true);
    expect(writes(k)).toBe(afterFirst);
    expect(k.requests.slice(requestsBefore).filter((r) => r.dryRun)).toEqual([]);
    expect(lines.at(-1)).toMatch(/^0 create, 0 update, 0 replace, \d+ unchanged$/);

    const changed = structuredClone(objects);
    const cm = changed.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'saasodoo-config') as any;
    cm.data.LOG_LEVEL = 'debug';
    const third = await deploy(changed, { kubeConfig: k.kubeConfig(), wait: false, diff: true, progress });
    expect(third.changes.filter((c) => c.action !== 'unchanged')).toEqual([{ id: objectId(cm), action: 'update', diff: ['.data.LOG_LEVEL: "info" → "debug"'] }]);
    expect(writes(k)).toBe(afterFirst + 1);
  });

  it('an object the cluster refuses (server-side dry run) stops the deploy before anything is applied, naming it', async () => {
    const k = await fake();
    for (const s of secretsFor(objects)) k.put(s as any);
    const bad = structuredClone(objects);
    // The last Deployment in apply order: every object before it would have been applied without the dry run.
    const dep = bad.filter((o) => o.kind === 'Deployment').at(-1) as any;
    delete dep.spec.selector;
    const err = await deploy(bad, { kubeConfig: k.kubeConfig(), wait: false, progress }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).toContain('The cluster refuses 1 object(s) (server-side dry run); nothing was applied');
    expect(err?.message).toContain(`${objectId(dep)}: `);
    expect(err?.message).toMatch(/selector/);
    expect(writes(k)).toBe(0);
    expect(k.requests.filter((r) => r.dryRun && r.status === 422)).toHaveLength(1);
    // The dry runs of the valid objects answered as if written (201) and stored nothing.
    expect(k.requests.filter((r) => r.dryRun && r.status === 201)).toHaveLength(objects.length - 1);
    for (const o of objects) expect(k.get(o.apiVersion, o.kind, o.metadata.namespace, o.metadata.name), objectId(o)).toBeUndefined();
  });

  it('replaces a Job whose spec changed (Jobs are immutable)', async () => {
    const k = await fake();
    for (const s of secretsFor(objects)) k.put(s as any);
    await deploy(objects, { kubeConfig: k.kubeConfig(), wait: false, progress });
    const changed = structuredClone(objects);
    const job = changed.find((o) => o.kind === 'Job') as any;
    job.spec.template.metadata.annotations['saasodoo.io/config-hash'] = '0000000000000000';
    const r = await deploy(changed, { kubeConfig: k.kubeConfig(), wait: false, progress, pollMs: 10 });
    expect(r.changes.filter((c) => c.action !== 'unchanged').map((c) => c.action)).toEqual(['replace']);
    expect(k.requests.filter((q) => q.method === 'DELETE' && q.resource === 'jobs')).toHaveLength(1);
    expect(k.get('batch/v1', 'Job', job.metadata.namespace, job.metadata.name)?.spec.template.metadata.annotations['saasodoo.io/config-hash']).toBe('0000000000000000');
  });

  it('waits until every workload is ready, printing progress', async () => {
    const k = await fake({ deployments: 'ready', jobs: 'succeed', delayMs: 5 });
    for (const s of secretsFor(objects)) k.put(s as any);
    // Play the operators: once everything is applied, mark custom resources ready, a little later.
    let applied = false;
    const watchLines = (l: string) => {
      lines.push(l);
      if (/^\d+ create/.test(l)) setTimeout(() => (applied = true), 300);
    };
    const timer = setInterval(() => {
      if (!applied) return;
      for (const o of k.list()) {
        const r = readiness(o as KubeObject);
        if (!r || r.ready || o.kind === 'Deployment' || o.kind === 'Job') continue;
        const st =
          o.kind === 'StatefulSet'
            ? { readyReplicas: o.spec?.replicas ?? 1 }
            : o.kind === 'Cluster'
              ? { readyInstances: o.spec.instances, phase: 'Cluster in healthy state' }
              : o.kind === 'RabbitmqCluster'
                ? { conditions: [{ type: 'AllReplicasReady', status: 'True' }] }
                : o.kind === 'CephFilesystem'
                  ? { phase: 'Ready' }
                  : { conditions: [{ type: 'Ready', status: 'True' }] };
        k.setStatus(o.apiVersion, o.kind, o.metadata.namespace, o.metadata.name, st);
      }
    }, 20);
    try {
      const r = await deploy(objects, { kubeConfig: k.kubeConfig(), progress: watchLines, pollMs: 30, timeoutSeconds: 30 });
      expect(r.notReady).toEqual([]);
      expect(r.ready).toBe(true);
      expect(lines.some((l) => /^ready \d+\/\d+ \(waiting for /.test(l))).toBe(true);
      expect(lines.at(-1)).toMatch(/^ready (\d+)\/\1$/);
    } finally {
      clearInterval(timer);
    }
  });
});
