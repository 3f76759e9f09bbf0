/**
 * The npm packages a bundle keeps external, copied from this repository's
 * node_modules with everything they depend on: an image then needs no
 * `npm install` (no registry access, no build tools in the base image) and
 * holds exactly the versions the tests ran with.
 */
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../config.ts';

/** The package directory `name` resolves to from `fromDir` (Node's node_modules walk). */
export function findPackage(fromDir: string, name: string): string {
  for (let d = fromDir; ; d = path.dirname(d)) {
    const p = path.join(d, 'node_modules', name);
    if (fs.existsSync(path.join(p, 'package.json'))) return p;
    if (d === path.dirname(d)) throw new Error(`cannot resolve ${name} from ${fromDir}`);
  }
}

/** `pkgDir` and every package it depends on (optional ones when installed), as resolved here. */
export function packageClosure(pkgDir: string, seen = new Set<string>()): Set<string> {
  if (seen.has(pkgDir)) return seen;
  seen.add(pkgDir);
  const pj = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
  for (const dep of Object.keys({ ...pj.dependencies, ...pj.optionalDependencies })) {
    let found: string;
    try {
      found = findPackage(pkgDir, dep);
    } catch (err) {
      if (pj.optionalDependencies?.[dep]) continue; // another platform's binary
      throw err;
    }
    packageClosure(found, seen);
  }
  return seen;
}

/**
 * Copies `packages` (names resolved from the repository root) and their
 * closure into `dir/node_modules`, keeping nested node_modules where npm put
 * them. Returns the number of packages copied.
 */
export function vendorPackages(dir: string, packages: string[]): number {
  const all = new Set<string>();
  for (const p of packages) packageClosure(findPackage(repoRoot, p), all);
  for (const p of all) {
    const rel = path.relative(repoRoot, p);
    // Workspace-local installs (platform/node_modules/x) sit beside the bundle's own node_modules.
    const to = path.join(dir, rel.replace(/^(platform|events|web|functions\/[^/]+)\/node_modules\//, 'node_modules/'));
    fs.cpSync(p, to, { recursive: true, dereference: true, filter: (s) => !s.includes(`${path.sep}node_modules${path.sep}.bin`) && !s.startsWith(path.join(p, 'node_modules')) });
  }
  return all.size;
}
