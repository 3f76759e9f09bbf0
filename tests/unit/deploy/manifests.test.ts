/** The pure parts of the deploy tooling: Knative Service shape, routes, ordering, diffing, secrets, readiness. */
import { describe, expect, it } from 'vitest';
import { differences, readiness, referencedSecrets } from '@saasodoo/platform/deploy/apply';
import { needsOf } from '@saasodoo/platform/deploy/analyze';
import { apiRoutes, functionImage, knativeService, runEnvs, scaleAnnotations } from '@saasodoo/platform/deploy/knative-services';
import { sortForApply, type KubeObject } from '@saasodoo/platform/deploy/objects';
import { setImages } from '@saasodoo/platform/deploy/render';
import type { FuncSpec } from '@saasodoo/platform/funcspec';

const spec: FuncSpec = {
  specVersion: '0.36.0',
  name: 'demo',
  created: '2026-11-26T00:00:00Z',
  runtime: 'node',
  registry: 'ghcr.io/saasodoo',
  invoke: 'cloudevent',
  run: {
    envs: [
      { name: 'PLAIN', value: 'x' },
      { name: 'FROM_SECRET', value: '{{ secret:s1:k1 }}' },
    ],
  },
  deploy: {
    namespace: 'saasodoo',
    healthEndpoints: { liveness: '/health/liveness', readiness: '/health/readiness' },
    options: {
      scale: { min: 0, max: 5, metric: 'rps', target: 20, utilization: 80 },
      resources: { requests: { cpu: '50m', memory: '96Mi' }, limits: { memory: '256Mi', concurrency: 10 } },
    },
  },
};

describe('knativeService', () => {
  it('maps func.yaml scale options to Knative autoscaling annotations', () => {
    expect(scaleAnnotations(spec)).toEqual({
      'autoscaling.knative.dev/min-scale': '0',
      'autoscaling.knative.dev/max-scale': '5',
      'autoscaling.knative.dev/metric': 'rps',
      'autoscaling.knative.dev/target': '20',
      'autoscaling.knative.dev/target-utilization-percentage': '80',
    });
  });

  it('maps run.envs literals and secret references, and refuses env: templates', () => {
    expect(runEnvs(spec)).toEqual([
      { name: 'PLAIN', value: 'x' },
      { name: 'FROM_SECRET', valueFrom: { secretKeyRef: { name: 's1', key: 'k1' } } },
    ]);
    expect(() => runEnvs({ ...spec, run: { envs: [{ name: 'X', value: '{{ env:HOME }}' }] } })).toThrow(/not supported/);
  });

  it('gives a function exactly the secrets and access its code needs', () => {
    const needs = { files: [], packages: [], databases: ['auth'], kubernetes: true, secrets: [{ env: 'AUTH_DB_PASSWORD', secret: 'saasodoo-db-auth', key: 'password' }] };
    const ksvc = knativeService(spec, needs, 'v1.2.3') as any;
    const tpl = ksvc.spec.template;
    const c = tpl.spec.containers[0];
    expect(ksvc.metadata).toMatchObject({ name: 'demo', namespace: 'saasodoo' });
    expect(ksvc.metadata.labels['networking.knative.dev/visibility']).toBe('cluster-local');
    expect(c.image).toBe('ghcr.io/saasodoo/demo:v1.2.3');
    expect(tpl.spec.serviceAccountName).toBe('saasodoo-runtime');
    expect(tpl.spec.containerConcurrency).toBe(10);
    expect(c.envFrom).toEqual([{ configMapRef: { name: 'saasodoo-config' } }]);
    expect(c.env).toContainEqual({ name: 'AUTH_DB_PASSWORD', valueFrom: { secretKeyRef: { name: 'saasodoo-db-auth', key: 'password' } } });
    expect(c.env).toContainEqual({ name: 'BACKUP_DIR', value: '/backups' });
    expect(c.readinessProbe.httpGet.path).toBe('/health/readiness');
    expect(c.livenessProbe.httpGet.path).toBe('/health/liveness');
    expect(c.resources).toEqual({ requests: { cpu: '50m', memory: '96Mi' }, limits: { memory: '256Mi' } });
    const plain = knativeService(spec, { ...needs, kubernetes: false, secrets: [] }) as any;
    expect(plain.spec.template.spec.serviceAccountName).toBe('saasodoo-function');
    expect(plain.spec.template.spec.volumes).toBeUndefined();
  });

  it('uses func.yaml image when set', () => {
    expect(functionImage({ ...spec, image: 'example.com/x:1' })).toBe('example.com/x:1');
  });
});

describe('needsOf', () => {
  it('finds databases, secrets and the kubernetes driver in source files', () => {
    const n = needsOf(['platform/src/db/index.ts', 'platform/src/redis.ts', 'platform/src/config.ts']);
    expect(n.secrets.map((s) => s.env)).toContain('REDIS_URL');
    expect(n.kubernetes).toBe(false);
    expect(n.databases).toEqual([]);
  });

  it("gives the card code the operator's Stripe key from an optional Secret (cards are off without one)", () => {
    const n = needsOf(['platform/src/billing/cards.ts']);
    expect(n.secrets).toContainEqual({ env: 'STRIPE_SECRET_KEY', secret: 'saasodoo-stripe', key: 'STRIPE_SECRET_KEY', optional: true });
    expect(needsOf(['platform/src/redis.ts']).secrets.map((s) => s.env)).not.toContain('STRIPE_SECRET_KEY');
  });
});

describe('apiRoutes', () => {
  it('routes /api/<fn> to the function with its cluster-local Host', () => {
    const objs = apiRoutes(['plans', 'login']) as any[];
    const route = objs.find((o) => o.kind === 'IngressRoute');
    expect(route.spec.routes.map((r: any) => r.match)).toEqual(['Path(`/api/plans`)', 'Path(`/api/login`)']);
    const host = objs.find((o) => o.metadata.name === 'api-host-plans');
    expect(host.spec.headers.customRequestHeaders.Host).toBe('plans.saasodoo.svc.cluster.local');
  });
});

describe('apply helpers', () => {
  const o = (apiVersion: string, kind: string, name: string, namespace?: string): KubeObject => ({ apiVersion, kind, metadata: { name, ...(namespace ? { namespace } : {}) } });

  it('orders namespaces first, operator-backed services before the broker, knative services before triggers, jobs last', () => {
    const sorted = sortForApply([
      o('batch/v1', 'Job', 'j', 'a'),
      o('eventing.knative.dev/v1', 'Trigger', 't', 'a'),
      o('serving.knative.dev/v1', 'Service', 'fn', 'a'),
      o('eventing.knative.dev/v1', 'Broker', 'b', 'a'),
      o('postgresql.cnpg.io/v1', 'Cluster', 'db', 'a'),
      o('v1', 'Namespace', 'a'),
    ]).map((x) => x.kind);
    expect(sorted).toEqual(['Namespace', 'Cluster', 'Broker', 'Service', 'Trigger', 'Job']);
  });

  it('differences ignore fields the server adds and report changed ones', () => {
    const desired = { spec: { replicas: 2, template: { spec: { containers: [{ name: 'a', image: 'x:2' }] } } } };
    const live = { spec: { replicas: 2, progressDeadlineSeconds: 600, template: { spec: { containers: [{ name: 'a', image: 'x:1', terminationMessagePath: '/dev/x' }] } } } };
    expect(differences(desired, live)).toEqual(['.spec.template.spec.containers[0].image: "x:1" → "x:2"']);
    expect(differences(desired, { ...live, spec: { ...live.spec, template: desired.spec.template } })).toEqual([]);
  });

  it('lists referenced Secrets, not optional ones, not ones it creates', () => {
    const objs: KubeObject[] = [
      {
        ...o('apps/v1', 'Deployment', 'd', 'ns'),
        spec: {
          template: {
            spec: {
              containers: [
                {
                  env: [
                    { name: 'A', valueFrom: { secretKeyRef: { name: 's1', key: 'k' } } },
                    { name: 'B', valueFrom: { secretKeyRef: { name: 's2', key: 'k', optional: true } } },
                  ],
                  envFrom: [{ secretRef: { name: 's3' } }],
                },
              ],
            },
          },
        },
      },
      { ...o('postgresql.cnpg.io/v1', 'Cluster', 'c', 'ns'), spec: { managed: { roles: [{ name: 'r', passwordSecret: { name: 's4' } }] } } },
      { ...o('v1', 'Secret', 's3', 'ns') },
    ];
    expect(referencedSecrets(objs)).toEqual(['ns/s1', 'ns/s4']);
  });

  it('knows when workloads are ready', () => {
    expect(readiness({ ...o('apps/v1', 'Deployment', 'd'), spec: { replicas: 2 }, status: { readyReplicas: 1 } })?.ready).toBe(false);
    expect(readiness({ ...o('apps/v1', 'Deployment', 'd'), spec: { replicas: 2 }, status: { readyReplicas: 2 } })?.ready).toBe(true);
    expect(readiness({ ...o('serving.knative.dev/v1', 'Service', 's'), status: { conditions: [{ type: 'Ready', status: 'True' }] } })?.ready).toBe(true);
    expect(readiness({ ...o('v1', 'Service', 's') })).toBeUndefined();
    expect(readiness({ ...o('batch/v1', 'Job', 'j'), status: { succeeded: 1 } })?.ready).toBe(true);
  });

  it('setImages points platform images at the requested registry and tag only', () => {
    const objs: KubeObject[] = [{ ...o('apps/v1', 'Deployment', 'd'), spec: { template: { spec: { containers: [{ image: 'ghcr.io/saasodoo/portal:latest' }, { image: 'redis:7' }] } } } }];
    setImages(objs, 'v9', 'registry.example/acme', 'ghcr.io/saasodoo');
    expect((objs[0] as any).spec.template.spec.containers.map((c: any) => c.image)).toEqual(['registry.example/acme/portal:v9', 'redis:7']);
  });
});
