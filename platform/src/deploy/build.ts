/**
 * `platform build`: one self-contained folder per function in
 * dist/functions/<name>/ (index.js, package.json, func.yaml) that Knative's
 * `func build` or a Node buildpack turns into REGISTRY/<name>:<tag>.
 *
 * esbuild bundles the function with everything it uses from platform/ and
 * events/ and every pure-JS npm package; only faas-js-runtime (the runtime
 * that serves it) and native packages stay external, listed in package.json
 * with the versions installed here. The entry starts the function the way
 * platform/src/host/run-function.ts does (startFunction: faas-js-runtime plus
 * the reserved-query guard) when run as `node index.js`, and also exports the
 * faas Function object so `faas-js-runtime ./index.js` works too.
 */
import fs from 'node:fs';
import { createRequire, isBuiltin } from 'node:module';
import path from 'node:path';
import * as esbuild from 'esbuild';
import YAML from 'yaml';
import { repoRoot } from '../config.ts';
import { functionNames, functionSpec } from '../funcspec.ts';
import { functionEntry, packageName } from './analyze.ts';
import { DEFAULT_TAG, functionImage } from './knative-services.ts';

export const distDir = path.join(repoRoot, 'dist/functions');

/**
 * Packages left out of the bundle: the runtime, native addons (binaries
 * cannot be bundled) and optional native accelerators other packages probe
 * for with require() inside try/catch.
 */
export const EXTERNAL_PACKAGES = ['faas-js-runtime', '@node-rs/argon2', 'pg-native', 'bufferutil', 'utf-8-validate', 'cpu-features', 'ssh2'];

/** Files some modules read at run time relative to the repository root; copied into bundles that include the module. */
const RUNTIME_ASSETS: Record<string, string[]> = {
  'events/triggers.ts': ['events/triggers.yaml'],
  'platform/src/billing/catalog.ts': ['infra/killbill/catalog.xml', 'infra/killbill/overdue.xml'],
  'platform/src/db/migrate.ts': ['platform/migrations'],
};

export type BuildOptions = { names?: string[]; outDir?: string; tag?: string; minify?: boolean };
export type BuiltFunction = { name: string; dir: string; dependencies: Record<string, string>; bytes: number };

const requireHere = createRequire(import.meta.url);

function installedVersion(pkg: string): string | undefined {
  try {
    return (requireHere(`${pkg}/package.json`) as { version: string }).version;
  } catch {
    // Some packages do not export package.json: find it beside the entry.
    try {
      let dir = path.dirname(requireHere.resolve(pkg));
      while (dir !== path.dirname(dir)) {
        const f = path.join(dir, 'package.json');
        if (fs.existsSync(f)) {
          const p = JSON.parse(fs.readFileSync(f, 'utf8')) as { name?: string; version?: string };
          if (p.name === pkg) return p.version;
        }
        dir = path.dirname(dir);
      }
    } catch {
      /* not installed */
    }
    return undefined;
  }
}

/**
 * Rewrites `import.meta.url` in our own sources to the URL the file would
 * have inside the bundle folder (which mirrors the repository layout), so
 * `repoRoot` and other file-relative paths resolve inside the bundle.
 */
const relocateImportMeta: esbuild.Plugin = {
  name: 'relocate-import-meta',
  setup(build) {
    build.onLoad({ filter: /\.ts$/ }, async (args) => {
      if (args.path.includes(`${path.sep}node_modules${path.sep}`)) return undefined;
      const rel = path.relative(repoRoot, args.path).split(path.sep).join('/');
      if (rel.startsWith('..')) return undefined;
      const source = await fs.promises.readFile(args.path, 'utf8');
      if (!source.includes('import.meta.url')) return { contents: source, loader: 'ts' };
      return { contents: source.replaceAll('import.meta.url', `new URL(${JSON.stringify(`./${rel}`)}, import.meta.url).href`), loader: 'ts' };
    });
  },
};

/** The bundle entry: export the function, start it when run directly. */
function entrySource(name: string): string {
  const fn = functionEntry(name).split(path.sep).join('/');
  const runner = path.join(repoRoot, 'platform/src/host/run-function.ts').split(path.sep).join('/');
  return [
    `import fn from ${JSON.stringify(fn)};`,
    `import { startFunction } from ${JSON.stringify(runner)};`,
    `import { pathToFileURL } from 'node:url';`,
    `export default fn;`,
    `export const { handle, init, shutdown, liveness, readiness } = fn;`,
    `if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {`,
    `  process.env.FUNCTION_NAME ??= ${JSON.stringify(name)};`,
    `  startFunction(fn, Number(process.env.PORT ?? 8080)).catch((err) => {`,
    `    process.stderr.write('function failed to start: ' + (err?.stack ?? err) + '\\n');`,
    `    process.exit(1);`,
    `  });`,
    `}`,
  ].join('\n');
}

/** Bundles one function into `outDir/<name>`. */
export async function buildFunction(name: string, o: BuildOptions = {}): Promise<BuiltFunction> {
  const dir = path.join(o.outDir ?? distDir, name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const result = await esbuild.build({
    stdin: { contents: entrySource(name), resolveDir: repoRoot, sourcefile: `${name}-entry.ts`, loader: 'ts' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile: path.join(dir, 'index.js'),
    external: EXTERNAL_PACKAGES,
    // CommonJS packages inside an ESM bundle still call require().
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
    metafile: true,
    minify: o.minify ?? false,
    legalComments: 'none',
    logLevel: 'silent',
    plugins: [relocateImportMeta],
  });
  const meta = result.metafile!;
  const inputs = Object.keys(meta.inputs).map((f) => path.relative(repoRoot, path.resolve(repoRoot, f)).split(path.sep).join('/'));
  const externals = new Set<string>(['faas-js-runtime']);
  for (const out of Object.values(meta.outputs)) for (const imp of out.imports) if (imp.external && !isBuiltin(imp.path.replace(/\/$/, ''))) externals.add(packageName(imp.path));
  const dependencies: Record<string, string> = {};
  for (const pkg of [...externals].sort()) {
    const v = installedVersion(pkg);
    if (v) dependencies[pkg] = v; // absent optional probes (pg-native) stay out
  }
  // Relocated modules may stat their own folder (run-function.ts points faas-js-runtime's config there): create it.
  for (const f of inputs) {
    if (f.startsWith('..') || f.includes('node_modules/') || !f.endsWith('.ts') || !fs.existsSync(path.join(repoRoot, f))) continue;
    if (fs.readFileSync(path.join(repoRoot, f), 'utf8').includes('import.meta.url')) fs.mkdirSync(path.join(dir, path.dirname(f)), { recursive: true });
  }
  for (const [mod, assets] of Object.entries(RUNTIME_ASSETS)) {
    if (!inputs.includes(mod)) continue;
    for (const a of assets) {
      const src = path.join(repoRoot, a);
      if (fs.existsSync(src)) fs.cpSync(src, path.join(dir, a), { recursive: true });
    }
  }
  const spec = functionSpec(name);
  const tag = o.tag ?? DEFAULT_TAG;
  const pkg = {
    name: `saasodoo-fn-${name}`,
    version: '1.0.0',
    private: true,
    type: 'module',
    main: 'index.js',
    engines: { node: '>=20.19' },
    scripts: { start: 'node index.js' },
    dependencies,
  };
  fs.writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
  const { image: _image, ...rest } = spec;
  fs.writeFileSync(path.join(dir, 'func.yaml'), YAML.stringify({ ...rest, image: functionImage(spec, tag) }));
  return { name, dir, dependencies, bytes: fs.statSync(path.join(dir, 'index.js')).size };
}

/** Bundles the named functions (default all), in sequence to keep memory flat. */
export async function buildFunctions(o: BuildOptions = {}): Promise<BuiltFunction[]> {
  const names = o.names?.length ? o.names : functionNames();
  const known = new Set(functionNames());
  const unknown = names.filter((n) => !known.has(n));
  if (unknown.length) throw new Error(`No such function: ${unknown.join(', ')} (known: ${[...known].join(', ')})`);
  const built: BuiltFunction[] = [];
  for (const n of names) built.push(await buildFunction(n, o));
  return built;
}
