/**
 * One Knative Service per function, from its merged func.yaml (root
 * defaults, then its own) and from what its code uses (analyze.ts): image
 * REGISTRY/<function>:<tag>, env from the saasodoo-config ConfigMap plus
 * exactly the Secrets its code reads, scale annotations from
 * `deploy.options.scale`, health probes from `deploy.healthEndpoints`,
 * resources from `deploy.options.resources`.
 */
import type { FuncSpec } from '../funcspec.ts';
import type { FunctionNeeds } from './analyze.ts';
import { PLATFORM_NAMESPACE, type KubeObject } from './objects.ts';

/** Image tag every generated manifest carries; `platform render --tag` replaces it. */
export const DEFAULT_TAG = 'latest';
const FUNCTION_LABEL = 'saasodoo.io/role';
export const CONFIG_MAP = 'saasodoo-config';
/** Functions that drive the kubernetes runtime share the backup volume with its Jobs (config BACKUP_DIR). */
export const BACKUP_PVC = 'saasodoo-backups';
export const BACKUP_DIR = '/backups';

/** `REGISTRY/<name>:<tag>` (func.yaml `image` wins when set). */
export function functionImage(spec: FuncSpec, tag = DEFAULT_TAG): string {
  if (typeof spec.image === 'string' && spec.image) return spec.image;
  if (!spec.registry) throw new Error(`func.yaml of ${spec.name}: no registry (set it in the root func.yaml)`);
  return `${spec.registry}/${spec.name}:${tag}`;
}

/** func.yaml `deploy.options.scale` → Knative autoscaling annotations (as `func deploy` maps them). */
export function scaleAnnotations(spec: FuncSpec): Record<string, string> {
  const s = spec.deploy?.options?.scale ?? {};
  const a: Record<string, string> = {};
  if (s.min !== undefined) a['autoscaling.knative.dev/min-scale'] = String(s.min);
  if (s.max !== undefined) a['autoscaling.knative.dev/max-scale'] = String(s.max);
  if (s.metric !== undefined) a['autoscaling.knative.dev/metric'] = s.metric;
  if (s.target !== undefined) a['autoscaling.knative.dev/target'] = String(s.target);
  if (s.utilization !== undefined) a['autoscaling.knative.dev/target-utilization-percentage'] = String(s.utilization);
  return a;
}

type EnvVar = { name: string; value?: string; valueFrom?: Record<string, unknown> };

/**
 * func.yaml `run.envs` → container env. Supports literals and Knative func's
 * `{{ secret:name:key }}` / `{{ configMap:name:key }}`; `{{ env:X }}` would
 * make the manifest depend on the machine rendering it, so it is refused.
 */
export function runEnvs(spec: FuncSpec): EnvVar[] {
  return (spec.run?.envs ?? []).map((e) => {
    const m = /^\{\{\s*(secret|configMap|env):([^:}\s]+)(?::([^}\s]+))?\s*\}\}$/.exec(e.value ?? '');
    if (!m) return { name: e.name, value: String(e.value ?? '') };
    const [, kind, name, key] = m;
    if (kind === 'env' || !key)
      throw new Error(`func.yaml of ${spec.name}: run.envs ${e.name} = ${e.value} is not supported in manifests (use a literal, {{ secret:name:key }} or {{ configMap:name:key }})`);
    return kind === 'secret' ? { name: e.name, valueFrom: { secretKeyRef: { name, key } } } : { name: e.name, valueFrom: { configMapKeyRef: { name, key } } };
  });
}

/** The Knative Service of one function. */
export function knativeService(spec: FuncSpec, needs: FunctionNeeds, tag = DEFAULT_TAG): KubeObject {
  const name = spec.name;
  const invoke = spec.invoke === 'cloudevent' ? 'cloudevent' : 'http';
  const labels: Record<string, string> = {
    'app.kubernetes.io/name': name,
    'app.kubernetes.io/part-of': 'saasodoo',
    [FUNCTION_LABEL]: 'function',
    'saasodoo.io/invoke': invoke,
    // Reached only inside the cluster: HTTP functions through Traefik's /api routes, the rest through the broker.
    'networking.knative.dev/visibility': 'cluster-local',
  };
  for (const l of spec.deploy?.labels ?? []) labels[l.key] = l.value;
  const health = spec.deploy?.healthEndpoints ?? {};
  const res = spec.deploy?.options?.resources ?? {};
  const resources: Record<string, Record<string, string>> = {};
  for (const part of ['requests', 'limits'] as const) {
    const r = Object.fromEntries(Object.entries(res[part] ?? {}).filter(([k, v]) => k !== 'concurrency' && v !== undefined)) as Record<string, string>;
    if (Object.keys(r).length) resources[part] = r;
  }
  const env: EnvVar[] = [
    { name: 'FUNCTION_NAME', value: name },
    ...needs.secrets.map((s) => ({ name: s.env, valueFrom: { secretKeyRef: { name: s.secret, key: s.key, ...(s.optional ? { optional: true } : {}) } } })),
    ...(needs.kubernetes ? [{ name: 'BACKUP_DIR', value: BACKUP_DIR }] : []),
    ...runEnvs(spec),
  ];
  const concurrency = res.limits?.concurrency;
  return {
    apiVersion: 'serving.knative.dev/v1',
    kind: 'Service',
    metadata: { name, namespace: spec.deploy?.namespace ?? PLATFORM_NAMESPACE, labels },
    spec: {
      template: {
        metadata: {
          labels: { 'app.kubernetes.io/name': name, 'app.kubernetes.io/part-of': 'saasodoo', [FUNCTION_LABEL]: 'function' },
          annotations: { ...scaleAnnotations(spec), ...(spec.deploy?.annotations ?? {}) },
        },
        spec: {
          serviceAccountName: needs.kubernetes ? 'saasodoo-runtime' : 'saasodoo-function',
          ...(concurrency !== undefined ? { containerConcurrency: concurrency } : {}),
          ...(needs.kubernetes ? { volumes: [{ name: 'backups', persistentVolumeClaim: { claimName: BACKUP_PVC } }] } : {}),
          containers: [
            {
              name: 'function',
              image: functionImage(spec, tag),
              ports: [{ containerPort: 8080 }],
              envFrom: [{ configMapRef: { name: CONFIG_MAP } }],
              env,
              readinessProbe: { httpGet: { path: health.readiness ?? '/health/readiness' }, periodSeconds: 10 },
              livenessProbe: { httpGet: { path: health.liveness ?? '/health/liveness' }, periodSeconds: 20 },
              ...(Object.keys(resources).length ? { resources } : {}),
              ...(needs.kubernetes ? { volumeMounts: [{ name: 'backups', mountPath: BACKUP_DIR }] } : {}),
              securityContext: { allowPrivilegeEscalation: false, runAsNonRoot: true, capabilities: { drop: ['ALL'] } },
            },
          ],
        },
      },
    },
  };
}

/**
 * Traefik routes `/api/<function>` to each HTTP function (the production
 * gateway): the path becomes `/` and the Host the function's cluster-local
 * name, which is how Knative's ingress picks the Service.
 */
export function apiRoutes(httpFunctions: string[], namespace = PLATFORM_NAMESPACE): KubeObject[] {
  const middlewares: KubeObject[] = [
    { apiVersion: 'traefik.io/v1alpha1', kind: 'Middleware', metadata: { name: 'api-root', namespace }, spec: { replacePath: { path: '/' } } },
    ...httpFunctions.map((fn) => ({
      apiVersion: 'traefik.io/v1alpha1',
      kind: 'Middleware',
      metadata: { name: `api-host-${fn}`, namespace },
      spec: { headers: { customRequestHeaders: { Host: `${fn}.${namespace}.svc.cluster.local` } } },
    })),
  ];
  if (!httpFunctions.length) return middlewares;
  const route: KubeObject = {
    apiVersion: 'traefik.io/v1alpha1',
    kind: 'IngressRoute',
    metadata: { name: 'saasodoo-api', namespace, labels: { 'app.kubernetes.io/part-of': 'saasodoo' } },
    spec: {
      // Tokens and passwords only over TLS; `internal` is the portal's own
      // entrypoint inside the cluster (infra/base/services/traefik.yaml).
      entryPoints: ['websecure', 'internal'],
      routes: httpFunctions.map((fn) => ({
        match: `Path(\`/api/${fn}\`)`,
        kind: 'Rule',
        middlewares: [{ name: 'api-root' }, { name: `api-host-${fn}` }],
        services: [{ name: fn, port: 80, passHostHeader: true }],
      })),
    },
  };
  // Plain HTTP to /api is sent to HTTPS (308 keeps the method and body) instead of being served.
  const toHttps: KubeObject[] = [
    { apiVersion: 'traefik.io/v1alpha1', kind: 'Middleware', metadata: { name: 'api-https', namespace }, spec: { redirectScheme: { scheme: 'https', permanent: true } } },
    {
      apiVersion: 'traefik.io/v1alpha1',
      kind: 'IngressRoute',
      metadata: { name: 'saasodoo-api-https-redirect', namespace, labels: { 'app.kubernetes.io/part-of': 'saasodoo' } },
      spec: {
        entryPoints: ['web'],
        routes: [{ match: 'PathPrefix(`/api`)', kind: 'Rule', middlewares: [{ name: 'api-https' }], services: [{ name: 'noop@internal', kind: 'TraefikService' }] }],
      },
    },
  ];
  return [...middlewares, route, ...toHttps];
}
