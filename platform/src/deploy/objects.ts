/**
 * Kubernetes objects as plain data, and the few helpers every deploy module
 * shares: identity, YAML (de)serialisation, apply order.
 */
import YAML from 'yaml';

export type KubeObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string>; [k: string]: unknown };
  [k: string]: unknown;
};

export const PLATFORM_NAMESPACE = 'saasodoo';
export const INSTANCES_NAMESPACE = 'saasodoo-instances';

/** `apiVersion/Kind namespace/name`: unique per object, used in messages and diffs. */
export function objectId(o: KubeObject): string {
  return `${o.apiVersion}/${o.kind} ${o.metadata.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata.name}`;
}

/** Multi-document YAML → objects (empty documents skipped). */
export function parseObjects(text: string): KubeObject[] {
  return YAML.parseAllDocuments(text)
    .map((d) => d.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => !!o && typeof o === 'object' && 'kind' in o);
}

/** Objects → multi-document YAML, stable (keys as built). */
export function toYaml(objects: KubeObject[]): string {
  return objects.map((o) => YAML.stringify(o, { lineWidth: 0 })).join('---\n');
}

/**
 * Apply order: what others depend on first. Namespaces and cluster-wide
 * definitions, then identities and policy, then configuration, then the
 * stateful backing services (operator-backed CRs), then the event backbone,
 * then workloads, then what routes to workloads, then one-shot Jobs.
 */
const ORDER: string[] = [
  'Namespace',
  'CustomResourceDefinition',
  'StorageClass',
  'PersistentVolume',
  'ServiceAccount',
  'ClusterRole',
  'ClusterRoleBinding',
  'Role',
  'RoleBinding',
  'NetworkPolicy',
  'ConfigMap',
  'Secret',
  'PersistentVolumeClaim',
  'CephFilesystem',
  'Cluster',
  'RabbitmqCluster',
  'StatefulSet',
  'Service',
  'Deployment',
  'RabbitmqBrokerConfig',
  'Broker',
  'SinkBinding',
  'Trigger',
  'CronJob',
  'Middleware',
  'IngressRoute',
  'Job',
];

/** Position of an object in the apply order (unknown kinds just before Jobs). */
export function applyRank(o: KubeObject): number {
  // A Knative Service is a workload: after the Broker its SinkBinding points at, before Triggers that target it.
  if (o.kind === 'Service' && o.apiVersion.startsWith('serving.knative.dev/')) return ORDER.indexOf('SinkBinding') + 0.5;
  const i = ORDER.indexOf(o.kind);
  return i === -1 ? ORDER.length - 1.5 : i;
}

/** Stable sort into apply order (ties keep render order). */
export function sortForApply(objects: KubeObject[]): KubeObject[] {
  return objects
    .map((o, i) => ({ o, i }))
    .sort((a, b) => applyRank(a.o) - applyRank(b.o) || a.i - b.i)
    .map((x) => x.o);
}
