/**
 * Validates rendered objects before anything reaches a cluster: Kubernetes,
 * Knative and cert-manager kinds against kubernetes-models /
 * @kubernetes-models/knative / @kubernetes-models/cert-manager (npm packages,
 * so these checks run in any clone), custom resources without a model usable
 * on Node 20 (CloudNativePG, RabbitMQ, eventing-rabbitmq, Rook; Traefik, whose
 * @kubernetes-models/traefik needs Node 22 in every version) against the
 * openAPIV3Schema of their CRD, read from
 * SCHEMAS_DIR (else ../shared/reference/schemas beside the repo). A kind with
 * neither is reported as unchecked, never silently passed as valid.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import YAML from 'yaml';
import { repoRoot } from '../config.ts';
import { objectId, type KubeObject } from './objects.ts';

export type Validation = {
  /** Objects checked, with the schema used. */
  checked: { id: string; by: 'model' | 'crd' }[];
  /** Objects with no model and no CRD schema available. */
  unchecked: { id: string; reason: string }[];
  errors: { id: string; message: string }[];
};

export function defaultSchemasDir(): string {
  return process.env.SCHEMAS_DIR ?? path.resolve(repoRoot, '../shared/reference/schemas');
}

const KNATIVE_GROUPS = ['serving.knative.dev', 'eventing.knative.dev', 'sources.knative.dev', 'messaging.knative.dev', 'flows.knative.dev'];

/** The module that holds the model of an apiVersion, or undefined when none is installed. */
function modelModule(apiVersion: string): string | undefined {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  if (!group) return `kubernetes-models/${version}`;
  if (KNATIVE_GROUPS.includes(group!)) return `@kubernetes-models/knative/${group}/${version}`;
  if (group === 'cert-manager.io') return `@kubernetes-models/cert-manager/${group}/${version}`;
  if (group!.endsWith('.k8s.io') || ['apps', 'batch', 'autoscaling', 'policy'].includes(group!)) return `kubernetes-models/${group}/${version}`;
  return undefined;
}

type ModelClass = new (data: unknown) => { validate(): void };

async function modelFor(o: KubeObject): Promise<ModelClass | undefined> {
  const mod = modelModule(o.apiVersion);
  if (!mod) return undefined;
  try {
    const m = (await import(mod)) as Record<string, unknown>;
    const cls = m[o.kind] as (ModelClass & { apiVersion?: string; kind?: string }) | undefined;
    return cls && cls.kind === o.kind && cls.apiVersion === o.apiVersion ? cls : undefined;
  } catch {
    return undefined;
  }
}

/**
 * What the kind's model says is wrong with `o`: undefined when it is valid
 * or has no model. Exported for the fake API server in tests/, which refuses
 * what a real one would (422) with the same models.
 */
export async function modelProblem(o: KubeObject): Promise<string | undefined> {
  const Model = await modelFor(o);
  if (!Model) return undefined;
  try {
    new Model(o).validate();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

type CrdIndex = Map<string, object>;

const crdCache = new Map<string, CrdIndex>();

/** `group/version/Kind` → openAPIV3Schema, from every CRD file in `dir` (read once per process). */
export function loadCrdSchemas(dir: string): CrdIndex {
  const cached = crdCache.get(dir);
  if (cached) return cached;
  const index: CrdIndex = new Map();
  crdCache.set(dir, index);
  if (!fs.existsSync(dir)) return index;
  for (const f of fs.readdirSync(dir).filter((f) => /^crd-.*\.ya?ml$/.test(f))) {
    for (const doc of YAML.parseAllDocuments(fs.readFileSync(path.join(dir, f), 'utf8'))) {
      const crd = doc.toJS() as any;
      if (crd?.kind !== 'CustomResourceDefinition') continue;
      for (const v of crd.spec?.versions ?? []) {
        const schema = v.schema?.openAPIV3Schema ?? crd.spec?.validation?.openAPIV3Schema;
        if (schema) index.set(`${crd.spec.group}/${v.name}/${crd.spec.names.kind}`, schema);
      }
    }
  }
  return index;
}

function ajvFor(): Ajv {
  // CRD schemas are OpenAPI v3 with x-kubernetes-* extensions and formats like int32: check structure and types.
  return new Ajv({ strict: false, allErrors: true, validateFormats: false });
}

/** Validates every object; never throws for invalid objects (see `errors`). */
export async function validateObjects(objects: KubeObject[], schemasDir = defaultSchemasDir()): Promise<Validation> {
  const result: Validation = { checked: [], unchecked: [], errors: [] };
  const crds = loadCrdSchemas(schemasDir);
  const ajv = ajvFor();
  const compiled = new Map<string, ValidateFunction>();
  for (const o of objects) {
    const id = objectId(o);
    if (await modelFor(o)) {
      const problem = await modelProblem(o);
      if (problem) result.errors.push({ id, message: problem });
      result.checked.push({ id, by: 'model' });
      continue;
    }
    const key = `${o.apiVersion}/${o.kind}`;
    const schema = crds.get(key);
    if (!schema) {
      result.unchecked.push({ id, reason: crds.size ? `no model and no CRD schema for ${key} in ${schemasDir}` : `no model, and no CRD schemas found in ${schemasDir}` });
      continue;
    }
    let validate = compiled.get(key);
    if (!validate) {
      validate = ajv.compile(schema);
      compiled.set(key, validate);
    }
    if (!validate(o)) {
      result.errors.push({ id, message: (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ') });
    }
    result.checked.push({ id, by: 'crd' });
  }
  return result;
}
