/**
 * `platform build --image [--push]`: each function bundle becomes an OCI
 * image with Docker (the Engine API through dockerode), tagged
 * `REGISTRY/<name>:<tag>` as the rendered Knative Services expect. The
 * generated Dockerfile only copies: the bundle already holds its external
 * packages (vendor.ts), so the base image needs nothing but `node`, and the
 * build needs no registry but the base image's.
 */
import fs from 'node:fs';
import path from 'node:path';
import type Docker from 'dockerode';
import { functionSpec } from '../funcspec.ts';
import { DEFAULT_TAG, functionImage } from './knative-services.ts';
import type { BuiltFunction } from './build.ts';
import { vendorPackages } from './vendor.ts';

/** The official slim image of the Node line this platform runs and tests the functions on. */
export const DEFAULT_NODE_IMAGE = `node:${process.versions.node.split('.')[0]}-slim`;
/** The official node images' unprivileged `node` user, numeric so Kubernetes can check runAsNonRoot. */
export const FUNCTION_UID = 1000;

/** The Dockerfile of a function image (files owned by root: the function cannot rewrite its own code). */
export function functionDockerfile(nodeImage: string): string {
  return [`FROM ${nodeImage}`, 'WORKDIR /app', 'COPY . /app/', 'ENV NODE_ENV=production PORT=8080', `USER ${FUNCTION_UID}:${FUNCTION_UID}`, 'EXPOSE 8080', 'CMD ["node", "index.js"]', ''].join('\n');
}

export type ImageOptions = {
  docker: Docker;
  /** Base image (NODE_IMAGE); default DEFAULT_NODE_IMAGE. */
  nodeImage?: string;
  tag?: string;
  /** Overrides the registry of func.yaml. */
  registry?: string;
};

/** Follows a build or push stream to its end; rejects with the engine's error message. */
function follow(docker: Docker, stream: NodeJS.ReadableStream): Promise<void> {
  return new Promise((resolve, reject) => {
    docker.modem.followProgress(stream, (err: Error | null, res: { error?: string; errorDetail?: { message?: string } }[]) => {
      const failed = res?.find((r) => r.error || r.errorDetail);
      if (err || failed) reject(new Error(err?.message ?? failed?.errorDetail?.message ?? failed?.error));
      else resolve();
    });
  });
}

/** The image reference of a function: func.yaml `image`, else `REGISTRY/<name>:<tag>`. */
export function imageRef(name: string, o: { tag?: string; registry?: string }): string {
  const spec = functionSpec(name);
  return functionImage(o.registry ? { ...spec, image: undefined, registry: o.registry } : spec, o.tag ?? DEFAULT_TAG);
}

/** Vendors the bundle's external packages, writes its Dockerfile and builds it; returns the image reference. */
export async function buildFunctionImage(built: BuiltFunction, o: ImageOptions): Promise<string> {
  vendorPackages(built.dir, Object.keys(built.dependencies));
  fs.writeFileSync(path.join(built.dir, 'Dockerfile'), functionDockerfile(o.nodeImage ?? DEFAULT_NODE_IMAGE));
  const ref = imageRef(built.name, o);
  const stream = await o.docker.buildImage({ context: built.dir, src: fs.readdirSync(built.dir) }, { t: ref, rm: true, forcerm: true });
  await follow(o.docker, stream);
  return ref;
}

/** Pushes an image; credentials (REGISTRY_USERNAME / REGISTRY_PASSWORD) go to the engine, never on a command line. */
export async function pushImage(docker: Docker, ref: string, auth?: { username: string; password: string }): Promise<void> {
  const at = ref.lastIndexOf(':') > ref.lastIndexOf('/') ? ref.lastIndexOf(':') : -1;
  const [repo, tag] = at >= 0 ? [ref.slice(0, at), ref.slice(at + 1)] : [ref, 'latest'];
  const registry = repo.includes('/') && /[.:]|^localhost$/.test(repo.split('/')[0]) ? repo.split('/')[0] : 'docker.io';
  // The engine wants an X-Registry-Auth header even for a registry without credentials ({}).
  const stream = await docker.getImage(repo).push({ tag, authconfig: auth ? { ...auth, serveraddress: registry } : {} });
  await follow(docker, stream);
}
