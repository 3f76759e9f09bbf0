/**
 * The function list and each function's merged func.yaml (root defaults,
 * then the function's own file). Everything that needs to know which
 * functions exist (host, gateway, infra generator, tests) asks here.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { repoRoot } from './config.ts';

export type FuncSpec = {
  specVersion: string;
  name: string;
  created: string;
  runtime: string;
  registry?: string;
  invoke?: 'http' | 'cloudevent';
  run?: { envs?: { name: string; value: string }[] };
  deploy?: {
    namespace?: string;
    annotations?: Record<string, string>;
    labels?: { key: string; value: string }[];
    healthEndpoints?: { liveness?: string; readiness?: string };
    options?: {
      scale?: { min?: number; max?: number; metric?: string; target?: number; utilization?: number };
      resources?: { requests?: { cpu?: string; memory?: string }; limits?: { cpu?: string; memory?: string; concurrency?: number } };
    };
  };
  [key: string]: unknown;
};

export const functionsDir = path.join(repoRoot, 'functions');

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deep merge: objects merge key by key, anything else (arrays too) is replaced. */
export function mergeSpec<T>(base: T, over: unknown): T {
  if (!isPlainObject(base) || !isPlainObject(over)) return (over === undefined ? base : over) as T;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = mergeSpec(out[k], v);
  return out as T;
}

export function readYaml(file: string): unknown {
  return YAML.parse(fs.readFileSync(file, 'utf8'));
}

/** Names of every function (folders of functions/ holding a func.yaml), sorted. */
export function functionNames(): string[] {
  return fs
    .readdirSync(functionsDir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && fs.existsSync(path.join(functionsDir, d.name, 'func.yaml')))
    .map((d) => d.name)
    .sort();
}

/** A function's func.yaml merged over the root defaults. */
export function functionSpec(name: string): FuncSpec {
  const defaults = readYaml(path.join(repoRoot, 'func.yaml'));
  const own = readYaml(path.join(functionsDir, name, 'func.yaml'));
  return mergeSpec(defaults, own) as FuncSpec;
}

/** The function's own env vars from func.yaml `run.envs`. */
export function functionEnv(spec: FuncSpec): Record<string, string> {
  return Object.fromEntries((spec.run?.envs ?? []).map((e) => [e.name, e.value]));
}
