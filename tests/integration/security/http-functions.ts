/**
 * The HTTP functions of the platform and their route tables, read from the
 * function list (funcspec) and each module's `routes` (fn.ts), so the auth
 * matrix and the fuzzing suite cover a new function without being told.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { functionNames, functionSpec, functionsDir } from '@saasodoo/platform/funcspec';
import type { FaasFunction, RouteTable } from '@saasodoo/platform/fn';

/** Every function the gateway exposes under /api/<name> (func.yaml invoke is not `cloudevent`). */
export function httpFunctionNames(): string[] {
  return functionNames().filter((n) => functionSpec(n).invoke !== 'cloudevent');
}

/**
 * The route table of a function (auth mode, zod schemas). Functions not built
 * with `httpFunction` (webhook-intake answers Kill Bill's raw shape itself)
 * have none: undefined.
 */
export async function routeTable(name: string): Promise<RouteTable | undefined> {
  const mod = (await import(pathToFileURL(path.join(functionsDir, name, 'index.ts')).href)) as { default: FaasFunction };
  return mod.default.routes;
}
