/**
 * `platform render`: the complete deployment of one overlay as objects.
 * Refreshes infra/base/generated/ from the code, builds the overlay with
 * `kubectl kustomize` (kustomize is the one way the tree is assembled, so
 * what an operator sees with kubectl is what gets applied), then stamps the
 * image tag and config hashes.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { repoRoot } from '../config.ts';
import { generate, infraDir, writeGenerated } from './generated.ts';
import { DEFAULT_TAG } from './knative-services.ts';
import { parseObjects, type KubeObject } from './objects.ts';

export type RenderOptions = {
  overlay?: string;
  /** The infra/ tree to use (tests pass a copy); default the repo's. */
  dir?: string;
  /** Image tag for the platform's images (functions, portal). */
  tag?: string;
  /** Registry of the platform's images; default the root func.yaml `registry`. */
  registry?: string;
};

export type Rendered = { objects: KubeObject[]; changedGenerated: string[]; warnings: string[] };

/** kubectl to run: $KUBECTL or `kubectl` on PATH; undefined when absent. */
export function findKubectl(): string | undefined {
  const bin = process.env.KUBECTL ?? 'kubectl';
  const r = spawnSync(bin, ['version', '--client'], { encoding: 'utf8' });
  return r.error ? undefined : bin;
}

/** `kubectl kustomize <dir>` → objects (stderr warnings returned, not printed). */
export function kustomize(dir: string): { objects: KubeObject[]; warnings: string[] } {
  const bin = findKubectl();
  if (!bin) throw new Error('kubectl not found: install it (Debian: apt-get install kubernetes-client) or set KUBECTL');
  const r = spawnSync(bin, ['kustomize', dir], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`kubectl kustomize ${path.relative(repoRoot, dir) || dir} failed:\n${r.stderr}`);
  const warnings = r.stderr.split('\n').filter((l) => l.trim());
  return { objects: parseObjects(r.stdout), warnings };
}

function rootRegistry(): string {
  const root = YAML.parse(fs.readFileSync(path.join(repoRoot, 'func.yaml'), 'utf8')) as { registry?: string };
  if (!root.registry) throw new Error('func.yaml at the repository root has no registry');
  return root.registry;
}

/** Visits every container list (pods, pod templates, CronJob and Knative templates). */
function eachContainer(node: unknown, fn: (c: Record<string, unknown>) => void): void {
  if (Array.isArray(node)) return node.forEach((n) => eachContainer(n, fn));
  if (!node || typeof node !== 'object') return;
  for (const [k, v] of Object.entries(node)) {
    if ((k === 'containers' || k === 'initContainers') && Array.isArray(v)) v.forEach((c) => c && typeof c === 'object' && fn(c));
    else eachContainer(v, fn);
  }
}

/** Points the platform's own images (`<root registry>/<x>:latest`) at `registry` and `tag`. */
export function setImages(objects: KubeObject[], tag: string, registry: string, from = rootRegistry()): void {
  const re = new RegExp(`^${from.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/([a-z0-9-]+):${DEFAULT_TAG}$`);
  for (const o of objects) {
    eachContainer(o, (c) => {
      const m = typeof c.image === 'string' ? re.exec(c.image) : null;
      if (m) c.image = `${registry}/${m[1]}:${tag}`;
    });
  }
}

/**
 * For each object annotated `saasodoo.io/config-hash-of: <configmap,...>`,
 * puts a hash of those ConfigMaps' data on its pod template, so a changed
 * config rolls the pods (or, for a Job, makes `platform deploy` run it again).
 */
export function stampConfigHashes(objects: KubeObject[]): void {
  for (const o of objects) {
    const names = o.metadata.annotations?.['saasodoo.io/config-hash-of'];
    if (!names) continue;
    const h = createHash('sha256');
    for (const n of names.split(',').map((s) => s.trim())) {
      const cm = objects.find((x) => x.kind === 'ConfigMap' && x.metadata.name === n && x.metadata.namespace === o.metadata.namespace);
      if (!cm) throw new Error(`${o.kind} ${o.metadata.name}: config-hash-of names ConfigMap ${n}, which is not rendered`);
      h.update(JSON.stringify(cm.data ?? {}));
    }
    const tpl = ((o.spec as any).template ??= {});
    tpl.metadata ??= {};
    tpl.metadata.annotations = { ...(tpl.metadata.annotations ?? {}), 'saasodoo.io/config-hash': h.digest('hex').slice(0, 16) };
  }
}

/** Renders an overlay; writes the generated folder into `dir` first. */
export async function render(o: RenderOptions = {}): Promise<Rendered> {
  const overlay = o.overlay ?? 'production';
  const dir = o.dir ?? infraDir;
  const overlayDir = path.join(dir, 'overlays', overlay);
  if (!fs.existsSync(path.join(overlayDir, 'kustomization.yaml'))) {
    const known = fs.existsSync(path.join(dir, 'overlays')) ? fs.readdirSync(path.join(dir, 'overlays')).join(', ') : 'none';
    throw new Error(`No overlay "${overlay}" (known: ${known})`);
  }
  const changedGenerated = writeGenerated(await generate(), dir);
  const { objects, warnings } = kustomize(overlayDir);
  setImages(objects, o.tag ?? DEFAULT_TAG, o.registry ?? rootRegistry());
  stampConfigHashes(objects);
  return { objects, changedGenerated, warnings: warnings.filter((w) => !/deprecated/.test(w)) };
}
