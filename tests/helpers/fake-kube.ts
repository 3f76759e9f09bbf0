/**
 * A fake Kubernetes API server for tests: enough of the real API's behaviour
 * that @kubernetes/client-node 2 and the platform's drivers and `platform
 * deploy` run against it unchanged. It keeps objects per kind and namespace,
 * honours resourceVersion (409 on a stale update), answers 404/409 with
 * Status bodies, does server-side apply (create or merge), merge patches,
 * deletes with ownerReference cascade, lists and watch streams (JSON lines,
 * from a resourceVersion), serves API discovery, and can enforce a Role's
 * rules (403 for anything they do not allow). Like a real server it refuses
 * (422 Invalid) an object its kind's schema rejects (the kubernetes-models
 * models, platform/src/deploy/validate.ts), and honours `dryRun=All` on
 * writes: the answer (201/200 with the object) as if written, nothing stored,
 * no watch event. Plain HTTP: the KubeConfig from
 * `kubeConfig()` points at it with skipTLSVerify.
 *
 * Simulation knobs: `setStatus()` (e.g. a Deployment's readyReplicas) and the
 * `simulate` option that makes Deployments ready / Jobs finish by themselves.
 */
import { randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import YAML from 'yaml';
import { modelProblem } from '@saasodoo/platform/deploy/validate';

export type KubeObject = {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    creationTimestamp?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean; blockOwnerDeletion?: boolean }[];
    [k: string]: unknown;
  };
  spec?: any;
  status?: any;
  [k: string]: unknown;
};

export type ResourceType = { group: string; version: string; kind: string; plural: string; namespaced: boolean; subresources?: string[] };

export type PolicyRule = { apiGroups?: string[]; resources?: string[]; verbs: string[]; resourceNames?: string[] };

export type FakeRequest = { method: string; path: string; verb: string; group: string; resource: string; namespace?: string; name?: string; status: number; dryRun: boolean };

/** Resource types the fake knows (extend with `resources` option). */
export const DEFAULT_RESOURCES: ResourceType[] = [
  ...[
    ['Namespace', 'namespaces', false],
    ['ConfigMap', 'configmaps', true],
    ['Secret', 'secrets', true],
    ['Service', 'services', true],
    ['ServiceAccount', 'serviceaccounts', true],
    ['PersistentVolumeClaim', 'persistentvolumeclaims', true],
    ['PersistentVolume', 'persistentvolumes', false],
    ['Pod', 'pods', true],
    ['Event', 'events', true],
  ].map(([kind, plural, namespaced]) => ({ group: '', version: 'v1', kind: kind as string, plural: plural as string, namespaced: namespaced as boolean, subresources: ['status'] })),
  { group: 'apps', version: 'v1', kind: 'Deployment', plural: 'deployments', namespaced: true, subresources: ['status', 'scale'] },
  { group: 'apps', version: 'v1', kind: 'StatefulSet', plural: 'statefulsets', namespaced: true, subresources: ['status', 'scale'] },
  { group: 'batch', version: 'v1', kind: 'Job', plural: 'jobs', namespaced: true, subresources: ['status'] },
  { group: 'batch', version: 'v1', kind: 'CronJob', plural: 'cronjobs', namespaced: true, subresources: ['status'] },
  { group: 'networking.k8s.io', version: 'v1', kind: 'Ingress', plural: 'ingresses', namespaced: true, subresources: ['status'] },
  { group: 'networking.k8s.io', version: 'v1', kind: 'NetworkPolicy', plural: 'networkpolicies', namespaced: true },
  { group: 'rbac.authorization.k8s.io', version: 'v1', kind: 'Role', plural: 'roles', namespaced: true },
  { group: 'rbac.authorization.k8s.io', version: 'v1', kind: 'RoleBinding', plural: 'rolebindings', namespaced: true },
  { group: 'rbac.authorization.k8s.io', version: 'v1', kind: 'ClusterRole', plural: 'clusterroles', namespaced: false },
  { group: 'rbac.authorization.k8s.io', version: 'v1', kind: 'ClusterRoleBinding', plural: 'clusterrolebindings', namespaced: false },
  { group: 'apiextensions.k8s.io', version: 'v1', kind: 'CustomResourceDefinition', plural: 'customresourcedefinitions', namespaced: false, subresources: ['status'] },
  { group: 'traefik.io', version: 'v1alpha1', kind: 'IngressRoute', plural: 'ingressroutes', namespaced: true },
  { group: 'traefik.io', version: 'v1alpha1', kind: 'Middleware', plural: 'middlewares', namespaced: true },
  { group: 'cert-manager.io', version: 'v1', kind: 'Certificate', plural: 'certificates', namespaced: true, subresources: ['status'] },
  { group: 'cert-manager.io', version: 'v1', kind: 'ClusterIssuer', plural: 'clusterissuers', namespaced: false, subresources: ['status'] },
  { group: 'cert-manager.io', version: 'v1', kind: 'Issuer', plural: 'issuers', namespaced: true, subresources: ['status'] },
  { group: 'serving.knative.dev', version: 'v1', kind: 'Service', plural: 'services', namespaced: true, subresources: ['status'] },
  { group: 'eventing.knative.dev', version: 'v1', kind: 'Broker', plural: 'brokers', namespaced: true, subresources: ['status'] },
  { group: 'eventing.knative.dev', version: 'v1', kind: 'Trigger', plural: 'triggers', namespaced: true, subresources: ['status'] },
  { group: 'sources.knative.dev', version: 'v1', kind: 'PingSource', plural: 'pingsources', namespaced: true, subresources: ['status'] },
  { group: 'eventing.knative.dev', version: 'v1alpha1', kind: 'RabbitmqBrokerConfig', plural: 'rabbitmqbrokerconfigs', namespaced: true },
  { group: 'postgresql.cnpg.io', version: 'v1', kind: 'Cluster', plural: 'clusters', namespaced: true, subresources: ['status'] },
  { group: 'rabbitmq.com', version: 'v1beta1', kind: 'RabbitmqCluster', plural: 'rabbitmqclusters', namespaced: true, subresources: ['status'] },
];

export type FakeKubeOptions = {
  /** Enforce these rules (a Role's) for every non-discovery request: 403 otherwise. */
  rbac?: { rules: PolicyRule[]; namespace?: string };
  /** More resource types (CRDs the fake does not know). */
  resources?: ResourceType[];
  /** Make controllers' work happen by itself, after `delayMs` (default 20). */
  simulate?: { deployments?: 'ready' | 'none'; jobs?: 'succeed' | 'fail' | 'none'; delayMs?: number };
};

export type FakeKube = {
  /** http://127.0.0.1:port */
  url: string;
  /** A KubeConfig (token auth, skipTLSVerify) pointing at the fake, default namespace `namespace`. */
  kubeConfig(namespace?: string): KubeConfig;
  /** The stored object (a copy), or undefined. kind as in `apiVersion`/`kind` of the object. */
  get(apiVersion: string, kind: string, namespace: string | undefined, name: string): KubeObject | undefined;
  /** All stored objects, optionally of one kind and/or namespace. */
  list(filter?: { apiVersion?: string; kind?: string; namespace?: string }): KubeObject[];
  /** Replace an object's status as a controller would (bumps resourceVersion, notifies watchers). */
  setStatus(apiVersion: string, kind: string, namespace: string | undefined, name: string, status: unknown): void;
  /** Store an object directly (bypasses RBAC). */
  put(obj: KubeObject): KubeObject;
  /** Change the RBAC mode at run time (undefined = allow everything). */
  setRbac(rbac: FakeKubeOptions['rbac']): void;
  /** Every API request seen (discovery excluded). */
  requests: FakeRequest[];
  close(): Promise<void>;
};

type WatchEvent = { type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: KubeObject; rv: number };
type Watcher = { type: ResourceType; namespace?: string; name?: string; labels?: Record<string, string>; res: ServerResponse };

const clone = <T>(v: T): T => structuredClone(v);

function isObj(v: unknown): v is Record<string, any> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Server-side-apply-like merge: maps merge, lists and scalars replace. */
function applyMerge(base: any, patch: any): any {
  if (!isObj(base) || !isObj(patch)) return clone(patch);
  const out: Record<string, any> = { ...base };
  for (const [k, v] of Object.entries(patch)) out[k] = k in base ? applyMerge(base[k], v) : clone(v);
  return out;
}

/** RFC 7386 JSON merge patch. */
function mergePatch(base: any, patch: any): any {
  if (!isObj(patch)) return clone(patch);
  const out: Record<string, any> = isObj(base) ? { ...base } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function parseSelector(sel: string | null): Record<string, string> | undefined {
  if (!sel) return undefined;
  const out: Record<string, string> = {};
  for (const part of sel.split(',').filter(Boolean)) {
    const [k, v] = part.split(/==?/);
    out[k.trim()] = (v ?? '').trim();
  }
  return out;
}

function matchesLabels(obj: KubeObject, labels?: Record<string, string>): boolean {
  if (!labels) return true;
  return Object.entries(labels).every(([k, v]) => obj.metadata.labels?.[k] === v);
}

function ruleAllows(rules: PolicyRule[], group: string, resource: string, verb: string, name?: string): boolean {
  return rules.some(
    (r) =>
      (r.apiGroups ?? ['']).some((g) => g === '*' || g === group) &&
      (r.resources ?? []).some((x) => x === '*' || x === resource) &&
      r.verbs.some((v) => v === '*' || v === verb) &&
      (!r.resourceNames?.length || (name !== undefined && r.resourceNames.includes(name))),
  );
}

/** Starts the fake on a random loopback port. */
export async function startFakeKube(opts: FakeKubeOptions = {}): Promise<FakeKube> {
  const types = [...DEFAULT_RESOURCES, ...(opts.resources ?? [])];
  let rbac = opts.rbac;
  const store = new Map<string, KubeObject>();
  const history: WatchEvent[] = [];
  const watchers = new Set<Watcher>();
  const requests: FakeRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let rv = 1000;

  const apiVersionOf = (t: ResourceType) => (t.group ? `${t.group}/${t.version}` : t.version);
  const typeOf = (apiVersion: string, kind: string) => types.find((t) => apiVersionOf(t) === apiVersion && t.kind === kind);
  const keyOf = (t: ResourceType, ns: string | undefined, name: string) => `${apiVersionOf(t)}|${t.kind}|${t.namespaced ? (ns ?? '') : ''}|${name}`;

  function notify(type: WatchEvent['type'], t: ResourceType, obj: KubeObject) {
    const ev: WatchEvent = { type, object: clone(obj), rv: Number(obj.metadata.resourceVersion) };
    history.push(ev);
    if (history.length > 10_000) history.shift();
    for (const w of watchers) {
      if (w.type !== t) continue;
      if (!watchMatches(w, obj)) continue;
      w.res.write(JSON.stringify({ type, object: obj }) + '\n');
    }
  }

  function watchMatches(w: Omit<Watcher, 'res'>, obj: KubeObject) {
    return (!w.namespace || obj.metadata.namespace === w.namespace) && (!w.name || obj.metadata.name === w.name) && matchesLabels(obj, w.labels);
  }

  function save(t: ResourceType, obj: KubeObject, event: 'ADDED' | 'MODIFIED'): KubeObject {
    obj.metadata.resourceVersion = String(++rv);
    store.set(keyOf(t, obj.metadata.namespace, obj.metadata.name), obj);
    notify(event, t, obj);
    simulateController(t, obj);
    return clone(obj);
  }

  function createObject(t: ResourceType, obj: KubeObject, dry = false): KubeObject {
    obj.apiVersion = apiVersionOf(t);
    obj.kind = t.kind;
    obj.metadata.uid = randomUUID();
    obj.metadata.creationTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    obj.metadata.generation = 1;
    if (!t.namespaced) delete obj.metadata.namespace;
    return dry ? clone(obj) : save(t, obj, 'ADDED');
  }

  function updateObject(t: ResourceType, existing: KubeObject, next: KubeObject, statusOnly = false, dry = false): KubeObject {
    const merged: KubeObject = statusOnly ? { ...clone(existing), status: clone(next.status) } : { ...clone(next), status: clone(existing.status) };
    if (merged.status === undefined) delete merged.status;
    merged.apiVersion = existing.apiVersion;
    merged.kind = existing.kind;
    merged.metadata = {
      ...(statusOnly ? existing.metadata : next.metadata),
      name: existing.metadata.name,
      namespace: existing.metadata.namespace,
      uid: existing.metadata.uid,
      creationTimestamp: existing.metadata.creationTimestamp,
      generation: (existing.metadata.generation ?? 1) + (!statusOnly && JSON.stringify(existing.spec) !== JSON.stringify(next.spec) ? 1 : 0),
    };
    if (!merged.metadata.namespace) delete merged.metadata.namespace;
    return dry ? clone(merged) : save(t, merged, 'MODIFIED');
  }

  function deleteObject(t: ResourceType, obj: KubeObject, cascade: boolean) {
    store.delete(keyOf(t, obj.metadata.namespace, obj.metadata.name));
    obj.metadata.resourceVersion = String(++rv);
    notify('DELETED', t, obj);
    if (!cascade) return;
    for (const child of [...store.values()]) {
      if (child.metadata.ownerReferences?.some((o) => o.uid === obj.metadata.uid)) {
        const ct = typeOf(child.apiVersion, child.kind);
        if (ct) deleteObject(ct, child, true);
      }
    }
  }

  function later(fn: () => void) {
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, opts.simulate?.delayMs ?? 20);
    timers.add(timer);
  }

  function simulateController(t: ResourceType, obj: KubeObject) {
    const sim = opts.simulate;
    if (!sim) return;
    const key = keyOf(t, obj.metadata.namespace, obj.metadata.name);
    if (t.kind === 'Deployment' && t.group === 'apps' && sim.deployments === 'ready') {
      const want = obj.spec?.replicas ?? 1;
      const s = obj.status ?? {};
      if (s.replicas === want && s.readyReplicas === want && s.observedGeneration === obj.metadata.generation) return;
      later(() => {
        const cur = store.get(key);
        if (!cur) return;
        const n = cur.spec?.replicas ?? 1;
        updateObject(t, cur, { ...cur, status: { observedGeneration: cur.metadata.generation, replicas: n, readyReplicas: n, availableReplicas: n, updatedReplicas: n } }, true);
      });
    }
    if (t.kind === 'Job' && t.group === 'batch' && sim.jobs && sim.jobs !== 'none' && !obj.status?.succeeded && !obj.status?.failed) {
      later(() => {
        const cur = store.get(key);
        if (!cur) return;
        const ok = sim.jobs === 'succeed';
        const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
        updateObject(
          t,
          cur,
          {
            ...cur,
            status: {
              ...(ok ? { succeeded: 1, completionTime: now } : { failed: 1 }),
              conditions: [
                {
                  type: ok ? 'Complete' : 'Failed',
                  status: 'True',
                  lastTransitionTime: now,
                  ...(ok ? {} : { reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' }),
                },
              ],
            },
          },
          true,
        );
      });
    }
  }

  function status(res: ServerResponse, code: number, reason: string, message: string, details?: Record<string, unknown>) {
    const body = JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, details, code });
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(body);
  }

  function send(res: ServerResponse, code: number, body: unknown) {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  async function readBody(req: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }

  function discovery(path: string, res: ServerResponse): boolean {
    if (path === '/api') return (send(res, 200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] }), true);
    if (path === '/version') return (send(res, 200, { major: '1', minor: '33', gitVersion: 'v1.33.0-fake' }), true);
    if (path === '/apis') {
      const groups = new Map<string, Set<string>>();
      for (const t of types) if (t.group) (groups.get(t.group) ?? groups.set(t.group, new Set()).get(t.group)!).add(t.version);
      send(res, 200, {
        kind: 'APIGroupList',
        apiVersion: 'v1',
        groups: [...groups].map(([name, vs]) => ({
          name,
          versions: [...vs].map((v) => ({ groupVersion: `${name}/${v}`, version: v })),
          preferredVersion: { groupVersion: `${name}/${[...vs][0]}`, version: [...vs][0] },
        })),
      });
      return true;
    }
    const m = path.match(/^\/api\/(v1)$/) ?? path.match(/^\/apis\/([^/]+\/[^/]+)$/);
    if (!m) return false;
    const list = types.filter((t) => apiVersionOf(t) === m[1]);
    if (!list.length) return (status(res, 404, 'NotFound', 'the server could not find the requested resource'), true);
    send(res, 200, {
      kind: 'APIResourceList',
      apiVersion: 'v1',
      groupVersion: m[1],
      resources: list.flatMap((t) => [
        { name: t.plural, singularName: t.kind.toLowerCase(), namespaced: t.namespaced, kind: t.kind, verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'] },
        ...(t.subresources ?? []).map((s) => ({ name: `${t.plural}/${s}`, singularName: '', namespaced: t.namespaced, kind: t.kind, verbs: ['get', 'patch', 'update'] })),
      ]),
    });
    return true;
  }

  type Route = { t: ResourceType; namespace?: string; name?: string; sub?: string };
  function route(path: string): Route | undefined {
    const m = path.match(/^\/api\/(v1)\/namespaces\/([^/]+)\/([^/]+)(?:\/([^/]+))?(?:\/([^/]+))?$/) ?? path.match(/^\/apis\/([^/]+\/[^/]+)\/namespaces\/([^/]+)\/([^/]+)(?:\/([^/]+))?(?:\/([^/]+))?$/);
    if (m) {
      const t = types.find((x) => apiVersionOf(x) === m[1] && x.plural === m[3] && x.namespaced);
      if (t) return { t, namespace: decodeURIComponent(m[2]), name: m[4] && decodeURIComponent(m[4]), sub: m[5] };
    }
    const c = path.match(/^\/api\/(v1)\/([^/]+)(?:\/([^/]+))?(?:\/([^/]+))?$/) ?? path.match(/^\/apis\/([^/]+\/[^/]+)\/([^/]+)(?:\/([^/]+))?(?:\/([^/]+))?$/);
    if (c) {
      const t = types.find((x) => apiVersionOf(x) === c[1] && x.plural === c[2]);
      if (!t) return undefined;
      // A namespace object itself: /api/v1/namespaces/<name>
      if (!t.namespaced) return { t, name: c[3] && decodeURIComponent(c[3]), sub: c[4] };
      if (!c[3]) return { t }; // list across namespaces
    }
    return undefined;
  }

  function verbOf(method: string, r: Route, watch: boolean): string {
    if (method === 'GET') return r.name ? 'get' : watch ? 'watch' : 'list';
    if (method === 'POST') return 'create';
    if (method === 'PUT') return 'update';
    if (method === 'PATCH') return 'patch';
    if (method === 'DELETE') return r.name ? 'delete' : 'deletecollection';
    return method.toLowerCase();
  }

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const u = new URL(req.url ?? '/', 'http://fake');
    const path = u.pathname.replace(/\/$/, '');
    const method = req.method ?? 'GET';
    if (method === 'GET' && discovery(path, res)) return;
    const r = route(path);
    if (!r) return status(res, 404, 'NotFound', 'the server could not find the requested resource');
    const watch = ['1', 'true'].includes(u.searchParams.get('watch') ?? '');
    const verb = verbOf(method, r, watch);
    const resource = r.sub ? `${r.t.plural}/${r.sub}` : r.t.plural;
    const dryRun = u.searchParams.get('dryRun');
    const entry: FakeRequest = { method, path, verb, group: r.t.group, resource, namespace: r.namespace, name: r.name, status: 0, dryRun: dryRun === 'All' };
    requests.push(entry);
    const orig = res.writeHead.bind(res);
    res.writeHead = ((code: number, ...rest: any[]) => {
      entry.status = code;
      return (orig as any)(code, ...rest);
    }) as typeof res.writeHead;

    if (rbac) {
      const nsOk = !rbac.namespace || r.namespace === rbac.namespace;
      if (!nsOk || !ruleAllows(rbac.rules, r.t.group, resource, verb, r.name)) {
        const what = r.name ? `${r.t.plural}${r.t.group ? '.' + r.t.group : ''} "${r.name}"` : `${r.t.plural}${r.t.group ? '.' + r.t.group : ''}`;
        return status(
          res,
          403,
          'Forbidden',
          `${what} is forbidden: User "system:serviceaccount:fake:platform" cannot ${verb} resource "${resource}" in API group "${r.t.group}"${r.namespace ? ` in the namespace "${r.namespace}"` : ' at the cluster scope'}`,
          { name: r.name, group: r.t.group, kind: r.t.plural },
        );
      }
    }

    if (dryRun !== null && dryRun !== 'All') return status(res, 400, 'BadRequest', `Invalid dryRun value: ${dryRun}: supported values: "All"`);
    const dry = dryRun === 'All';
    /** The schema check a real server makes before storing: 422 naming what the kind's model rejects. */
    const invalid = async (candidate: Record<string, any>): Promise<boolean> => {
      if (r.sub) return false;
      const problem = await modelProblem({ ...candidate, apiVersion: apiVersionOf(r.t), kind: r.t.kind } as KubeObject);
      if (problem)
        status(res, 422, 'Invalid', `${r.t.kind} "${candidate.metadata?.name ?? r.name}" is invalid: ${problem}`, { name: candidate.metadata?.name ?? r.name, group: r.t.group, kind: r.t.kind });
      return !!problem;
    };

    const key = r.name ? keyOf(r.t, r.namespace, r.name) : '';
    const existing = r.name ? store.get(key) : undefined;
    const notFound = () => status(res, 404, 'NotFound', `${r.t.plural}${r.t.group ? '.' + r.t.group : ''} "${r.name}" not found`, { name: r.name, group: r.t.group, kind: r.t.plural });

    if (method === 'GET' && !r.name) {
      const labels = parseSelector(u.searchParams.get('labelSelector'));
      const fieldName = u.searchParams.get('fieldSelector')?.match(/metadata\.name=([^,]+)/)?.[1];
      const filter = { type: r.t, namespace: r.namespace, name: fieldName, labels };
      const items = [...store.values()].filter((o) => typeOf(o.apiVersion, o.kind) === r.t && watchMatches(filter, o));
      if (!watch) {
        return send(res, 200, { apiVersion: apiVersionOf(r.t), kind: `${r.t.kind}List`, metadata: { resourceVersion: String(rv) }, items: items.map(clone) });
      }
      res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
      res.flushHeaders();
      const from = u.searchParams.get('resourceVersion');
      if (from && from !== '0') {
        for (const ev of history) {
          if (ev.rv > Number(from) && typeOf(ev.object.apiVersion, ev.object.kind) === r.t && watchMatches(filter, ev.object)) {
            res.write(JSON.stringify({ type: ev.type, object: ev.object }) + '\n');
          }
        }
      } else {
        for (const o of items) res.write(JSON.stringify({ type: 'ADDED', object: o }) + '\n');
      }
      const w: Watcher = { ...filter, res };
      watchers.add(w);
      const timeout = Number(u.searchParams.get('timeoutSeconds') ?? 0);
      const timer = timeout > 0 ? setTimeout(() => res.end(), timeout * 1000) : undefined;
      res.on('close', () => {
        watchers.delete(w);
        if (timer) clearTimeout(timer);
      });
      return;
    }

    if (method === 'GET') {
      if (!existing) return notFound();
      return send(res, 200, existing);
    }

    const raw = method === 'DELETE' ? '' : await readBody(req);
    let body: any;
    if (raw) {
      try {
        body = YAML.parse(raw);
      } catch {
        return status(res, 400, 'BadRequest', 'the body could not be decoded');
      }
    }

    if (method === 'POST') {
      if (!isObj(body) || !isObj(body.metadata) || !body.metadata.name) return status(res, 422, 'Invalid', 'metadata.name: Required value');
      const k = keyOf(r.t, r.namespace, body.metadata.name);
      if (store.has(k)) return status(res, 409, 'AlreadyExists', `${r.t.plural} "${body.metadata.name}" already exists`);
      body.metadata.namespace = r.namespace;
      if (await invalid(body)) return;
      return send(res, 201, createObject(r.t, body as KubeObject, dry));
    }

    if (method === 'PUT') {
      if (!isObj(body)) return status(res, 400, 'BadRequest', 'body must be an object');
      if (!existing) return notFound();
      const want = body.metadata?.resourceVersion;
      if (want !== undefined && want !== existing.metadata.resourceVersion) {
        return status(res, 409, 'Conflict', `Operation cannot be fulfilled on ${r.t.plural} "${r.name}": the object has been modified; please apply your changes to the latest version and try again`);
      }
      if (await invalid(body)) return;
      return send(res, 200, updateObject(r.t, existing, body as KubeObject, r.sub === 'status', dry));
    }

    if (method === 'PATCH') {
      const ct = String(req.headers['content-type'] ?? '').split(';')[0];
      if (!isObj(body)) return status(res, 400, 'BadRequest', 'body must be an object');
      if (ct === 'application/apply-patch+yaml') {
        if (!u.searchParams.get('fieldManager')) return status(res, 422, 'Invalid', 'fieldManager: Required value: is required for apply patch');
        if (!existing) {
          if (r.sub) return notFound();
          body.metadata = { ...(body.metadata ?? {}), name: r.name, namespace: r.namespace };
          if (await invalid(body)) return;
          return send(res, 201, createObject(r.t, body as KubeObject, dry));
        }
        const want = body.metadata?.resourceVersion;
        if (want !== undefined && want !== existing.metadata.resourceVersion) {
          return status(res, 409, 'Conflict', `Operation cannot be fulfilled on ${r.t.plural} "${r.name}": the object has been modified`);
        }
        const next = applyMerge(existing, body);
        if (await invalid(next)) return;
        return send(res, 200, updateObject(r.t, existing, next, r.sub === 'status', dry));
      }
      if (!existing) return notFound();
      if (ct === 'application/merge-patch+json' || ct === 'application/strategic-merge-patch+json') {
        const next = mergePatch(existing, body);
        if (await invalid(next)) return;
        return send(res, 200, updateObject(r.t, existing, next, r.sub === 'status', dry));
      }
      return status(res, 415, 'UnsupportedMediaType', `the fake does not support ${ct}`);
    }

    if (method === 'DELETE') {
      if (!r.name) return status(res, 405, 'MethodNotAllowed', 'deletecollection is not supported by the fake');
      if (!existing) return notFound();
      const policy = u.searchParams.get('propagationPolicy');
      if (!dry) deleteObject(r.t, existing, policy !== 'Orphan');
      return send(res, 200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name: r.name, group: r.t.group, kind: r.t.plural, uid: existing.metadata.uid } });
    }
    return status(res, 405, 'MethodNotAllowed', `${method} not allowed`);
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err) => {
      if (!res.headersSent) status(res, 500, 'InternalError', String(err?.message ?? err));
      else res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const findType = (apiVersion: string, kind: string) => {
    const t = typeOf(apiVersion, kind);
    if (!t) throw new Error(`fake-kube: unknown type ${apiVersion} ${kind}`);
    return t;
  };

  return {
    url,
    requests,
    kubeConfig(namespace = 'default') {
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: [{ name: 'fake', server: url, skipTLSVerify: true }],
        users: [{ name: 'fake', token: 'fake-token' }],
        contexts: [{ name: 'fake', cluster: 'fake', user: 'fake', namespace }],
        currentContext: 'fake',
      });
      return kc;
    },
    get(apiVersion, kind, namespace, name) {
      const t = findType(apiVersion, kind);
      const o = store.get(keyOf(t, namespace, name));
      return o && clone(o);
    },
    list(filter = {}) {
      return [...store.values()]
        .filter((o) => (!filter.apiVersion || o.apiVersion === filter.apiVersion) && (!filter.kind || o.kind === filter.kind) && (!filter.namespace || o.metadata.namespace === filter.namespace))
        .map(clone);
    },
    setStatus(apiVersion, kind, namespace, name, st) {
      const t = findType(apiVersion, kind);
      const cur = store.get(keyOf(t, namespace, name));
      if (!cur) throw new Error(`fake-kube: no ${kind} ${namespace}/${name}`);
      updateObject(t, cur, { ...cur, status: st }, true);
    },
    put(obj) {
      const t = findType(obj.apiVersion, obj.kind);
      const cur = store.get(keyOf(t, obj.metadata.namespace, obj.metadata.name));
      return cur ? updateObject(t, cur, clone(obj)) : createObject(t, clone(obj));
    },
    setRbac(next) {
      rbac = next;
    },
    async close() {
      for (const t of timers) clearTimeout(t);
      for (const w of watchers) w.res.end();
      watchers.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
