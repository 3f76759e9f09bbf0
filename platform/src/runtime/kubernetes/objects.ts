/**
 * The Kubernetes objects of one instance, as pure functions of its spec (so
 * tests validate every generated object against kubernetes-models and the
 * CRD schemas without a cluster). A per-instance ConfigMap is the owner of
 * everything else: deleting it cascades to the Secret, PVC, Deployment,
 * Service, IngressRoute, Certificate and Jobs.
 */
import { createHash } from 'node:crypto';
import { configFile, initArgs, neutralizeArgs, ODOO_DATA_DIR, ODOO_GEVENT_PORT, ODOO_PATHS, ODOO_RC, serveArgs, serveSettingsOf, targetOf, workersFor } from '../../odoo/contract.ts';
import type { InstanceSpec } from '../types.ts';

export type KubeSettings = {
  namespace: string;
  baseDomain: string;
  storageClass: string;
  /** Odoo image template, `{version}` replaced. */
  odooImage: string;
  backupImage: string;
  /** ReadWriteMany PVC with the backups (also mounted by the functions at BACKUP_DIR). */
  backupPvc: string;
  clusterIssuer: string;
};

export type Obj = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string>; ownerReferences?: OwnerRef[] };
  [k: string]: unknown;
};
export type OwnerRef = { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean; blockOwnerDeletion?: boolean };

export const FIELD_MANAGER = 'saasodoo-runtime';
export const ODOO_PORT = 8069;
/** Odoo's gevent port (bus / websocket), served when the plan gives Odoo workers. */
export const GEVENT_PORT = ODOO_GEVENT_PORT;
export const SUSPENDED_ANNOTATION = 'saasodoo.io/suspended';
/**
 * Where the driver last pointed the instance's route, kept on the Deployment:
 * status() reads the Deployment anyway, so it can move a route left on the
 * starting page to Odoo (when waitReady's caller died, or after a restore,
 * which does not wait) without reading the IngressRoute.
 */
export const ROUTE_ANNOTATION = 'saasodoo.io/route';
const INSTANCE_LABEL = 'saasodoo.io/instance-id';
/** The shared server of the suspended / stopped / starting pages, in the instances namespace (status-pages.ts). */
export const STATUS_PAGES_SERVICE = 'instance-status-pages';

/**
 * Where an instance's route sends its traffic: Odoo, or the status-page
 * Service port named after the state (a Deployment with no ready pod would
 * leave Traefik with no endpoint and the customer with a bare 503).
 */
export type RouteTarget = 'odoo' | 'suspended' | 'stopped' | 'starting';

/**
 * The route of an instance being set to this run state. Going up it is the
 * starting page: only the driver, once a pod is ready, moves it to Odoo.
 */
export function routeTarget(replicas: 0 | 1, suspended: boolean): RouteTarget {
  return suspended ? 'suspended' : replicas ? 'starting' : 'stopped';
}

/** Object name for an instance (DNS-1123, at most 63 characters with suffixes). */
export function instanceName(id: string): string {
  return `odoo-${id.toLowerCase()}`;
}

export function instanceHost(spec: Pick<InstanceSpec, 'subdomain'>, s: Pick<KubeSettings, 'baseDomain'>): string {
  return `${spec.subdomain}.${s.baseDomain}`;
}

/** The instance's own host and its verified custom domains. */
function hostsOf(spec: InstanceSpec, s: KubeSettings): string[] {
  return [instanceHost(spec, s), ...(spec.domains ?? [])];
}

/** Traefik's rule for any of the hosts (parenthesised when several, so `&&` binds to all). */
function hostRule(hosts: string[]): string {
  const rule = hosts.map((h) => `Host(\`${h}\`)`).join(' || ');
  return hosts.length > 1 ? `(${rule})` : rule;
}

export function labelsFor(spec: InstanceSpec): Record<string, string> {
  return {
    'app.kubernetes.io/name': 'odoo',
    'app.kubernetes.io/managed-by': 'saasodoo',
    'app.kubernetes.io/version': spec.odooVersion,
    [INSTANCE_LABEL]: spec.id,
    'saasodoo.io/customer-id': spec.customerId,
    'saasodoo.io/plan': spec.plan,
  };
}

/** Selector for the instance's pods. */
export function selectorFor(id: string): Record<string, string> {
  return { [INSTANCE_LABEL]: id, 'app.kubernetes.io/component': 'odoo' };
}

function meta(spec: InstanceSpec, s: KubeSettings, name: string, owner?: OwnerRef, extra: Record<string, string> = {}) {
  return {
    name,
    namespace: s.namespace,
    labels: { ...labelsFor(spec), ...extra },
    ...(owner ? { ownerReferences: [owner] } : {}),
  };
}

/** The owner of all other objects; also records the non-secret spec. */
export function ownerConfigMap(spec: InstanceSpec, s: KubeSettings): Obj {
  const { database: _db, masterPasswordHash: _h, ...publicSpec } = spec;
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: meta(spec, s, instanceName(spec.id)), data: { 'spec.json': JSON.stringify(publicSpec) } };
}

export function ownerRef(cm: { metadata: { name?: string; uid?: string } }): OwnerRef {
  return { apiVersion: 'v1', kind: 'ConfigMap', name: cm.metadata.name!, uid: cm.metadata.uid!, blockOwnerDeletion: true };
}

/** Database credentials, read by the Odoo container and the backup/restore Jobs. */
export function dbSecret(spec: InstanceSpec, s: KubeSettings, owner: OwnerRef): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: meta(spec, s, `${instanceName(spec.id)}-db`, owner),
    type: 'Opaque',
    stringData: {
      PGHOST: spec.database.host,
      PGPORT: String(spec.database.port),
      PGDATABASE: spec.database.name,
      PGUSER: spec.database.user,
      PGPASSWORD: spec.database.password,
    },
  };
}

/** The CloudNativePG `Cluster` of an instance with a dedicated database (DNS name `<this>-rw`). */
export function dbClusterName(id: string): string {
  return `${instanceName(id)}-pg`;
}

/**
 * The owner's credentials for CloudNativePG's `bootstrap.initdb` (it wants
 * a basic-auth Secret: `username`, `password`), made from the instance's
 * own database credentials, owned by the Cluster (which the instance owns).
 */
export function dbOwnerSecret(spec: InstanceSpec, s: KubeSettings, owner: OwnerRef): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: meta(spec, s, `${dbClusterName(spec.id)}-owner`, owner),
    type: 'kubernetes.io/basic-auth',
    stringData: { username: spec.database.user, password: spec.database.password },
  };
}

/**
 * A dedicated PostgreSQL for one instance (plan database `dedicated`): one
 * CloudNativePG instance sized from the plan (a quarter of its memory for
 * PostgreSQL, shared_buffers a quarter of that, storage as large as the
 * plan's), whose `bootstrap.initdb` makes the instance's database owned by
 * its role with the instance's password. CloudNativePG's own `postgres`
 * database and superuser stay its own: superuser access is off and the
 * platform never connects as it. Collation C like the Odoo contract's
 * CREATE DATABASE (odoo/contract.ts createDatabaseSql).
 */
export function dbCluster(spec: InstanceSpec, s: KubeSettings, owner: OwnerRef): Obj {
  const memMiB = Math.max(256, Math.floor(spec.resources.memoryMiB / 4));
  return {
    apiVersion: 'postgresql.cnpg.io/v1',
    kind: 'Cluster',
    metadata: meta(spec, s, dbClusterName(spec.id), owner, { 'app.kubernetes.io/component': 'database' }),
    spec: {
      instances: 1,
      enableSuperuserAccess: false,
      bootstrap: {
        initdb: {
          database: spec.database.name,
          owner: spec.database.user,
          secret: { name: `${dbClusterName(spec.id)}-owner` },
          encoding: 'UTF8',
          localeCollate: 'C',
          localeCType: 'C',
        },
      },
      postgresql: { parameters: { shared_buffers: `${Math.floor(memMiB / 4)}MB`, max_connections: '100' } },
      resources: {
        requests: { cpu: `${Math.max(250, Math.floor(spec.resources.cpu * 250))}m`, memory: `${memMiB}Mi` },
        limits: { memory: `${memMiB}Mi` },
      },
      storage: { size: `${spec.resources.storageGiB}Gi` },
    },
  };
}

/**
 * odoo.conf (contract.ts configFile) in a Secret of its own: it holds the
 * database password and the master password hash, so never a ConfigMap.
 * Mounted at the image's ODOO_RC by the init Job and the Deployment.
 */
export function odooConfSecret(spec: InstanceSpec, s: KubeSettings, owner: OwnerRef): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: meta(spec, s, `${instanceName(spec.id)}-odoo`, owner),
    type: 'Opaque',
    stringData: { 'odoo.conf': odooConf(spec) },
  };
}

const CONF_ANNOTATION = 'saasodoo.io/odoo-conf-sha256';
const odooConf = (spec: InstanceSpec) => configFile(targetOf(spec), serveSettingsOf(spec, { dataDir: ODOO_DATA_DIR }));
const confDigest = (spec: InstanceSpec) => createHash('sha256').update(odooConf(spec)).digest('hex');

/**
 * The Odoo container's command: `odoo` itself, not the official image's
 * entrypoint.sh, which appends `--db_password <password>` (read from
 * PASSWORD or odoo.conf) to the command line, where any process list shows
 * it. odoo.conf at ODOO_RC (the image's default) carries the connection.
 */
function odooPodParts(spec: InstanceSpec, s: KubeSettings, args: string[]) {
  const name = instanceName(spec.id);
  return {
    container: {
      image: s.odooImage.replace('{version}', spec.odooVersion),
      command: ['odoo'],
      args,
      securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
      volumeMounts: [
        // The whole data dir (filestore, sessions, addons) persists on the instance volume.
        { name: 'data', mountPath: ODOO_DATA_DIR },
        { name: 'odoo-conf', mountPath: ODOO_RC, subPath: 'odoo.conf', readOnly: true },
      ],
    },
    volumes: [
      { name: 'data', persistentVolumeClaim: { claimName: `${name}-data` } },
      { name: 'odoo-conf', secret: { secretName: `${name}-odoo`, defaultMode: 0o440 } },
    ],
  };
}

/** Storage sized to the plan: the PVC size is the quota (CephFS enforces it). */
export function storagePvc(spec: InstanceSpec, s: KubeSettings, owner: OwnerRef, bytes?: number): Obj {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: meta(spec, s, `${instanceName(spec.id)}-data`, owner),
    spec: {
      accessModes: ['ReadWriteMany'],
      storageClassName: s.storageClass,
      resources: { requests: { storage: bytes ? String(bytes) : `${spec.resources.storageGiB}Gi` } },
    },
  };
}

export function deployment(spec: InstanceSpec, s: KubeSettings, owner: OwnerRef, replicas: 0 | 1, suspended: boolean): Obj {
  const name = instanceName(spec.id);
  const cpu = String(spec.resources.cpu);
  const memory = `${spec.resources.memoryMiB}Mi`;
  const pod = odooPodParts(spec, s, serveArgs(targetOf(spec), ODOO_RC));
  const gevent = workersFor(spec.resources.cpu) > 0;
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      ...meta(spec, s, name, owner, { 'app.kubernetes.io/component': 'odoo' }),
      annotations: { [SUSPENDED_ANNOTATION]: String(suspended), [ROUTE_ANNOTATION]: routeTarget(replicas, suspended) },
    },
    spec: {
      replicas,
      strategy: { type: 'Recreate' },
      progressDeadlineSeconds: 600,
      selector: { matchLabels: selectorFor(spec.id) },
      template: {
        // A changed odoo.conf (a subPath mount is never refreshed) rolls the pod.
        metadata: { labels: { ...labelsFor(spec), ...selectorFor(spec.id) }, annotations: { [CONF_ANNOTATION]: confDigest(spec) } },
        spec: {
          automountServiceAccountToken: false,
          securityContext: { runAsNonRoot: true, runAsUser: 101, runAsGroup: 101, fsGroup: 101, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [
            {
              name: 'odoo',
              ...pod.container,
              ports: [{ name: 'http', containerPort: ODOO_PORT }, ...(gevent ? [{ name: 'websocket', containerPort: GEVENT_PORT }] : [])],
              resources: { requests: { cpu, memory }, limits: { cpu, memory } },
              // Readiness reports a broken database (db_server_status); liveness never touches it, so a database blip never restarts Odoo.
              readinessProbe: { httpGet: { path: ODOO_PATHS.readiness, port: ODOO_PORT }, periodSeconds: 5, failureThreshold: 3 },
              livenessProbe: { httpGet: { path: ODOO_PATHS.liveness, port: ODOO_PORT }, initialDelaySeconds: 60, periodSeconds: 15, failureThreshold: 4 },
            },
          ],
          volumes: pod.volumes,
        },
      },
    },
  };
}

/**
 * Odoo's own initialisation (`-i base --stop-after-init`, contract.ts
 * initArgs) as a one-shot Job with the instance's image, odoo.conf and
 * volume, run before the Deployment serves anything.
 */
export function initJob(spec: InstanceSpec, s: KubeSettings, owner: OwnerRef, jobName: string): Obj {
  return odooJob(spec, s, owner, jobName, 'init', initArgs(targetOf(spec), ODOO_RC));
}

/**
 * `odoo neutralize` (contract.ts neutralizeArgs) on a staging copy, as a
 * one-shot Job exactly like init's: the same image, odoo.conf and volume,
 * run after the restore and before the Deployment serves the copy.
 */
export function neutralizeJob(spec: InstanceSpec, s: KubeSettings, owner: OwnerRef, jobName: string): Obj {
  return odooJob(spec, s, owner, jobName, 'neutralize', neutralizeArgs(targetOf(spec), ODOO_RC));
}

function odooJob(spec: InstanceSpec, s: KubeSettings, owner: OwnerRef, jobName: string, component: 'init' | 'neutralize', args: string[]): Obj {
  const pod = odooPodParts(spec, s, args);
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: meta(spec, s, jobName, owner, { 'app.kubernetes.io/component': component }),
    spec: {
      backoffLimit: 0,
      activeDeadlineSeconds: 3600,
      ttlSecondsAfterFinished: 3600,
      template: {
        metadata: { labels: { ...labelsFor(spec), 'app.kubernetes.io/component': component } },
        spec: {
          restartPolicy: 'Never',
          automountServiceAccountToken: false,
          securityContext: { runAsNonRoot: true, runAsUser: 101, runAsGroup: 101, fsGroup: 101, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [
            {
              name: component,
              ...pod.container,
              resources: { requests: { cpu: String(spec.resources.cpu), memory: `${spec.resources.memoryMiB}Mi` }, limits: { memory: `${spec.resources.memoryMiB}Mi` } },
            },
          ],
          volumes: pod.volumes,
        },
      },
    },
  };
}

export function service(spec: InstanceSpec, s: KubeSettings, owner: OwnerRef): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(spec, s, instanceName(spec.id), owner),
    spec: {
      type: 'ClusterIP',
      selector: selectorFor(spec.id),
      ports: [
        { name: 'http', port: ODOO_PORT, targetPort: ODOO_PORT, protocol: 'TCP' },
        ...(workersFor(spec.resources.cpu) > 0 ? [{ name: 'websocket', port: GEVENT_PORT, targetPort: GEVENT_PORT, protocol: 'TCP' }] : []),
      ],
    },
  };
}

export function ingressRoute(spec: InstanceSpec, s: KubeSettings, owner: OwnerRef, target: RouteTarget = 'odoo'): Obj {
  const name = instanceName(spec.id);
  const backend = target === 'odoo' ? { name, port: ODOO_PORT } : { name: STATUS_PAGES_SERVICE, port: target };
  return {
    apiVersion: 'traefik.io/v1alpha1',
    kind: 'IngressRoute',
    metadata: meta(spec, s, name, owner),
    spec: {
      entryPoints: ['websecure'],
      routes: [
        { match: hostRule(hostsOf(spec, s)), kind: 'Rule', services: [backend] },
        // With workers, Odoo serves its bus on the gevent port (the longer rule wins in Traefik).
        ...(target === 'odoo' && workersFor(spec.resources.cpu) > 0
          ? [{ match: `${hostRule(hostsOf(spec, s))} && PathPrefix(\`${ODOO_PATHS.websocket}\`)`, kind: 'Rule', services: [{ name, port: GEVENT_PORT }] }]
          : []),
      ],
      tls: { secretName: `${name}-tls` },
    },
  };
}

export function certificate(spec: InstanceSpec, s: KubeSettings, owner: OwnerRef): Obj {
  const name = instanceName(spec.id);
  return {
    apiVersion: 'cert-manager.io/v1',
    kind: 'Certificate',
    metadata: meta(spec, s, name, owner),
    // cert-manager's HTTP-01 solver proves each name through the same ingress: a custom domain joins once its CNAME is verified.
    spec: { secretName: `${name}-tls`, dnsNames: hostsOf(spec, s), issuerRef: { name: s.clusterIssuer, kind: 'ClusterIssuer', group: 'cert-manager.io' } },
  };
}

/** Every object `apply` creates under the owner, in apply order. */
export function instanceObjects(spec: InstanceSpec, s: KubeSettings, owner: OwnerRef, replicas: 0 | 1, suspended: boolean): Obj[] {
  return [
    dbSecret(spec, s, owner),
    odooConfSecret(spec, s, owner),
    storagePvc(spec, s, owner),
    deployment(spec, s, owner, replicas, suspended),
    service(spec, s, owner),
    ingressRoute(spec, s, owner, routeTarget(replicas, suspended)),
    certificate(spec, s, owner),
  ];
}

/** `template-keep` / `template-seed`: runtime/template-filestore.ts in a Job (the `backupId` argument is then the template database). */
export type JobKind = 'backup' | 'restore' | 'usage' | 'template-keep' | 'template-seed';

/**
 * A Job that runs next to the instance's volume and the backup volume:
 * `backup` writes db.dump + filestore.tar.gz into `{id}/{backupId}.partial`
 * (the driver then checks, hashes and publishes them), `restore` puts a
 * backup's database and filestore in place, `usage` writes `du` of the
 * instance volume to `{id}/.usage`.
 */
export function job(spec: InstanceSpec, s: KubeSettings, owner: OwnerRef, kind: JobKind, backupId: string, jobName: string): Obj {
  const name = instanceName(spec.id);
  const dir = `/backups/${spec.id}`;
  const scripts: Record<JobKind, string> = {
    backup: [
      'set -eu',
      `d=${dir}/${backupId}.partial`,
      'mkdir -p "$d"',
      'pg_dump -Fc --no-owner --no-privileges -f "$d/db.dump" "$PGDATABASE"',
      // Checked as the local driver checks its dumps: a dump pg_restore cannot list fails the Job.
      'pg_restore --list "$d/db.dump" > /dev/null',
      'tar -czf "$d/filestore.tar.gz" -C /instance filestore',
    ].join('\n'),
    restore: [
      'set -eu',
      `b=${dir}/${backupId}`,
      'pg_restore --clean --if-exists --no-owner --no-privileges --single-transaction --exit-on-error -d "$PGDATABASE" "$b/db.dump"',
      'rm -rf /instance/.restore /instance/.old-filestore && mkdir /instance/.restore',
      'tar -xzf "$b/filestore.tar.gz" -C /instance/.restore',
      // A staging copy restores into a volume that has no filestore yet.
      'mkdir -p /instance/filestore && mv /instance/filestore /instance/.old-filestore && mv /instance/.restore/filestore /instance/filestore',
      'rm -rf /instance/.old-filestore /instance/.restore',
    ].join('\n'),
    usage: ['set -eu', `mkdir -p ${dir}`, `du -sb /instance | cut -f1 > ${dir}/.usage.tmp && mv ${dir}/.usage.tmp ${dir}/.usage`].join('\n'),
    // The template's own volume: its filestore (keyed by the template database's name) into the backup volume.
    'template-keep': [
      'set -eu',
      `t=/backups/.templates/${backupId}.tar.gz`,
      'mkdir -p /backups/.templates',
      `mkdir -p /instance/filestore/${backupId}`,
      `tar -czf "$t.partial" -C /instance/filestore ${backupId}`,
      'mv "$t.partial" "$t"',
    ].join('\n'),
    // A new instance's volume: the template's filestore under the instance's own database name.
    'template-seed': [
      'set -eu',
      'rm -rf /instance/.seed && mkdir /instance/.seed',
      `tar -xzf /backups/.templates/${backupId}.tar.gz -C /instance/.seed`,
      `rm -rf /instance/filestore/${spec.database.name} && mkdir -p /instance/filestore`,
      `mv /instance/.seed/${backupId} /instance/filestore/${spec.database.name}`,
      'rm -rf /instance/.seed',
    ].join('\n'),
  };
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: meta(spec, s, jobName, owner, { 'app.kubernetes.io/component': kind, 'saasodoo.io/backup-id': backupId }),
    spec: {
      backoffLimit: 0,
      activeDeadlineSeconds: 3600,
      ttlSecondsAfterFinished: 3600,
      template: {
        metadata: { labels: { ...labelsFor(spec), 'app.kubernetes.io/component': kind } },
        spec: {
          restartPolicy: 'Never',
          automountServiceAccountToken: false,
          securityContext: { runAsNonRoot: true, runAsUser: 101, runAsGroup: 101, fsGroup: 101, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [
            {
              name: kind,
              image: s.backupImage,
              command: ['sh', '-c', scripts[kind]],
              envFrom: [{ secretRef: { name: `${name}-db` } }],
              // The server named by this spec, over the Secret's (env wins over envFrom): a database move restores onto its target before the instance is switched to it.
              env: [
                { name: 'PGHOST', value: spec.database.host },
                { name: 'PGPORT', value: String(spec.database.port) },
              ],
              resources: { requests: { cpu: '100m', memory: '256Mi' }, limits: { memory: '1Gi' } },
              securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
              volumeMounts: [
                { name: 'instance', mountPath: '/instance', readOnly: kind === 'backup' || kind === 'usage' },
                { name: 'backups', mountPath: '/backups' },
              ],
            },
          ],
          volumes: [
            { name: 'instance', persistentVolumeClaim: { claimName: `${name}-data` } },
            { name: 'backups', persistentVolumeClaim: { claimName: s.backupPvc } },
          ],
        },
      },
    },
  };
}
