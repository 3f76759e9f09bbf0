/**
 * `platform render` of both overlays (on a copy of infra/): every object
 * validates against its schema (kubernetes-models, @kubernetes-models/knative,
 * CRD schemas from SCHEMAS_DIR), every function has a Knative Service, every
 * events/triggers.yaml row a Trigger, the instance-runtime Role is exactly
 * the kubernetes driver's rules; and the committed tree builds as is with
 * `kubectl kustomize infra/overlays/production`.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTriggers } from '@saasodoo/events/triggers';
import { repoRoot } from '@saasodoo/platform/config';
import { generate, generatedTexts, GENERATED_DIR, RUNTIME_ROLE } from '@saasodoo/platform/deploy/generated';
import { objectId, type KubeObject } from '@saasodoo/platform/deploy/objects';
import { render } from '@saasodoo/platform/deploy/render';
import { defaultSchemasDir, validateObjects } from '@saasodoo/platform/deploy/validate';
import { functionNames } from '@saasodoo/platform/funcspec';
import { RUNTIME_RBAC_RULES } from '@saasodoo/platform/runtime/kubernetes/driver';
import { copyInfra, kubectlOrSkip } from '../../helpers/infra-copy.ts';

const kubectl = kubectlOrSkip('the render and kustomize checks');
const haveCrds = fs.existsSync(defaultSchemasDir());
if (!haveCrds) process.stderr.write(`no schemas in ${defaultSchemasDir()}: custom resources are checked for shape only by kubectl\n`);

describe.skipIf(!kubectl)('platform render', () => {
  let dir: string;
  const rendered: Record<string, KubeObject[]> = {};

  beforeAll(async () => {
    dir = copyInfra();
    for (const overlay of ['production', 'staging']) rendered[overlay] = (await render({ overlay, dir, tag: 'v1.0.0' })).objects;
  }, 120_000);

  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it.each(['production', 'staging'])(
    '%s: every object validates against its schema',
    async (overlay) => {
      const v = await validateObjects(rendered[overlay]!);
      expect(v.errors).toEqual([]);
      // Only kinds without any schema stay unchecked (Traefik Middleware has no CRD copy here), and only when schemas are present.
      if (haveCrds) expect([...new Set(v.unchecked.map((u) => u.id.split(' ')[0]))]).toEqual(['traefik.io/v1alpha1/Middleware']);
      // With or without SCHEMAS_DIR, the npm models check every Kubernetes and Knative kind (any clone runs this);
      // RabbitmqBrokerConfig is eventing-rabbitmq's kind in Knative's group: no npm model, its CRD schema only.
      const modelled = (id: string) =>
        /^(v1\/|[a-z.]*k8s\.io\/|(apps|batch|policy|autoscaling)\/|(serving|eventing|sources|messaging|flows)\.knative\.dev\/)/.test(id) && !id.includes('/RabbitmqBrokerConfig ');
      expect(v.unchecked.filter((u) => modelled(u.id))).toEqual([]);
      expect(v.checked.filter((c) => modelled(c.id)).every((c) => c.by === 'model')).toBe(true);
      expect(v.checked.length).toBeGreaterThan(50);
    },
    60_000,
  );

  it('every function has a Knative Service with its image tag', () => {
    const ksvcs = rendered.production!.filter((o) => o.kind === 'Service' && o.apiVersion === 'serving.knative.dev/v1');
    expect(ksvcs.map((o) => o.metadata.name).sort()).toEqual(functionNames());
    for (const k of ksvcs) expect((k as any).spec.template.spec.containers[0].image).toBe(`ghcr.io/saasodoo/${k.metadata.name}:v1.0.0`);
  });

  it('every trigger row has a Trigger on the saasodoo broker, subscribing an existing function', () => {
    const triggers = rendered.production!.filter((o) => o.kind === 'Trigger');
    const rows = loadTriggers();
    expect(triggers.map((t) => t.metadata.name).sort()).toEqual(rows.map((r) => r.name).sort());
    const fns = new Set(functionNames());
    for (const t of triggers as any[]) {
      expect(t.spec.broker).toBe('saasodoo');
      expect(fns.has(t.spec.subscriber.ref.name)).toBe(true);
    }
    const brokers = rendered.production!.filter((o) => o.kind === 'Broker');
    expect(brokers.map((b) => b.metadata.annotations?.['eventing.knative.dev/broker.class'])).toEqual(['RabbitMQBroker', 'RabbitMQBroker']);
  });

  it('the instance-runtime Role allows exactly what the kubernetes driver uses', () => {
    const role = rendered.production!.find((o) => o.kind === 'Role' && o.metadata.name === RUNTIME_ROLE) as any;
    expect(role.metadata.namespace).toBe('saasodoo-instances');
    expect(role.rules).toEqual(RUNTIME_RBAC_RULES.map((r) => ({ apiGroups: [...r.apiGroups], resources: [...r.resources], verbs: [...r.verbs] })));
    const binding = rendered.production!.find((o) => o.kind === 'RoleBinding' && (o as any).roleRef.name === RUNTIME_ROLE) as any;
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'saasodoo-runtime', namespace: 'saasodoo' }]);
  });

  it('overlays differ where they should', () => {
    const cfg = (overlay: string) => (rendered[overlay]!.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'saasodoo-config') as any).data;
    expect(cfg('production').BASE_DOMAIN).toBe('saasodoo.com');
    expect(cfg('staging').BASE_DOMAIN).toBe('staging.saasodoo.com');
    const pg = (overlay: string) => (rendered[overlay]!.find((o) => o.kind === 'Cluster') as any).spec.instances;
    expect([pg('production'), pg('staging')]).toEqual([3, 1]);
  });

  it('no Secret is rendered (templates only) and the Kill Bill setup Job carries the catalogue hash', () => {
    expect(rendered.production!.filter((o) => o.kind === 'Secret').map(objectId)).toEqual([]);
    const job = rendered.production!.find((o) => o.kind === 'Job' && o.metadata.name === 'killbill-setup') as any;
    expect(job.spec.template.metadata.annotations['saasodoo.io/config-hash']).toMatch(/^[0-9a-f]{16}$/);
  });

  it('the committed tree builds with kubectl kustomize infra/overlays/production', () => {
    const r = spawnSync(kubectl!, ['kustomize', path.join(repoRoot, 'infra/overlays/production')], { encoding: 'utf8', maxBuffer: 64 << 20 });
    expect(r.stderr.split('\n').filter((l) => l && !/deprecated/.test(l))).toEqual([]);
    expect(r.status).toBe(0);
  }, 30_000);

  it('the committed infra/base/generated/ is up to date (else run: npm run platform -- render > /dev/null)', async () => {
    const want = generatedTexts(await generate());
    const dirNow = path.join(repoRoot, 'infra', GENERATED_DIR);
    const have = Object.fromEntries(fs.readdirSync(dirNow).map((f) => [f, fs.readFileSync(path.join(dirNow, f), 'utf8')]));
    expect(Object.keys(have).sort()).toEqual(Object.keys(want).sort());
    for (const f of Object.keys(want)) expect(have[f], f).toBe(want[f]);
  }, 60_000);
});
