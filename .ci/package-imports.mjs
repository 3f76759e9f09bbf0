#!/usr/bin/env node
// Rewrites relative imports that cross a workspace package (`../../../platform/src/config.ts`)
// into imports through the package's name (`@saasodoo/platform/config`), using each package's
// `exports` map (or `main`), then formats the changed files. Mechanical and idempotent: run it
// again after merging branches that add such imports (`node .ci/package-imports.mjs`); ESLint's
// no-restricted-imports rule (eslint.config.js) then keeps them out.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const rootPkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));

/** Workspace packages: directory → package.json. */
const packages = new Map();
for (const pattern of rootPkg.workspaces) {
  const dirs = pattern.endsWith('/*')
    ? fs
        .readdirSync(path.join(root, pattern.slice(0, -2)), { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .map((d) => path.join(root, pattern.slice(0, -2), d.name))
    : [path.join(root, pattern)];
  for (const d of dirs) if (fs.existsSync(path.join(d, 'package.json'))) packages.set(d, JSON.parse(fs.readFileSync(path.join(d, 'package.json'), 'utf8')));
}

/** The package directory a file belongs to (the root package for tests/ and the like). */
function packageOf(file) {
  let best = root;
  for (const d of packages.keys()) if (file.startsWith(d + path.sep) && d.length > best.length) best = d;
  return best;
}

/** `@scope/name/sub` for a file of a package, from its exports map (or main); undefined when not exported. */
function specifierFor(pkgDir, file) {
  const pkg = packages.get(pkgDir);
  const rel = './' + path.relative(pkgDir, file).split(path.sep).join('/');
  if (!pkg.exports) return rel === `./${pkg.main}` || rel === pkg.main ? pkg.name : `${pkg.name}/${rel.slice(2)}`;
  const exportsMap = typeof pkg.exports === 'string' ? { '.': pkg.exports } : pkg.exports;
  for (const [key, target] of Object.entries(exportsMap)) {
    if (typeof target !== 'string') continue;
    if (!key.includes('*')) {
      if (target === rel) return key === '.' ? pkg.name : `${pkg.name}/${key.slice(2)}`;
      continue;
    }
    const [pre, post] = target.split('*');
    if (rel.startsWith(pre) && rel.endsWith(post) && rel.length > pre.length + post.length) {
      const star = rel.slice(pre.length, rel.length - post.length);
      return `${pkg.name}/${key.slice(2).replace('*', star)}`;
    }
  }
  return undefined;
}

function walk(dir, out = []) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (['node_modules', 'dist', 'build', '.svelte-kit'].includes(e.name) || e.name.startsWith('.')) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (/\.(ts|mts|mjs|js|svelte)$/.test(e.name)) out.push(p);
  }
  return out;
}

// `from '…'`, `import '…'`, `import('…')`, `vi.mock('…')`: the specifier is group 2.
const IMPORT_RE = /(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|\bvi\.(?:mock|doMock|importActual)\s*\(\s*)(['"])(\.\.?\/[^'"]+)\2/g;

const changed = [];
for (const dir of ['tests', 'functions', 'platform', 'events', 'web/src']) {
  for (const file of walk(path.join(root, dir))) {
    const src = fs.readFileSync(file, 'utf8');
    const from = packageOf(file);
    const next = src.replace(IMPORT_RE, (whole, lead, quote, spec) => {
      const target = path.resolve(path.dirname(file), spec);
      const to = packageOf(target);
      if (to === from || !packages.has(to)) return whole;
      const named = specifierFor(to, target);
      if (!named) {
        process.stderr.write(`${path.relative(root, file)}: ${spec} is not exported by ${packages.get(to).name}: left as it is\n`);
        return whole;
      }
      return `${lead}${quote}${named}${quote}`;
    });
    if (next !== src) {
      fs.writeFileSync(file, next);
      changed.push(path.relative(root, file));
    }
  }
}
if (changed.length) execFileSync('npx', ['prettier', '--write', '--log-level', 'warn', ...changed], { cwd: root, stdio: 'inherit' });
process.stdout.write(`${changed.length} file(s) now import through package names\n`);
