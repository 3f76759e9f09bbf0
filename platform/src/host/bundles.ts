/**
 * The local host runs every function from an esbuild bundle, bundled the way
 * `platform build` bundles it (deploy/build.ts: everything but the runtime and
 * native packages inside), instead of under the tsx TypeScript loader: a
 * function process then needs neither a loader thread nor esbuild service
 * processes, which roughly halves its memory and its start time.
 *
 * Bundles live in node_modules/.cache/saasodoo-functions (so the external
 * packages resolve from the repository's node_modules) and are never stale:
 * each carries a manifest of the content hash of every source file it was
 * built from plus a key of what else shapes it (package-lock.json, Node and
 * esbuild versions, the entry). Before a function starts, the manifest is
 * checked against the files on disk and every stale bundle is rebuilt in one
 * esbuild pass, so an edit is live on the next start and tests always run
 * the current source. Unlike `platform build`, `import.meta.url` keeps
 * pointing at the source file, so repoRoot and the files modules read at run
 * time (triggers.yaml, the Kill Bill catalog) are the repository's own.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';
import { repoRoot } from '../config.ts';
import { analyzeFunctions, functionEntry } from '../deploy/analyze.ts';
import { EXTERNAL_PACKAGES } from '../deploy/build.ts';
import { log } from '../log.ts';

export const bundleDir = path.join(repoRoot, 'node_modules/.cache/saasodoo-functions');

/** Bump when the bundle options below change, so older bundles count as stale. */
const FORMAT = 5;
const RUNNER = path.join(repoRoot, 'platform/src/host/run-function.ts');
const ENTRY_NS = 'saasodoo-function-entry';

type Manifest = {
  key: string;
  /** The bundle file, beside the manifest. */
  file: string;
  /** Repo-relative source file → sha1 of its content (node_modules is covered by the key). */
  inputs: Record<string, string>;
  /** Secret env names the function's code uses (deploy/analyze.ts), so a start needs no analysis pass. */
  secrets: string[];
};

export type FunctionBundle = { file: string; secrets: string[] };

const sha1 = (data: string | Buffer) => createHash('sha1').update(data).digest('hex');

function fileHash(rel: string): string | undefined {
  try {
    return sha1(fs.readFileSync(path.join(repoRoot, rel)));
  } catch {
    return undefined;
  }
}

function entrySource(name: string): string {
  return [
    `import fn from ${JSON.stringify(functionEntry(name))};`,
    `import { serveFunctionProcess } from ${JSON.stringify(RUNNER)};`,
    `serveFunctionProcess(fn).catch((err) => {`,
    `  process.stderr.write('function failed to start: ' + (err?.stack ?? err) + '\\n');`,
    `  process.exit(1);`,
    `});`,
  ].join('\n');
}

let lockHash: string | undefined;

/** Everything besides our source files that shapes a bundle. */
function keyOf(name: string): string {
  lockHash ??= fileHash('package-lock.json') ?? '';
  return sha1(JSON.stringify({ FORMAT, node: process.version, esbuild: esbuild.version, lockHash, entry: entrySource(name) }));
}

function readManifest(name: string): Manifest | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(bundleDir, `${name}.json`), 'utf8')) as Manifest;
  } catch {
    return undefined;
  }
}

function isFresh(name: string, m: Manifest | undefined, hashes: Map<string, string | undefined>): m is Manifest {
  if (!m || m.key !== keyOf(name) || !fs.existsSync(path.join(bundleDir, m.file))) return false;
  return Object.entries(m.inputs).every(([f, h]) => {
    if (!hashes.has(f)) hashes.set(f, fileHash(f));
    return hashes.get(f) === h;
  });
}

/** Entries are virtual modules; our sources keep their own file URL as import.meta.url. */
export const sourceUrlPlugin: esbuild.Plugin = {
  name: 'local-function-bundle',
  setup(build) {
    build.onResolve({ filter: /^saasodoo-function-entry:/ }, (args) => ({ path: args.path.slice(ENTRY_NS.length + 1), namespace: ENTRY_NS }));
    build.onLoad({ filter: /.*/, namespace: ENTRY_NS }, (args) => ({ contents: entrySource(args.path), loader: 'ts', resolveDir: repoRoot }));
    build.onLoad({ filter: /\.ts$/ }, async (args) => {
      if (args.path.includes(`${path.sep}node_modules${path.sep}`)) return undefined;
      const source = await fs.promises.readFile(args.path, 'utf8');
      if (!source.includes('import.meta.url')) return { contents: source, loader: 'ts' };
      // A define, not a text replace: strings that merely contain the words (this file's own) stay as written.
      const define = { 'import.meta.url': JSON.stringify(pathToFileURL(args.path).href) };
      const out = await esbuild.transform(source, { loader: 'ts', format: 'esm', target: 'node20', sourcefile: args.path, define });
      return { contents: out.code, loader: 'js' };
    });
  },
};

/** Bundles `names` in one esbuild pass and writes their manifests. */
async function build(names: string[]): Promise<void> {
  const t0 = performance.now();
  fs.mkdirSync(bundleDir, { recursive: true });
  const tmp = path.join(bundleDir, `.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    const result = await esbuild.build({
      entryPoints: Object.fromEntries(names.map((n) => [n, `${ENTRY_NS}:${n}`])),
      absWorkingDir: repoRoot,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      outdir: tmp,
      outExtension: { '.js': '.mjs' },
      external: EXTERNAL_PACKAGES,
      // CommonJS packages inside an ESM bundle still call require().
      banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
      metafile: true,
      // V8 keeps every function process's source in its heap: whitespace and syntax minified is 30-35% less
      // (4-8 MB per process); names stay, so stack traces still name the function.
      minifyWhitespace: true,
      minifySyntax: true,
      legalComments: 'none',
      logLevel: 'silent',
      plugins: [sourceUrlPlugin],
    });
    // What the code uses is read exactly as the Kubernetes generator reads it, once per rebuild.
    const needs = await analyzeFunctions(names);
    for (const [out, meta] of Object.entries(result.metafile!.outputs)) {
      const name = path.basename(out, '.mjs');
      if (!names.includes(name)) continue;
      const files = Object.keys(meta.inputs)
        .filter((f) => !f.startsWith(`${ENTRY_NS}:`) && !f.includes('node_modules/'))
        .map((f) => path.relative(repoRoot, path.resolve(repoRoot, f)).split(path.sep).join('/'))
        .filter((f) => !f.startsWith('..'));
      const code = fs.readFileSync(path.join(repoRoot, out));
      const file = `${name}.${sha1(code).slice(0, 12)}.mjs`;
      // Rename is atomic: a concurrent start (another test file) sees the old bundle or the new one, never half.
      fs.renameSync(path.join(repoRoot, out), path.join(bundleDir, file));
      const manifest: Manifest = {
        key: keyOf(name),
        file,
        inputs: Object.fromEntries(files.map((f) => [f, fileHash(f) ?? ''])),
        secrets: needs[name]!.secrets.map((s) => s.env),
      };
      const m = path.join(tmp, `${name}.json`);
      fs.writeFileSync(m, JSON.stringify(manifest));
      fs.renameSync(m, path.join(bundleDir, `${name}.json`));
      removeOldBundles(name, file);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
    // esbuild's service process keeps the heap of the build (hundreds of MB for every function): end it; the next call starts another.
    await esbuild.stop();
  }
  log.info({ functions: names.length, ms: Math.round(performance.now() - t0) }, 'bundled functions');
}

/** Bundles replaced more than an hour ago (no start can still be about to run them). */
function removeOldBundles(name: string, keep: string): void {
  const mine = new RegExp(`^${name}\\.[0-9a-f]{12}\\.mjs$`);
  for (const f of fs.readdirSync(bundleDir)) {
    if (f === keep || !mine.test(f)) continue;
    const p = path.join(bundleDir, f);
    if (Date.now() - fs.statSync(p).mtimeMs > 3_600_000) fs.rmSync(p, { force: true });
  }
}

/**
 * The current bundle of each named function, rebuilding (in one pass) those
 * whose sources or dependencies changed since they were bundled.
 */
export async function functionBundles(names: string[]): Promise<Record<string, FunctionBundle>> {
  const hashes = new Map<string, string | undefined>();
  lockHash = undefined; // read once per check: an `npm install` while the host runs is seen on the next start
  const stale = names.filter((n) => !isFresh(n, readManifest(n), hashes));
  if (stale.length) await build(stale);
  return Object.fromEntries(
    names.map((n) => {
      const m = readManifest(n);
      if (!m) throw new Error(`no bundle for function ${n}`);
      return [n, { file: path.join(bundleDir, m.file), secrets: m.secrets }];
    }),
  );
}
