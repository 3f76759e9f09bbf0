/**
 * The `kubernetes` RuntimeDriver: server-side apply of the objects in
 * objects.ts (field manager `saasodoo-runtime`), readiness and Job results
 * through the Watch API, backups and restores as Jobs writing to a
 * ReadWriteMany backup volume that the functions mount too (BACKUP_DIR), so
 * checking, hashing and listing backups is the same code as the local driver.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { KubeConfig, KubernetesObjectApi, PatchStrategy, Watch, type KubernetesObject, type V1ConfigMap, type V1Deployment, type V1Job, type V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { config } from '../../config.ts';
import { log } from '../../log.ts';
import { BackupStore, StoredBackups, assertSafeId } from '../backup-store.ts';
import type {
  BackupKind,
  DatabaseServer,
  BackupManifest,
  BackupStep,
  DesiredState,
  InstanceSpec,
  QuotaUsage,
  ReadyProgress,
  RestoreStep,
  RuntimeDriver,
  RuntimeStatus,
  StepListener,
} from '../types.ts';
import { BackupError, RuntimeError } from '../types.ts';
import { ODOO_PATHS } from '../../odoo/contract.ts';
import {
  FIELD_MANAGER,
  ingressRoute,
  initJob,
  neutralizeJob,
  instanceHost,
  instanceName,
  instanceObjects,
  job,
  ODOO_PORT,
  ownerConfigMap,
  type OwnerRef,
  dbCluster,
  dbClusterName,
  dbOwnerSecret,
  ownerRef,
  ROUTE_ANNOTATION,
  routeTarget,
  storagePvc,
  SUSPENDED_ANNOTATION,
  type JobKind,
  type RouteTarget,
  type KubeSettings,
  type Obj,
} from './objects.ts';

/**
 * Every API verb and resource this driver uses, in RBAC PolicyRule shape: the
 * infra Role for the functions' ServiceAccount is generated from this (and a
 * test runs the driver against the fake API server enforcing exactly these
 * rules). Discovery (/api, /apis) is allowed to every authenticated user.
 */
export const RUNTIME_RBAC_RULES = [
  { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'patch', 'delete'] },
  { apiGroups: [''], resources: ['secrets', 'services'], verbs: ['patch'] },
  { apiGroups: [''], resources: ['persistentvolumeclaims'], verbs: ['get', 'patch'] },
  { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'patch', 'watch'] },
  { apiGroups: ['batch'], resources: ['jobs'], verbs: ['patch', 'watch', 'delete'] },
  { apiGroups: ['traefik.io'], resources: ['ingressroutes'], verbs: ['patch'] },
  { apiGroups: ['cert-manager.io'], resources: ['certificates'], verbs: ['patch'] },
  // Dedicated databases (plan `dedicated`): one CloudNativePG Cluster per instance (get: the pool health check reads its status).
  { apiGroups: ['postgresql.cnpg.io'], resources: ['clusters'], verbs: ['get', 'patch', 'watch', 'delete'] },
] as const satisfies readonly { apiGroups: readonly string[]; resources: readonly string[]; verbs: readonly string[] }[];

const JOB_TIMEOUT_MS = 60 * 60 * 1000;
/** CloudNativePG's status.phase when all is well (its `PhaseHealthy`). */
const CNPG_HEALTHY_PHASE = 'Cluster in healthy state';

function httpCode(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown };
  return typeof e?.code === 'number' ? e.code : typeof e?.statusCode === 'number' ? e.statusCode : undefined;
}

/** Bytes of a Kubernetes quantity ('10Gi', '500M', '1073741824'). */
export function quantityBytes(q: string | undefined): number {
  const m = /^([0-9.]+)([KMGTPE]i?)?$/.exec(String(q ?? ''));
  if (!m) return 0;
  const pow: Record<string, number> = { K: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4, Pi: 1024 ** 5, Ei: 1024 ** 6 };
  return Math.round(Number(m[1]) * (m[2] ? pow[m[2]] : 1));
}

export type KubernetesDriverOptions = { kubeConfig: KubeConfig; settings: KubeSettings; backups?: BackupStore };

export class KubernetesDriver extends StoredBackups implements RuntimeDriver {
  readonly name = 'kubernetes' as const;
  readonly backups: BackupStore;
  readonly settings: KubeSettings;
  protected readonly restoresIntoMissing = false;
  private readonly api: KubernetesObjectApi;
  private readonly kc: KubeConfig;

  constructor(opts: KubernetesDriverOptions) {
    super();
    this.kc = opts.kubeConfig;
    this.settings = opts.settings;
    this.api = KubernetesObjectApi.makeApiClient(opts.kubeConfig);
    this.backups = opts.backups ?? new BackupStore();
  }

  /** In-cluster (or KUBECONFIG) credentials and the K8S_* settings. */
  static fromConfig(): KubernetesDriver {
    const kc = new KubeConfig();
    kc.loadFromDefault();
    return new KubernetesDriver({ kubeConfig: kc, settings: settingsFromConfig() });
  }

  private ns(): string {
    return this.settings.namespace;
  }

  private async ssa<T extends KubernetesObject>(obj: Obj): Promise<T> {
    return (await this.api.patch(obj as KubernetesObject, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply)) as T;
  }

  private async read<T extends KubernetesObject>(apiVersion: string, kind: string, name: string): Promise<T | undefined> {
    try {
      return (await this.api.read({ apiVersion, kind, metadata: { name, namespace: this.ns() } })) as T;
    } catch (err) {
      if (httpCode(err) === 404) return undefined;
      throw this.wrap(err, `read ${kind} ${name}`);
    }
  }

  private wrap(err: unknown, what: string): RuntimeError {
    const code = httpCode(err);
    if (code === 404) return new RuntimeError('not_found', `${what}: not found`);
    return new RuntimeError(code && code < 500 ? 'failed' : 'unavailable', `${what}: Kubernetes API ${code ?? (err as Error)?.message ?? 'error'}`);
  }

  private async owner(spec: InstanceSpec) {
    const cm = await this.ssa(ownerConfigMap(spec, this.settings)).catch((err) => {
      throw this.wrap(err, 'apply ConfigMap');
    });
    return ownerRef({ metadata: cm.metadata ?? {} });
  }

  async apply(spec: InstanceSpec, desired: DesiredState = {}): Promise<void> {
    assertSafeId(spec.id, 'instance id');
    const suspended = desired.suspended ?? false;
    const replicas = suspended ? 0 : (desired.replicas ?? 1);
    const owner = await this.owner(spec);
    const existingPvc = await this.read<V1PersistentVolumeClaim>('v1', 'PersistentVolumeClaim', `${instanceName(spec.id)}-data`);
    const current = quantityBytes(existingPvc?.spec?.resources?.requests?.storage);
    // Stopped and never started (provisioning's storage step): no Deployment yet, so Odoo's init Job comes before it.
    const withDeployment = replicas === 1 || !!(await this.read('apps/v1', 'Deployment', instanceName(spec.id)));
    let serving = false;
    for (let obj of instanceObjects(spec, this.settings, owner, replicas, suspended)) {
      if (obj.kind === 'Deployment' && !withDeployment) continue;
      // A PVC cannot shrink: keep a larger existing size (quota-set may have grown it).
      if (obj.kind === 'PersistentVolumeClaim' && current > spec.resources.storageGiB * 1024 ** 3) obj = storagePvc(spec, this.settings, owner, current);
      // The Deployment is applied before the route: one with nothing to roll out keeps serving, so its route stays on Odoo.
      if (obj.kind === 'IngressRoute' && serving) obj = ingressRoute(spec, this.settings, owner, 'odoo');
      const applied = await this.ssa<V1Deployment>(obj).catch((err) => {
        throw this.wrap(err, `apply ${obj.kind}`);
      });
      if (obj.kind === 'Deployment') serving = deploymentState(applied).state === 'running';
    }
    if (serving) await this.recordRoute(spec.id, 'odoo');
  }

  async status(id: string): Promise<RuntimeStatus> {
    assertSafeId(id, 'instance id');
    const d = await this.read<V1Deployment>('apps/v1', 'Deployment', instanceName(id));
    const cm = await this.read<V1ConfigMap>('v1', 'ConfigMap', instanceName(id));
    if (!d) return cm ? { state: 'stopped', replicas: 0 } : { state: 'missing' };
    let url: string | undefined;
    try {
      const sub = cm ? storedSpec(cm).subdomain : undefined;
      if (sub) url = `https://${instanceHost({ subdomain: sub }, this.settings)}`;
    } catch {
      /* no url */
    }
    const base = { url, healthUrl: `http://${instanceName(id)}.${this.ns()}.svc.cluster.local:${ODOO_PORT}${ODOO_PATHS.readiness}`, replicas: (d.spec?.replicas ? 1 : 0) as 0 | 1 };
    const state = deploymentState(d);
    // A ready instance whose route was left on the starting page (restore does not wait; a waiting caller may have died).
    if (state.state === 'running' && d.metadata?.annotations?.[ROUTE_ANNOTATION] === 'starting' && cm) {
      await this.serveOdoo(id, cm).catch((err) => log.warn({ instanceId: id, err: (err as Error).message }, 'route not moved to Odoo; the next status or waitReady tries again'));
    }
    return { ...base, ...state };
  }

  /**
   * Sets the replicas and points the IngressRoute at the status page of the
   * new state. Going down, the route moves first, so no request meets an
   * instance without pods; going up, it moves to the starting page once the
   * Deployment is patched, and waitReady (or status) moves it to Odoo when a
   * pod is ready, unless the Deployment was already serving.
   */
  async scale(id: string, replicas: 0 | 1, opts: { suspended?: boolean } = {}): Promise<void> {
    assertSafeId(id, 'instance id');
    const suspended = opts.suspended ?? false;
    const target = routeTarget(suspended ? 0 : replicas, suspended);
    const cm = await this.read<V1ConfigMap>('v1', 'ConfigMap', instanceName(id));
    if (!cm) throw new RuntimeError('not_found', `scale instance ${id}: not found`);
    const patch = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: instanceName(id), namespace: this.ns(), annotations: { [SUSPENDED_ANNOTATION]: String(suspended), [ROUTE_ANNOTATION]: target } },
      spec: { replicas: suspended ? 0 : replicas },
    };
    if (target !== 'starting') await this.route(id, cm, target);
    // Never started (no Deployment yet): stopping it is only its route.
    if (target !== 'starting' && !(await this.read('apps/v1', 'Deployment', instanceName(id)))) return;
    let d: V1Deployment;
    try {
      // A merge patch of the Deployment answers the whole Deployment.
      d = (await this.api.patch<KubernetesObject>(patch, undefined, undefined, FIELD_MANAGER, undefined, PatchStrategy.MergePatch)) as V1Deployment;
    } catch (err) {
      throw this.wrap(err, `scale instance ${id}`);
    }
    if (target !== 'starting') return;
    if (deploymentState(d).state === 'running') await this.serveOdoo(id, cm);
    else await this.route(id, cm, target);
  }

  private async route(id: string, cm: V1ConfigMap, target: RouteTarget): Promise<void> {
    await this.ssa(ingressRoute(storedSpec(cm), this.settings, ownerRef({ metadata: cm.metadata ?? {} }), target)).catch((err) => {
      throw this.wrap(err, `route instance ${id}`);
    });
  }

  /** Records on the Deployment where the route points (ROUTE_ANNOTATION). */
  private async recordRoute(id: string, target: RouteTarget): Promise<void> {
    const patch = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: instanceName(id), namespace: this.ns(), annotations: { [ROUTE_ANNOTATION]: target } } };
    await this.api.patch(patch, undefined, undefined, FIELD_MANAGER, undefined, PatchStrategy.MergePatch).catch((err) => {
      throw this.wrap(err, `record route of instance ${id}`);
    });
  }

  /** Moves the route of a ready instance from the starting page to Odoo. */
  private async serveOdoo(id: string, cm?: V1ConfigMap): Promise<void> {
    cm ??= await this.read<V1ConfigMap>('v1', 'ConfigMap', instanceName(id));
    if (!cm) throw new RuntimeError('not_found', `route instance ${id}: not found`);
    await this.route(id, cm, 'odoo');
    await this.recordRoute(id, 'odoo');
  }

  /**
   * The instance's CloudNativePG Cluster and its owner Secret, under the
   * instance's ConfigMap (removing the instance removes them). No admin:
   * CloudNativePG's bootstrap makes the database and role.
   */
  async ensureDatabaseServer(spec: InstanceSpec, _o?: { adminPassword: string; fresh?: boolean }): Promise<DatabaseServer> {
    assertSafeId(spec.id, 'instance id');
    const owner = await this.owner(spec);
    const cluster = await this.ssa(dbCluster(spec, this.settings, owner)).catch((err) => {
      throw this.wrap(err, 'apply Cluster');
    });
    // The Secret belongs to the Cluster: removing the Cluster (a move back to a shared plan) takes it along.
    const byCluster: OwnerRef = { apiVersion: 'postgresql.cnpg.io/v1', kind: 'Cluster', name: cluster.metadata!.name!, uid: cluster.metadata!.uid!, blockOwnerDeletion: true };
    await this.ssa(dbOwnerSecret(spec, this.settings, byCluster)).catch((err) => {
      throw this.wrap(err, 'apply Secret');
    });
    return { host: `${dbClusterName(spec.id)}-rw.${this.ns()}.svc`, port: 5432 };
  }

  /** Until CloudNativePG reports the Cluster's instance ready (the Watch API). */
  async waitDatabaseServer(id: string, timeoutMs: number): Promise<void> {
    type CnpgCluster = KubernetesObject & { status?: { readyInstances?: number } };
    await this.watchOne<CnpgCluster>(`/apis/postgresql.cnpg.io/v1/namespaces/${this.ns()}/clusters`, dbClusterName(id), timeoutMs, (c) => ((c.status?.readyInstances ?? 0) >= 1 ? true : undefined));
  }

  /**
   * The pool health check's probe of a CloudNativePG server (the platform
   * holds no credentials for it, so it asks CloudNativePG): a problem when
   * the Cluster is missing, its `Ready` condition is not True, fewer
   * instances are ready than it has, or (without conditions) its phase is
   * not the healthy one. Undefined when healthy.
   */
  async databaseServerProblem(id: string): Promise<string | undefined> {
    assertSafeId(id, 'instance id');
    type CnpgCluster = KubernetesObject & {
      spec?: { instances?: number };
      status?: { instances?: number; readyInstances?: number; phase?: string; conditions?: { type: string; status: string; reason?: string; message?: string }[] };
    };
    const c = await this.read<CnpgCluster>('postgresql.cnpg.io/v1', 'Cluster', dbClusterName(id));
    if (!c) return 'its CloudNativePG Cluster does not exist';
    const st = c.status ?? {};
    const want = st.instances ?? c.spec?.instances ?? 1;
    const phase = st.phase ? ` (phase: ${st.phase})` : '';
    const ready = st.conditions?.find((x) => x.type === 'Ready');
    if (ready && ready.status !== 'True') return `CloudNativePG reports it not ready${ready.reason ? `: ${ready.reason}` : ''}${ready.message ? ` (${ready.message})` : ''}${phase}`.slice(0, 300);
    if ((st.readyInstances ?? 0) < want) return `${st.readyInstances ?? 0} of ${want} PostgreSQL instance(s) ready${phase}`;
    if (!ready && st.phase !== CNPG_HEALTHY_PHASE) return st.phase ? `CloudNativePG reports the phase "${st.phase}"` : 'CloudNativePG reports no status yet';
    return undefined;
  }

  /** Deletes the Cluster (CloudNativePG removes its pods and volumes, the garbage collector its owner Secret). */
  async removeDatabaseServer(id: string): Promise<void> {
    assertSafeId(id, 'instance id');
    try {
      await this.api.delete(
        { apiVersion: 'postgresql.cnpg.io/v1', kind: 'Cluster', metadata: { name: dbClusterName(id), namespace: this.ns() } } as KubernetesObject,
        undefined,
        undefined,
        undefined,
        undefined,
        'Foreground',
      );
    } catch (err) {
      if (httpCode(err) !== 404) throw this.wrap(err, `remove database of ${id}`);
    }
  }

  async remove(id: string): Promise<void> {
    assertSafeId(id, 'instance id');
    try {
      await this.api.delete({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: instanceName(id), namespace: this.ns() } }, undefined, undefined, undefined, undefined, 'Foreground');
    } catch (err) {
      if (httpCode(err) !== 404) throw this.wrap(err, `remove instance ${id}`);
    }
  }

  /**
   * Watches one object until `decide` says done (true) or failed (a string);
   * re-opens the watch when the server ends it. RuntimeError timeout after timeoutMs.
   */
  private watchOne<T extends KubernetesObject>(collectionPath: string, name: string, timeoutMs: number, decide: (obj: T, type: string) => true | string | undefined): Promise<void> {
    return new Promise((resolve, reject) => {
      let finished = false;
      let controller: AbortController | undefined;
      const finish = (err?: Error) => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        controller?.abort();
        if (err) reject(err);
        else resolve();
      };
      const timer = setTimeout(() => finish(new RuntimeError('timeout', `${name}: not done after ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
      const open = async () => {
        if (finished) return;
        try {
          controller = await new Watch(this.kc).watch(
            collectionPath,
            { fieldSelector: `metadata.name=${name}` },
            (type, obj: T) => {
              const verdict = type === 'DELETED' ? `${name} was deleted` : decide(obj, type);
              if (verdict === true) finish();
              else if (typeof verdict === 'string') finish(new RuntimeError('failed', verdict));
            },
            (err) => {
              if (finished) return;
              if (err && httpCode(err) && httpCode(err)! < 500) return finish(this.wrap(err, `watch ${name}`));
              setTimeout(open, err ? 500 : 0);
            },
          );
        } catch (err) {
          if (!finished) setTimeout(open, 500);
          void err;
        }
      };
      void open();
    });
  }

  /** Also moves the route from the starting page to Odoo once a pod is ready. */
  async waitReady(id: string, timeoutMs: number, onProgress?: (p: ReadyProgress) => void): Promise<void> {
    assertSafeId(id, 'instance id');
    const started = Date.now();
    let last: string | undefined;
    let ready: V1Deployment | undefined;
    if (!(await this.read('apps/v1', 'Deployment', instanceName(id)))) throw new RuntimeError('not_found', `instance ${id} has no Deployment`);
    await this.watchOne<V1Deployment>(`/apis/apps/v1/namespaces/${this.ns()}/deployments`, instanceName(id), timeoutMs, (d) => {
      const st = deploymentState(d);
      if (st.state !== last) {
        last = st.state;
        onProgress?.({ state: st.state, elapsedMs: Date.now() - started, message: st.reason });
      }
      if (st.state === 'running') {
        ready = d;
        return true;
      }
      if (st.state === 'failed') return st.reason ?? 'the instance failed to start';
      if (st.state === 'stopped' || st.state === 'suspended') return `the instance is ${st.state}`;
      return undefined;
    });
    if (ready?.metadata?.annotations?.[ROUTE_ANNOTATION] !== 'odoo') await this.serveOdoo(id);
  }

  /**
   * Odoo's init as a Job (objects.ts initJob) after the instance's Secrets
   * and volume exist and before its Deployment: apply with replicas 0 creates
   * no Deployment for an instance that never ran.
   */
  async initialize(spec: InstanceSpec, timeoutMs: number): Promise<void> {
    assertSafeId(spec.id, 'instance id');
    await this.apply(spec, { replicas: 0 });
    const owner = await this.owner(spec);
    await this.runJobObject('init', (name) => initJob(spec, this.settings, owner, name), spec.id, timeoutMs);
  }

  /** `odoo neutralize` as a Job (objects.ts neutralizeJob) on the stopped copy, as initialize runs init. */
  async neutralize(spec: InstanceSpec, timeoutMs: number): Promise<void> {
    assertSafeId(spec.id, 'instance id');
    const owner = await this.owner(spec);
    await this.runJobObject('neutralize', (name) => neutralizeJob(spec, this.settings, owner, name), spec.id, timeoutMs);
  }

  /** The image reference of the version (a new tag is another build). */
  async odooBuild(version: string): Promise<string> {
    return `image:${this.settings.odooImage.replace('{version}', version)}`;
  }

  /** A Job on the template's volume and the backup volume (objects.ts `template-keep`). */
  async keepTemplateFilestore(spec: InstanceSpec): Promise<void> {
    assertSafeId(spec.database.name, 'template database');
    await this.runJob(spec, 'template-keep', spec.database.name);
  }

  /** A Job on the instance's volume and the backup volume (objects.ts `template-seed`), after the instance's objects exist. */
  async seedFilestore(spec: InstanceSpec, templateDatabase: string): Promise<void> {
    assertSafeId(templateDatabase, 'template database');
    await this.apply(spec, { replicas: 0 });
    await this.runJob(spec, 'template-seed', templateDatabase);
  }

  /** Runs a Job to completion (Watch API); RuntimeError failed/timeout otherwise. Deletes it after. */
  private async runJob(spec: InstanceSpec, kind: JobKind, backupId: string): Promise<void> {
    const owner = await this.owner(spec);
    await this.runJobObject(kind, (name) => job(spec, this.settings, owner, kind, backupId, name), spec.id, JOB_TIMEOUT_MS);
  }

  private async runJobObject(kind: string, build: (name: string) => Obj, id: string, timeoutMs: number): Promise<void> {
    const name = `${instanceName(id)}-${kind}-${randomBytes(3).toString('hex')}`;
    await this.ssa(build(name)).catch((err) => {
      throw this.wrap(err, `create ${kind} Job`);
    });
    try {
      await this.watchOne<V1Job>(`/apis/batch/v1/namespaces/${this.ns()}/jobs`, name, timeoutMs, (j) => {
        if ((j.status?.succeeded ?? 0) >= 1) return true;
        const failed = (j.status?.conditions ?? []).find((c) => c.type === 'Failed' && c.status === 'True');
        if (failed || (j.status?.failed ?? 0) >= 1) return `${kind} Job failed${failed?.reason ? `: ${failed.reason}` : ''}`;
        return undefined;
      });
    } finally {
      await this.api.delete({ apiVersion: 'batch/v1', kind: 'Job', metadata: { name, namespace: this.ns() } }, undefined, undefined, undefined, undefined, 'Background').catch(() => {});
    }
  }

  async backup(spec: InstanceSpec, backupId: string, kind: BackupKind, onStep?: StepListener<BackupStep>): Promise<BackupManifest> {
    await this.backups.begin(spec.id, backupId);
    try {
      // One Job dumps the database and archives the filestore.
      await onStep?.('database');
      await this.runJob(spec, 'backup', backupId);
    } catch (err) {
      await this.backups.abort(spec.id, backupId);
      throw new BackupError((err as Error).message);
    }
    await onStep?.('manifest');
    return finalizeJobBackup(this.backups, spec, backupId, kind);
  }

  /** Scales to 0 and waits until no pod is left (a restore must not race a running Odoo). */
  protected async stopForRestore(id: string, suspended: boolean): Promise<void> {
    await this.scale(id, 0, { suspended });
    await this.watchOne<V1Deployment>(`/apis/apps/v1/namespaces/${this.ns()}/deployments`, instanceName(id), 300_000, (d) => ((d.status?.replicas ?? 0) === 0 ? true : undefined));
  }

  protected async restoreParts(spec: InstanceSpec, backupId: string, onStep?: StepListener<RestoreStep>): Promise<void> {
    // One Job restores the database and the filestore.
    await onStep?.('database');
    await this.runJob(spec, 'restore', backupId);
  }

  async setQuota(id: string, bytes: number): Promise<void> {
    assertSafeId(id, 'instance id');
    const name = `${instanceName(id)}-data`;
    const pvc = await this.read<V1PersistentVolumeClaim>('v1', 'PersistentVolumeClaim', name);
    if (!pvc) throw new RuntimeError('not_found', `instance ${id} has no storage`);
    const current = quantityBytes(pvc.spec?.resources?.requests?.storage);
    if (bytes < current) throw new RuntimeError('invalid', 'a volume cannot shrink: the quota can only grow on Kubernetes');
    if (bytes === current) return;
    const patch = { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name, namespace: this.ns() }, spec: { resources: { requests: { storage: String(Math.round(bytes)) } } } };
    await this.api.patch(patch, undefined, undefined, FIELD_MANAGER, undefined, PatchStrategy.MergePatch).catch((err) => {
      throw this.wrap(err, 'resize storage');
    });
  }

  async usage(id: string): Promise<QuotaUsage> {
    assertSafeId(id, 'instance id');
    const pvc = await this.read<V1PersistentVolumeClaim>('v1', 'PersistentVolumeClaim', `${instanceName(id)}-data`);
    const cm = await this.read<V1ConfigMap>('v1', 'ConfigMap', instanceName(id));
    if (!pvc || !cm) throw new RuntimeError('not_found', `instance ${id} has no storage`);
    await this.runJob(storedSpec(cm), 'usage', 'usage');
    const used = await readJobUsage(this.backups, id);
    const limit = quantityBytes(pvc.spec?.resources?.requests?.storage);
    return { usedBytes: used, limitBytes: limit, exceeded: used > limit };
  }
}

/**
 * What the driver checks after the backup Job, before publishing: the dump
 * must be a PostgreSQL custom-format archive (the Job already ran
 * `pg_restore --list` on it; this catches a Job that wrote something else
 * and exited 0), then the store checks both parts, hashes them and writes
 * the manifest. A failure leaves no backup behind.
 */
export async function finalizeJobBackup(store: BackupStore, spec: InstanceSpec, backupId: string, kind: BackupKind): Promise<BackupManifest> {
  const dump = path.join(store.partialDir(spec.id, backupId), 'db.dump');
  const head = await fs.open(dump, 'r').then(
    async (f) => {
      try {
        const b = Buffer.alloc(5);
        const { bytesRead } = await f.read(b, 0, 5, 0);
        return b.subarray(0, bytesRead).toString('latin1');
      } finally {
        await f.close();
      }
    },
    () => undefined,
  );
  if (head !== undefined && head.length > 0 && head !== 'PGDMP') {
    await store.abort(spec.id, backupId);
    throw new BackupError('database dump is not a readable archive', 'database');
  }
  return store.finalize(spec.id, backupId, { kind, odooVersion: spec.odooVersion });
}

/** The figure the usage Job wrote (`du -sb` of the instance volume); RuntimeError failed when there is none. */
export async function readJobUsage(store: BackupStore, id: string): Promise<number> {
  const text = (await fs.readFile(path.join(store.root, id, '.usage'), 'utf8').catch(() => '')).trim();
  if (!/^\d+$/.test(text)) throw new RuntimeError('failed', 'the usage Job wrote no figure');
  return Number(text);
}

/**
 * The instance spec recorded in its owner ConfigMap, without the database
 * credentials (never stored there): enough to rebuild every object but the
 * Secret, so calls that get only an id need not be given the spec again.
 */
function storedSpec(cm: { data?: Record<string, string> }): InstanceSpec {
  return { ...JSON.parse(cm.data?.['spec.json'] ?? '{}'), database: { host: '', port: 5432, name: '', user: '', password: '' } };
}

/** Reads a Deployment's run state (suspended annotation, replicas, readiness, progress deadline). */
export function deploymentState(d: V1Deployment): Pick<RuntimeStatus, 'state' | 'reason'> {
  if (d.metadata?.annotations?.[SUSPENDED_ANNOTATION] === 'true') return { state: 'suspended' };
  if (!d.spec?.replicas) return { state: 'stopped' };
  const stalled = (d.status?.conditions ?? []).find((c) => c.type === 'Progressing' && c.status === 'False');
  if (stalled) return { state: 'failed', reason: stalled.reason ?? 'not progressing' };
  const current = (d.status?.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0);
  return { state: current && (d.status?.readyReplicas ?? 0) >= 1 ? 'running' : 'starting' };
}

export function settingsFromConfig(): KubeSettings {
  const c = config();
  return {
    namespace: c.K8S_NAMESPACE,
    baseDomain: c.BASE_DOMAIN,
    storageClass: c.K8S_STORAGE_CLASS,
    odooImage: c.K8S_ODOO_IMAGE,
    backupImage: c.K8S_BACKUP_IMAGE,
    backupPvc: c.K8S_BACKUP_PVC,
    clusterIssuer: c.K8S_CLUSTER_ISSUER,
  };
}
