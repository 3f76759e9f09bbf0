/** `platform build | render | deploy`: production bundles and the Kubernetes deployment. */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { deploy } from '../deploy/apply.ts';
import { buildFunctions, distDir } from '../deploy/build.ts';
import { buildFunctionImage, DEFAULT_NODE_IMAGE, pushImage } from '../deploy/image.ts';
import { toYaml, type KubeObject } from '../deploy/objects.ts';
import { render } from '../deploy/render.ts';
import { validateObjects } from '../deploy/validate.ts';

type RenderFlags = { overlay: string; tag?: string; registry?: string };

function tagOf(o: { tag?: string }): string | undefined {
  return o.tag ?? process.env.IMAGE_TAG;
}

/** Renders and validates; exits 1 on an invalid object. */
async function renderChecked(o: RenderFlags): Promise<KubeObject[]> {
  const r = await render({ overlay: o.overlay, tag: tagOf(o), registry: o.registry });
  if (r.changedGenerated.length) process.stderr.write(`updated infra/base/generated/: ${r.changedGenerated.join(', ')}\n`);
  for (const w of r.warnings) process.stderr.write(`${w}\n`);
  const v = await validateObjects(r.objects);
  const kinds = new Map<string, { n: number; reason: string }>();
  for (const u of v.unchecked) {
    const k = u.id.split(' ')[0]!;
    kinds.set(k, { n: (kinds.get(k)?.n ?? 0) + 1, reason: u.reason });
  }
  for (const [k, { n, reason }] of kinds) process.stderr.write(`not schema-checked: ${n} × ${k} (${reason})\n`);
  if (v.errors.length) {
    process.stderr.write(`invalid objects:\n  ${v.errors.map((e) => `${e.id}: ${e.message}`).join('\n  ')}\n`);
    process.exit(1);
  }
  return r.objects;
}

export function registerDeploy(program: Command): void {
  program
    .command('jwt-public-key')
    .description('print the public JWK of the signing key (JWT_PRIVATE_KEY, JWT_KID or the local key), for JWT_PUBLIC_KEYS')
    .action(async () => {
      const { currentPublicJwk } = await import('../auth/signing.ts');
      process.stdout.write(`${JSON.stringify(await currentPublicJwk())}\n`);
    });

  program
    .command('build [functions...]')
    .description('bundle functions (esbuild) into dist/functions/<name>/ for func build or a Node buildpack')
    .option('--tag <tag>', 'image tag written to each func.yaml (default $IMAGE_TAG or latest)')
    .option('--out <dir>', 'output folder', distDir)
    .option('--minify', 'minify the bundles')
    .option('--image', 'also build each bundle into an image REGISTRY/<name>:<tag> with Docker (DOCKER_HOST)')
    .option('--push', 'build the images (implies --image) and push them (credentials: REGISTRY_USERNAME, REGISTRY_PASSWORD)')
    .option('--registry <registry>', 'image registry (default: registry in the root func.yaml)')
    .option('--node-image <image>', `base image (default $NODE_IMAGE or ${DEFAULT_NODE_IMAGE})`)
    .action(async (names: string[], o: { tag?: string; out: string; minify?: boolean; image?: boolean; push?: boolean; registry?: string; nodeImage?: string }) => {
      const built = await buildFunctions({ names, outDir: path.resolve(o.out), tag: tagOf(o), minify: o.minify });
      for (const b of built) {
        const deps = Object.entries(b.dependencies)
          .map(([k, v]) => `${k}@${v}`)
          .join(', ');
        process.stdout.write(`${b.name.padEnd(20)} ${(b.bytes / 1024).toFixed(0).padStart(6)} KiB  ${path.relative(process.cwd(), b.dir)}  (${deps})\n`);
      }
      if (!o.image && !o.push) return;
      const { dockerFromHost } = await import('../runtime/docker/driver.ts');
      const docker = dockerFromHost(process.env.DOCKER_HOST);
      const nodeImage = o.nodeImage ?? process.env.NODE_IMAGE ?? DEFAULT_NODE_IMAGE;
      const { REGISTRY_USERNAME: username, REGISTRY_PASSWORD: password } = process.env;
      for (const b of built) {
        const ref = await buildFunctionImage(b, { docker, nodeImage, tag: tagOf(o), registry: o.registry });
        process.stdout.write(`image ${ref}\n`);
        if (o.push) {
          await pushImage(docker, ref, username && password ? { username, password } : undefined);
          process.stdout.write(`pushed ${ref}\n`);
        }
      }
    });

  program
    .command('render')
    .description('write every Kubernetes object of an overlay (refreshes infra/base/generated/)')
    .option('--overlay <name>', 'kustomize overlay under infra/overlays', 'production')
    .option('--tag <tag>', 'image tag of the platform images (default $IMAGE_TAG or latest)')
    .option('--registry <registry>', 'image registry (default: registry in the root func.yaml)')
    .option('--out <dir>', 'write one file per object into this folder instead of stdout')
    .action(async (o: RenderFlags & { out?: string }) => {
      const objects = await renderChecked(o);
      if (!o.out) {
        process.stdout.write(toYaml(objects));
        return;
      }
      fs.mkdirSync(o.out, { recursive: true });
      for (const [i, obj] of objects.entries()) {
        const file = `${String(i).padStart(3, '0')}-${obj.kind.toLowerCase()}-${obj.metadata.namespace ?? 'cluster'}-${obj.metadata.name}.yaml`;
        fs.writeFileSync(path.join(o.out, file), toYaml([obj]));
      }
      process.stderr.write(`wrote ${objects.length} objects to ${o.out}\n`);
    });

  program
    .command('deploy')
    .description('render, validate and apply to the cluster of the current kubeconfig (server-side apply), then wait until ready')
    .option('--overlay <name>', 'kustomize overlay under infra/overlays', 'production')
    .option('--tag <tag>', 'image tag of the platform images (default $IMAGE_TAG or latest)')
    .option('--registry <registry>', 'image registry (default: registry in the root func.yaml)')
    .option('--dry-run', 'read the cluster and show what would change; write nothing')
    .option('--diff', 'show field-level differences')
    .option('--no-wait', 'do not wait for readiness')
    .option('--timeout <seconds>', 'readiness timeout', '900')
    .action(async (o: RenderFlags & { dryRun?: boolean; diff?: boolean; wait: boolean; timeout: string }) => {
      if (!tagOf(o) && !o.dryRun) process.stderr.write('warning: no --tag or IMAGE_TAG: deploying images tagged latest\n');
      const objects = await renderChecked(o);
      process.stdout.write(`${objects.length} objects for overlay ${o.overlay}\n`);
      const r = await deploy(objects, { dryRun: o.dryRun, diff: o.diff, wait: o.wait, timeoutSeconds: Number(o.timeout) });
      if (!o.dryRun && o.wait && !r.ready) {
        process.stderr.write(`deployed, but not ready: ${r.notReady.length} objects (see above)\n`);
        process.exit(1);
      }
      if (o.dryRun) process.stdout.write(`${r.changes.filter((c) => c.action !== 'unchanged').map((c) => `${c.action} ${c.id}`).length ? '' : 'nothing to change\n'}`);
    });
}
