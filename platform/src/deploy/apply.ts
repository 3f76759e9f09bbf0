/**
 * `platform deploy`: applies rendered objects to a cluster by server-side
 * apply (@kubernetes/client-node), in dependency order, then waits until the
 * workloads are ready, printing progress. It first reads each live object and
 * skips those already as desired, so a second run changes nothing and says
 * so; Jobs (immutable) are replaced when their spec changed. Before the first
 * write, the cluster itself checks every change (server-side apply with
 * `dryRun: 'All'`: its schemas, CRDs and admission), so an object it refuses
 * stops the deploy with nothing applied rather than half-way through.
 */
import { KubeConfig, KubernetesObjectApi, PatchStrategy, type KubernetesObject } from '@kubernetes/client-node';
// Not re-exported by the package index: turns typed objects back into their JSON (wire) form.
import { ObjectSerializer } from '@kubernetes/client-node/dist/serializer.js';
import { getSerializationType } from '@kubernetes/client-node/dist/util.js';
import { objectId, sortForApply, type KubeObject } from './objects.ts';

export const FIELD_MANAGER = 'saasodoo-platform';

export type Change = { id: string; action: 'create' | 'update' | 'replace' | 'unchanged'; diff: string[] };

export type DeployOptions = {
  kubeConfig?: KubeConfig;
  /** Read the cluster and report what would change; write nothing. */
  dryRun?: boolean;
  /** Include field-level differences in the report. */
  diff?: boolean;
  /** Wait for readiness (default true unless dryRun). */
  wait?: boolean;
  timeoutSeconds?: number;
  pollMs?: number;
  /** Progress lines (default: stdout). */
  progress?: (line: string) => void;
};

export type DeployResult = { changes: Change[]; ready: boolean; notReady: string[] };

/** Operator or component that serves each custom API group: named in errors when it is missing. */
const PROVIDERS: Record<string, string> = {
  'serving.knative.dev': 'Knative Serving',
  'eventing.knative.dev': 'Knative Eventing (and eventing-rabbitmq for RabbitmqBrokerConfig)',
  'sources.knative.dev': 'Knative Eventing',
  'postgresql.cnpg.io': 'CloudNativePG',
  'rabbitmq.com': 'the RabbitMQ cluster operator',
  'traefik.io': "Traefik's CRDs",
  'ceph.rook.io': 'Rook',
  'cert-manager.io': 'cert-manager',
};

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

function norm(v: unknown): unknown {
  return v instanceof Date ? v.toISOString().replace(/\.000Z$/, 'Z') : v;
}

/**
 * Paths where `live` differs from `desired`, looking only at what desired
 * sets (fields the cluster adds by defaulting are not differences).
 */
export function differences(desired: unknown, live: unknown, at = ''): string[] {
  if (isObj(desired)) {
    if (!isObj(live)) return [`${at || '/'}: ${JSON.stringify(norm(live))} → (object)`];
    return Object.entries(desired).flatMap(([k, v]) => differences(v, live[k], `${at}.${k}`));
  }
  if (Array.isArray(desired)) {
    if (!Array.isArray(live) || live.length !== desired.length) return [`${at}: ${JSON.stringify(live)} → ${JSON.stringify(desired)}`];
    return desired.flatMap((v, i) => differences(v, live[i], `${at}[${i}]`));
  }
  const a = norm(desired);
  const b = norm(live);
  // The API returns quantities and numbers in canonical form; compare loosely as strings.
  return a === b || (b !== undefined && String(a) === String(b)) ? [] : [`${at}: ${JSON.stringify(b)} → ${JSON.stringify(a)}`];
}

function statusCode(err: unknown): number | undefined {
  const e = err as { code?: number; statusCode?: number; response?: { statusCode?: number } };
  return e?.code ?? e?.statusCode ?? e?.response?.statusCode;
}

function describeError(o: KubeObject, err: unknown): Error {
  const msg = (err as Error)?.message ?? String(err);
  if (/Unrecognized API version and kind|not found in the cluster|could not find the requested resource/i.test(msg)) {
    const group = o.apiVersion.split('/')[0]!;
    return new Error(`${objectId(o)}: the cluster does not serve ${o.apiVersion} ${o.kind}${PROVIDERS[group] ? `: install ${PROVIDERS[group]} first (infra/README.md)` : ''}`);
  }
  return new Error(`${objectId(o)}: ${msg}`);
}

/**
 * The client's model of an object: KubernetesObjectApi serialises its
 * argument as a client model, whose field names differ from the wire for
 * reserved words (NetworkPolicy `from` is `_from`); plain JSON would lose them.
 */
function toModel(o: KubeObject): KubernetesObject {
  return ObjectSerializer.deserialize(structuredClone(o), getSerializationType(o.apiVersion, o.kind)) as KubernetesObject;
}

async function readLive(api: KubernetesObjectApi, o: KubeObject): Promise<KubeObject | undefined> {
  try {
    const typed = (await api.read(o as KubernetesObject as never)) as unknown as KubeObject;
    // read() returns client models (e.g. NetworkPolicy `from` becomes `_from`): compare in wire form.
    return ObjectSerializer.serialize(typed, getSerializationType(o.apiVersion, o.kind)) as KubeObject;
  } catch (err) {
    if (statusCode(err) === 404) return undefined;
    throw describeError(o, err);
  }
}

/** What to compare for an object: metadata labels/annotations and everything outside metadata/status. */
function comparable(o: KubeObject): Record<string, unknown> {
  const { metadata, status: _s, ...rest } = o;
  return { metadata: { labels: metadata.labels, annotations: metadata.annotations }, ...rest };
}

/** Names of Secrets the objects reference (and do not create), as `namespace/name`. */
export function referencedSecrets(objects: KubeObject[]): string[] {
  const found = new Set<string>();
  const created = new Set(objects.filter((o) => o.kind === 'Secret').map((o) => `${o.metadata.namespace}/${o.metadata.name}`));
  const walk = (node: unknown, ns: string | undefined, key = '') => {
    if (Array.isArray(node)) return node.forEach((n) => walk(n, ns, key));
    if (!isObj(node)) return;
    if (/secret/i.test(key) && typeof node.name === 'string' && node.optional !== true && !/^secretName$/i.test(key)) found.add(`${ns}/${node.name}`);
    if (key === 'secret' && typeof node.secretName === 'string') found.add(`${ns}/${node.secretName}`);
    for (const [k, v] of Object.entries(node)) walk(v, ns, k);
  };
  for (const o of objects) if (o.kind !== 'Secret') walk(o, o.metadata.namespace);
  return [...found].filter((s) => !created.has(s) && !s.startsWith('undefined/')).sort();
}

/** Secrets referenced but absent from the cluster. */
export async function missingSecrets(api: KubernetesObjectApi, objects: KubeObject[]): Promise<string[]> {
  const missing: string[] = [];
  for (const ref of referencedSecrets(objects)) {
    const [namespace, name] = ref.split('/') as [string, string];
    try {
      await api.read({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace } } as never);
    } catch (err) {
      if (statusCode(err) === 404) missing.push(ref);
      else throw err;
    }
  }
  return missing;
}

/** Whether a live object is ready; undefined when its kind has nothing to wait for. */
export function readiness(o: KubeObject): { ready: boolean; detail: string } | undefined {
  const st = (o.status ?? {}) as any;
  const spec = (o.spec ?? {}) as any;
  const cond = (type: string) => (st.conditions ?? []).find((c: any) => c.type === type);
  switch (o.kind) {
    case 'Deployment':
    case 'StatefulSet': {
      const want = spec.replicas ?? 1;
      const have = st.readyReplicas ?? 0;
      return { ready: have >= want, detail: `${have}/${want} replicas ready` };
    }
    case 'Job':
      if (st.succeeded >= 1) return { ready: true, detail: 'completed' };
      return { ready: false, detail: st.failed ? `${st.failed} failed attempts` : 'running' };
    case 'Cluster':
      if (!o.apiVersion.startsWith('postgresql.cnpg.io/')) return undefined;
      return { ready: (st.readyInstances ?? 0) >= (spec.instances ?? 1), detail: st.phase ?? 'starting' };
    case 'RabbitmqCluster': {
      const c = cond('AllReplicasReady');
      return { ready: c?.status === 'True', detail: c?.reason ?? 'starting' };
    }
    case 'CephFilesystem':
      return { ready: st.phase === 'Ready', detail: st.phase ?? 'creating' };
    case 'Service':
    case 'Broker':
    case 'Trigger':
    case 'SinkBinding':
    case 'RabbitmqBrokerConfig': {
      if (!/knative\.dev\//.test(o.apiVersion)) return undefined;
      if (o.kind === 'RabbitmqBrokerConfig') return undefined;
      const c = cond('Ready');
      return { ready: c?.status === 'True', detail: c ? `${c.reason ?? c.status}${c.message ? `: ${c.message}` : ''}` : 'not reconciled yet' };
    }
    default:
      return undefined;
  }
}

/**
 * Applies `objects` (any order: they are sorted) and, unless told not to,
 * waits for readiness. Throws before writing anything when a referenced
 * Secret is missing.
 */
export async function deploy(objects: KubeObject[], o: DeployOptions = {}): Promise<DeployResult> {
  const out = o.progress ?? ((l: string) => process.stdout.write(`${l}\n`));
  const kc = o.kubeConfig ?? defaultKubeConfig();
  const api = KubernetesObjectApi.makeApiClient(kc);
  const ordered = sortForApply(objects);

  // A dry run still shows the whole plan when no cluster answers (every object then is a create).
  let offline = false;
  let missing: string[] = [];
  try {
    missing = await missingSecrets(api, ordered);
  } catch (err) {
    if (!o.dryRun) throw err;
    offline = true;
    out(`warning: cannot read the cluster (${(err as Error).message}): showing every object as a create`);
  }
  if (missing.length) {
    const msg = `Missing Secrets (create them from infra/secrets/*.example.yaml):\n  ${missing.join('\n  ')}`;
    if (!o.dryRun) throw new Error(msg);
    out(`warning: ${msg}`);
  }

  const changes: Change[] = [];
  for (const [i, obj] of ordered.entries()) {
    const id = objectId(obj);
    const live = offline ? undefined : await readLive(api, obj);
    const diff = live ? differences(comparable(obj), live) : [];
    let action: Change['action'] = !live ? 'create' : diff.length ? 'update' : 'unchanged';
    if (action === 'update' && obj.kind === 'Job') action = 'replace';
    changes.push({ id, action, diff: o.diff ? diff : [] });
    if (action !== 'unchanged' || o.diff) out(`[${i + 1}/${ordered.length}] ${o.dryRun ? 'would ' : ''}${action} ${id}`);
    if (o.diff) for (const d of diff) out(`    ${d}`);
  }

  if (!offline) {
    const refused = await serverDryRun(api, ordered, changes);
    if (refused.length) {
      const msg = `The cluster refuses ${refused.length} object(s) (server-side dry run); nothing was applied:\n  ${refused.join('\n  ')}`;
      if (!o.dryRun) throw new Error(msg);
      out(`warning: ${msg}`);
    }
  }

  for (const [i, obj] of ordered.entries()) {
    const action = changes[i]!.action;
    if (o.dryRun || action === 'unchanged') continue;
    try {
      if (action === 'replace') {
        await api.delete(obj as never, undefined, undefined, undefined, undefined, 'Background');
        await waitGone(api, obj, o.pollMs ?? 500);
      }
      await api.patch(toModel(obj), undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
    } catch (err) {
      throw describeError(obj, err);
    }
  }
  const counts = (['create', 'update', 'replace', 'unchanged'] as const).map(
    (a) => `${changes.filter((c) => c.action === a).length} ${a === 'unchanged' ? 'unchanged' : `${o.dryRun ? 'to ' : ''}${a}`}`,
  );
  out(`${o.dryRun ? 'dry run: ' : ''}${counts.join(', ')}`);

  if (o.dryRun || o.wait === false) return { changes, ready: !o.dryRun, notReady: [] };
  const notReady = await waitReady(api, ordered, o.timeoutSeconds ?? 900, o.pollMs ?? 2000, out);
  return { changes, ready: notReady.length === 0, notReady };
}

/**
 * Asks the cluster to check each change without storing it (server-side
 * apply, `dryRun: 'All'`): the API server's schema, the CRD's schema and the
 * admission webhooks all run, which no client-side model covers. Returns one
 * line per refused object. Not checked this way: a Job to be replaced (the
 * live one's immutable spec would refuse any change; it is deleted first),
 * and an object the server cannot check because its namespace is created by
 * this deploy (404 for the namespace; it is checked when applied).
 */
async function serverDryRun(api: KubernetesObjectApi, ordered: KubeObject[], changes: Change[]): Promise<string[]> {
  const newNamespaces = new Set(ordered.filter((x, i) => x.kind === 'Namespace' && changes[i]!.action === 'create').map((x) => x.metadata.name));
  const refused: string[] = [];
  for (const [i, obj] of ordered.entries()) {
    const action = changes[i]!.action;
    if (action === 'unchanged' || action === 'replace') continue;
    try {
      await api.patch(toModel(obj), undefined, 'All', FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
    } catch (err) {
      const ns = obj.metadata.namespace;
      const namespaceToCome = statusCode(err) === 404 && ns && newNamespaces.has(ns) && String((err as Error)?.message).includes(`namespaces "${ns}" not found`);
      if (!namespaceToCome) refused.push(describeError(obj, err).message);
    }
  }
  return refused;
}

async function waitGone(api: KubernetesObjectApi, obj: KubeObject, pollMs: number): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (!(await readLive(api, obj))) return;
    await new Promise((r) => setTimeout(r, pollMs));
  }
  throw new Error(`${objectId(obj)} was not deleted`);
}

/** Polls until every waitable object is ready; returns those still not ready at the deadline. */
async function waitReady(api: KubernetesObjectApi, objects: KubeObject[], timeoutSeconds: number, pollMs: number, out: (l: string) => void): Promise<string[]> {
  const waitable = objects.filter((x) => readiness({ ...x, status: {} }) !== undefined);
  const deadline = Date.now() + timeoutSeconds * 1000;
  let pending = waitable;
  let last = '';
  for (;;) {
    const still: KubeObject[] = [];
    const details: string[] = [];
    for (const obj of pending) {
      const live = await readLive(api, obj);
      const r = live ? readiness(live) : { ready: false, detail: 'missing' };
      if (!r?.ready) {
        still.push(obj);
        details.push(`${objectId(obj)}: ${r?.detail}`);
      }
    }
    pending = still;
    const line = `ready ${waitable.length - pending.length}/${waitable.length}${pending.length ? ` (waiting for ${details[0]}${pending.length > 1 ? ` and ${pending.length - 1} more` : ''})` : ''}`;
    if (line !== last) out(line);
    last = line;
    if (!pending.length) return [];
    if (Date.now() > deadline) {
      out(`not ready after ${timeoutSeconds} s:\n  ${details.join('\n  ')}`);
      return details;
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** The operator's kubeconfig ($KUBECONFIG, ~/.kube/config, or in-cluster). */
export function defaultKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromDefault();
  return kc;
}
