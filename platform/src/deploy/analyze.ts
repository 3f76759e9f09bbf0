/**
 * What each function's code actually uses, read from the esbuild module graph
 * of the function (its own files plus everything it imports from platform/
 * and events/). The Knative Service generator gives a function exactly the
 * database passwords, secrets and Kubernetes access this finds, so access
 * follows the code instead of a hand-kept list that drifts.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as esbuild from 'esbuild';
import { repoRoot } from '../config.ts';
import { functionsDir } from '../funcspec.ts';

/** A secret env var a function may need, and the Secret key that holds it. */
export type SecretEnv = { env: string; secret: string; key: string; optional?: boolean };

/** Service databases a function can open with `db('<name>')`, and their Secrets (basic-auth, key `password`). */
export const DATABASE_SECRETS: Record<string, SecretEnv> = {
  auth: { env: 'AUTH_DB_PASSWORD', secret: 'saasodoo-db-auth', key: 'password' },
  billing: { env: 'BILLING_DB_PASSWORD', secret: 'saasodoo-db-billing', key: 'password' },
  instance: { env: 'INSTANCE_DB_PASSWORD', secret: 'saasodoo-db-instance', key: 'password' },
  communication: { env: 'COMMUNICATION_DB_PASSWORD', secret: 'saasodoo-db-communication', key: 'password' },
  audit: { env: 'AUDIT_DB_PASSWORD', secret: 'saasodoo-db-audit', key: 'password' },
  provisioner: { env: 'PROVISIONER_DB_PASSWORD', secret: 'saasodoo-db-provisioner', key: 'password' },
};

/**
 * Application secrets, given to a function when its code mentions the env
 * var (e.g. `config().WEBHOOK_TOKEN`) anywhere outside config.ts.
 */
export const APP_SECRETS: SecretEnv[] = [
  { env: 'REDIS_URL', secret: 'saasodoo-redis', key: 'url' },
  { env: 'JWT_PRIVATE_KEY', secret: 'saasodoo-jwt', key: 'JWT_PRIVATE_KEY' },
  { env: 'JWT_KID', secret: 'saasodoo-jwt', key: 'JWT_KID' },
  { env: 'JWT_PUBLIC_KEYS', secret: 'saasodoo-jwt', key: 'JWT_PUBLIC_KEYS' },
  { env: 'KILLBILL_API_KEY', secret: 'saasodoo-killbill', key: 'KILLBILL_API_KEY' },
  { env: 'KILLBILL_API_SECRET', secret: 'saasodoo-killbill', key: 'KILLBILL_API_SECRET' },
  { env: 'KILLBILL_USERNAME', secret: 'saasodoo-killbill', key: 'KILLBILL_USERNAME' },
  { env: 'KILLBILL_PASSWORD', secret: 'saasodoo-killbill', key: 'KILLBILL_PASSWORD' },
  { env: 'WEBHOOK_TOKEN', secret: 'saasodoo-killbill', key: 'WEBHOOK_TOKEN' },
  // Optional: without the operator's Stripe key the platform runs, and "Add card" says cards are not set up.
  { env: 'STRIPE_SECRET_KEY', secret: 'saasodoo-stripe', key: 'STRIPE_SECRET_KEY', optional: true },
  { env: 'SMTP_URL', secret: 'saasodoo-smtp', key: 'url' },
  { env: 'BACKUP_LINK_KEY', secret: 'saasodoo-instance-secrets', key: 'BACKUP_LINK_KEY' },
  { env: 'INSTANCE_SECRETS_KEY', secret: 'saasodoo-instance-secrets', key: 'INSTANCE_SECRETS_KEY' },
  { env: 'GATEWAY_PROXY_TOKEN', secret: 'saasodoo-proxy', key: 'GATEWAY_PROXY_TOKEN' },
];

/** A module whose presence in the graph means "this function drives instances on Kubernetes". */
const KUBERNETES_DRIVER_DIR = 'platform/src/runtime/kubernetes/';
/** Redis is used through this module; its URL carries the password. */
const REDIS_MODULE = 'platform/src/redis.ts';

export type FunctionNeeds = {
  /** Repo-relative source files of the function's module graph (no node_modules). */
  files: string[];
  /** npm packages imported (bare specifiers' package names). */
  packages: string[];
  /** Service databases opened (`db('x')`, plus `provisioner` for provisionerDb()). */
  databases: string[];
  /** Secret env vars, database passwords included, sorted by env name. */
  secrets: SecretEnv[];
  /** Loads the kubernetes runtime driver: needs the saasodoo-runtime service account. */
  kubernetes: boolean;
};

/** esbuild plugin: bundle our workspaces, leave every npm package external (analysis only needs our graph). */
export const workspaceOnly: esbuild.Plugin = {
  name: 'workspace-only',
  setup(build) {
    build.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.path.startsWith('@saasodoo/') || args.path.startsWith('node:')) return undefined;
      return { path: args.path, external: true };
    });
  },
};

/** `@scope/pkg/sub` → `@scope/pkg`; `pkg/sub` → `pkg`. */
export function packageName(spec: string): string {
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

export function functionEntry(name: string): string {
  const dir = path.join(functionsDir, name);
  const file = ['index.ts', 'index.js'].map((f) => path.join(dir, f)).find((f) => fs.existsSync(f));
  if (!file) throw new Error(`functions/${name} has no index.ts`);
  return file;
}

/**
 * The needs of every named function, from one esbuild pass (no output
 * written). Throws with esbuild's message if a function does not compile.
 */
export async function analyzeFunctions(names: string[]): Promise<Record<string, FunctionNeeds>> {
  if (!names.length) return {};
  const entryPoints = Object.fromEntries(names.map((n) => [n, functionEntry(n)]));
  const result = await esbuild.build({
    entryPoints,
    bundle: true,
    write: false,
    metafile: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outdir: '/analysis',
    logLevel: 'silent',
    plugins: [workspaceOnly],
  });
  const meta = result.metafile!;
  const out: Record<string, FunctionNeeds> = {};
  for (const [outFile, output] of Object.entries(meta.outputs)) {
    if (!output.entryPoint) continue;
    const name = path.basename(outFile).replace(/\.js$/, '');
    if (!(name in entryPoints)) continue;
    const files = Object.keys(output.inputs).map((f) => path.relative(repoRoot, path.resolve(process.cwd(), f)).split(path.sep).join('/'));
    const packages = [...new Set(output.imports.filter((i) => i.external && !i.path.startsWith('node:')).map((i) => packageName(i.path)))].sort();
    out[name] = needsOf(files, packages);
  }
  return out;
}

const codeCache = new Map<string, string>();

/** A source file without its comments (a comment quoting `db('auth')` is not a use of it). */
function codeOf(file: string): string {
  let code = codeCache.get(file);
  if (code === undefined) {
    const source = fs.readFileSync(path.join(repoRoot, file), 'utf8');
    code = esbuild.transformSync(source, { loader: file.endsWith('.ts') ? 'ts' : 'js', legalComments: 'none' }).code;
    codeCache.set(file, code);
  }
  return code;
}

/** Scans source files for what they use (exported for tests). */
export function needsOf(files: string[], packages: string[] = []): FunctionNeeds {
  const databases = new Set<string>();
  const mentioned = new Set<string>();
  for (const f of files) {
    const text = codeOf(f);
    for (const m of text.matchAll(/\bdb\(\s*['"`]([a-z]+)['"`]\s*\)/g)) databases.add(m[1]!);
    if (/\bprovisionerDb\(\s*\)/.test(text) && f !== 'platform/src/db/index.ts') databases.add('provisioner');
    if (f === 'platform/src/config.ts') continue;
    for (const s of APP_SECRETS) if (new RegExp(`\\b${s.env}\\b`).test(text)) mentioned.add(s.env);
  }
  if (files.includes(REDIS_MODULE)) mentioned.add('REDIS_URL');
  const secrets = [...[...databases].filter((d) => d in DATABASE_SECRETS).map((d) => DATABASE_SECRETS[d]!), ...APP_SECRETS.filter((s) => mentioned.has(s.env))].sort((a, b) =>
    a.env.localeCompare(b.env),
  );
  return {
    files: files.sort(),
    packages,
    databases: [...databases].sort(),
    secrets,
    kubernetes: files.some((f) => f.startsWith(KUBERNETES_DRIVER_DIR)),
  };
}
