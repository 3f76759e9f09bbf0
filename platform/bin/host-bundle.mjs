/**
 * The host (the `platform` CLI, so `npm start` too) runs from an esbuild
 * bundle instead of under the tsx TypeScript loader: loading the host's
 * module graph through tsx costs one to five seconds per start (more on a
 * busy machine), a bundle loads in a fraction of that. This file is plain
 * JavaScript so the launcher (platform/bin/platform.js) can check and build
 * the bundle before any TypeScript can be loaded.
 *
 * Bundles live in node_modules/.cache/saasodoo-host (so external packages
 * resolve from the repository's node_modules) and are never stale: each has
 * a manifest with the hash of every source file it was built from, the Node
 * version and the package-lock hash; any difference rebuilds it (one
 * esbuild pass, about a second), so an edit is live on the next start.
 * `import.meta.url` keeps naming the source file, so repoRoot and files read
 * at run time (migrations, triggers.yaml, catalogs) are the repository's.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const cacheDir = path.join(repoRoot, 'node_modules/.cache/saasodoo-host');

/** Bump when the build options below change, so older bundles count as stale. */
const FORMAT = 2;

/**
 * Packages left out of bundles: the function runtime, native addons and
 * optional native accelerators (as platform/src/deploy/build.ts), plus the
 * build tools the host runs (esbuild spawns its own binary; vite builds the
 * portal), which must load from node_modules as installed.
 */
const EXTERNAL = ['faas-js-runtime', '@node-rs/argon2', 'pg-native', 'bufferutil', 'utf-8-validate', 'cpu-features', 'ssh2', 'esbuild', 'vite', 'tsx', 'playwright-core'];

const sha1 = (data) => createHash('sha1').update(data).digest('hex');

function fileHash(rel) {
  try {
    return sha1(fs.readFileSync(path.join(repoRoot, rel)));
  } catch {
    return undefined;
  }
}

/**
 * Gives every source file of ours its own file URL as `import.meta.url`
 * (esbuild's define, applied per file, so strings that merely contain the
 * words are left alone). (host/bundles.ts does the same for function bundles).
 */
function sourceUrlPlugin(esbuild) {
  return {
    name: 'source-import-meta-url',
    setup(build) {
      build.onLoad({ filter: /\.(ts|mjs)$/ }, async (args) => {
        if (args.path.includes(`${path.sep}node_modules${path.sep}`)) return undefined;
        const source = await fs.promises.readFile(args.path, 'utf8');
        const loader = args.path.endsWith('.ts') ? 'ts' : 'js';
        if (!source.includes('import.meta.url')) return { contents: source, loader };
        const out = await esbuild.transform(source, {
          loader,
          format: 'esm',
          target: 'node20',
          sourcefile: args.path,
          define: { 'import.meta.url': JSON.stringify(pathToFileURL(args.path).href) },
        });
        return { contents: out.code, loader: 'js' };
      });
    },
  };
}

function readManifest(name) {
  try {
    return JSON.parse(fs.readFileSync(path.join(cacheDir, `${name}.json`), 'utf8'));
  } catch {
    return undefined;
  }
}

function stamp(entry) {
  return { format: FORMAT, entry, node: process.version, lock: fileHash('package-lock.json') ?? '' };
}

function isFresh(m, entry) {
  if (!m || !fs.existsSync(path.join(cacheDir, m.file))) return false;
  const s = stamp(entry);
  if (Object.entries(s).some(([k, v]) => m[k] !== v)) return false;
  return Object.entries(m.inputs).every(([f, h]) => fileHash(f) === h);
}

async function build(name, entry) {
  const esbuild = await import('esbuild');
  fs.mkdirSync(cacheDir, { recursive: true });
  const tmp = path.join(cacheDir, `.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    const result = await esbuild.build({
      entryPoints: { [name]: path.join(repoRoot, entry) },
      absWorkingDir: repoRoot,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      outdir: tmp,
      outExtension: { '.js': '.mjs' },
      external: EXTERNAL,
      // CommonJS packages inside an ESM bundle still call require().
      banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
      metafile: true,
      // As function bundles (host/bundles.ts): V8 keeps the source in the heap; names stay for stack traces.
      minifyWhitespace: true,
      minifySyntax: true,
      legalComments: 'none',
      logLevel: 'silent',
      plugins: [sourceUrlPlugin(esbuild)],
    });
    const [out, meta] = Object.entries(result.metafile.outputs).find(([o]) => o.endsWith('.mjs'));
    const inputs = Object.keys(meta.inputs)
      .filter((f) => !f.includes('node_modules/'))
      .map((f) => path.relative(repoRoot, path.resolve(repoRoot, f)).split(path.sep).join('/'))
      .filter((f) => !f.startsWith('..'));
    const code = fs.readFileSync(path.join(repoRoot, out));
    const file = `${name}.${sha1(code).slice(0, 12)}.mjs`;
    // Renames are atomic: a concurrent start sees the old bundle or the new one, never half of one.
    fs.renameSync(path.join(repoRoot, out), path.join(cacheDir, file));
    const manifest = { ...stamp(entry), file, inputs: Object.fromEntries(inputs.map((f) => [f, fileHash(f) ?? ''])) };
    fs.writeFileSync(path.join(tmp, 'm.json'), JSON.stringify(manifest));
    fs.renameSync(path.join(tmp, 'm.json'), path.join(cacheDir, `${name}.json`));
    removeOld(name, file);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
    await esbuild.stop();
  }
}

/** Bundles of `name` replaced more than an hour ago (no start can still be about to load them). */
function removeOld(name, keep) {
  const mine = new RegExp(`^${name}\\.[0-9a-f]{12}\\.mjs$`);
  for (const f of fs.readdirSync(cacheDir)) {
    if (f === keep || !mine.test(f)) continue;
    const p = path.join(cacheDir, f);
    if (Date.now() - fs.statSync(p).mtimeMs > 3_600_000) fs.rmSync(p, { force: true });
  }
}

/**
 * The path of the current bundle of `entry` (repo-relative), named `name`,
 * rebuilding it first when any file it was built from changed.
 */
export async function hostBundle(name, entry) {
  if (!isFresh(readManifest(name), entry)) await build(name, entry);
  return path.join(cacheDir, readManifest(name).file);
}
