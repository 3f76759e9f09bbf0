/**
 * `platform build --image` and `--push` with the real Docker engine: a
 * function bundle becomes an image tagged REGISTRY/<name>:<tag> (the
 * reference the rendered Knative Service runs) from a base image the tests
 * build (nothing is pulled); it runs as a non-root user with `node
 * index.js` and answers; pushed, a registry on 127.0.0.1 receives its
 * manifest, config and layers.
 */
import { createHash, randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '@saasodoo/platform/config';
import { knativeService } from '@saasodoo/platform/deploy/knative-services';
import { needsOf } from '@saasodoo/platform/deploy/analyze';
import { functionSpec } from '@saasodoo/platform/funcspec';
import { functionDockerfile } from '@saasodoo/platform/deploy/image';
import { docker, dockerAvailable, testNodeImage } from '../../helpers/docker-image.ts';
import { freePort } from '../../helpers/ports.ts';

const available = await dockerAvailable();
if (!available) console.warn('function image tests skipped: no Docker engine answers on /var/run/docker.sock (.ci/run starts dockerd)');

/** The smallest Docker Registry v2 that accepts a push (blobs by upload session, manifests by tag), in memory. */
function fakeRegistry() {
  const blobs = new Map<string, Buffer>();
  const manifests = new Map<string, { type: string; body: Buffer }>();
  const uploads = new Map<string, Buffer[]>();
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const url = new URL(req.url ?? '/', 'http://registry');
    res.setHeader('Docker-Distribution-API-Version', 'registry/2.0');
    let m: RegExpExecArray | null;
    if (url.pathname === '/v2/') return res.writeHead(200).end('{}');
    if ((m = /^\/v2\/(.+)\/blobs\/(sha256:[0-9a-f]{64})$/.exec(url.pathname))) {
      const b = blobs.get(m[2]);
      if (!b) return res.writeHead(404).end();
      return res.writeHead(200, { 'Content-Length': b.length, 'Docker-Content-Digest': m[2] }).end(req.method === 'HEAD' ? undefined : b);
    }
    if ((m = /^\/v2\/(.+)\/blobs\/uploads\/$/.exec(url.pathname)) && req.method === 'POST') {
      const id = randomUUID();
      uploads.set(id, []);
      return res.writeHead(202, { Location: `/v2/${m[1]}/blobs/uploads/${id}`, 'Docker-Upload-UUID': id, Range: '0-0', 'Content-Length': 0 }).end();
    }
    if ((m = /^\/v2\/(.+)\/blobs\/uploads\/([0-9a-f-]+)$/.exec(url.pathname))) {
      const parts = uploads.get(m[2]);
      if (!parts) return res.writeHead(404).end();
      parts.push(body);
      const size = parts.reduce((n, p) => n + p.length, 0);
      if (req.method === 'PATCH') return res.writeHead(202, { Location: url.pathname, 'Docker-Upload-UUID': m[2], Range: `0-${Math.max(0, size - 1)}`, 'Content-Length': 0 }).end();
      const digest = url.searchParams.get('digest')!;
      const all = Buffer.concat(parts);
      if (`sha256:${createHash('sha256').update(all).digest('hex')}` !== digest) return res.writeHead(400).end('{"errors":[{"code":"DIGEST_INVALID"}]}');
      blobs.set(digest, all);
      uploads.delete(m[2]);
      return res.writeHead(201, { Location: `/v2/${m[1]}/blobs/${digest}`, 'Docker-Content-Digest': digest, 'Content-Length': 0 }).end();
    }
    if ((m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(url.pathname))) {
      const key = `${m[1]}:${m[2]}`;
      if (req.method === 'PUT') {
        manifests.set(key, { type: String(req.headers['content-type']), body });
        const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
        return res.writeHead(201, { Location: url.pathname, 'Docker-Content-Digest': digest, 'Content-Length': 0 }).end();
      }
      const got = manifests.get(key);
      if (!got) return res.writeHead(404).end('{"errors":[{"code":"MANIFEST_UNKNOWN"}]}');
      return res.writeHead(200, { 'Content-Type': got.type, 'Content-Length': got.body.length }).end(req.method === 'HEAD' ? undefined : got.body);
    }
    res.writeHead(404).end();
  });
  return { server, blobs, manifests };
}

describe.skipIf(!available)('platform build --image / --push', () => {
  const registry = fakeRegistry();
  let registryHost: string;
  let base: string;
  let out: string;
  const tag = `t${Date.now().toString(36)}`;
  const created: string[] = [];

  beforeAll(async () => {
    await new Promise<void>((r) => registry.server.listen(0, '127.0.0.1', () => r()));
    registryHost = `127.0.0.1:${(registry.server.address() as AddressInfo).port}`;
    base = await testNodeImage();
    out = fs.mkdtempSync(path.join(os.tmpdir(), 'saasodoo-images-'));
  });

  afterAll(async () => {
    for (const ref of created)
      await docker
        .getImage(ref)
        .remove({ force: true })
        .catch(() => {});
    registry.server.close();
    fs.rmSync(out, { recursive: true, force: true });
  });

  it('builds REGISTRY/<name>:<tag> as the Knative Service names it, non-root, `node index.js`; pushes it', async () => {
    const r = await promisify(execFile)(process.execPath, ['platform/bin/platform.js', 'build', 'plans', '--out', out, '--tag', tag, '--registry', `${registryHost}/saasodoo`, '--push'], {
      cwd: repoRoot,
      env: { ...process.env, NODE_IMAGE: base },
      timeout: 300_000,
    });
    const ref = `${registryHost}/saasodoo/plans:${tag}`;
    created.push(ref);
    expect(r.stdout).toContain(`image ${ref}\n`);
    expect(r.stdout).toContain(`pushed ${ref}\n`);
    // The rendered Knative Service runs exactly this reference.
    const svc = knativeService({ ...functionSpec('plans'), registry: `${registryHost}/saasodoo` }, needsOf([]), tag) as any;
    expect(svc.spec.template.spec.containers[0].image).toBe(ref);

    expect(fs.readFileSync(path.join(out, 'plans', 'Dockerfile'), 'utf8')).toBe(functionDockerfile(base));
    const info = await docker.getImage(ref).inspect();
    expect(info.Config).toMatchObject({ User: '1000:1000', Cmd: ['node', 'index.js'], WorkingDir: '/app' });

    // It runs on its own (its external packages are in the image) and answers.
    const port = await freePort();
    const c = await docker.createContainer({
      Image: ref,
      Env: [`PORT=${port}`, 'DATA_DIR=/tmp/data'],
      HostConfig: { NetworkMode: 'host', AutoRemove: false },
    });
    try {
      await c.start();
      let res: Response | undefined;
      for (let i = 0; i < 200 && res?.status !== 200; i++) {
        res = await fetch(`http://127.0.0.1:${port}/health/liveness`).catch(() => undefined);
        if (res?.status !== 200) await new Promise((w) => setTimeout(w, 100));
      }
      expect(res?.status).toBe(200);
      expect(await res!.text()).toBe('OK');
      // The function kit is in the image: a reserved query parameter is refused with 400.
      expect((await fetch(`http://127.0.0.1:${port}/?headers=x`)).status).toBe(400);
      expect((await c.inspect()).Config.User).toBe('1000:1000');
    } finally {
      await c.remove({ force: true, v: true });
    }

    // The registry got the manifest, and every blob it names.
    const manifest = registry.manifests.get(`saasodoo/plans:${tag}`);
    expect(manifest).toBeDefined();
    const m = JSON.parse(manifest!.body.toString('utf8'));
    for (const d of [m.config.digest, ...m.layers.map((l: any) => l.digest)]) expect(registry.blobs.has(d)).toBe(true);
    expect(JSON.parse(registry.blobs.get(m.config.digest)!.toString('utf8')).config.User).toBe('1000:1000');
  });
});
