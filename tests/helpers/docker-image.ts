/**
 * Images the tests build from this machine's own files: no registry is
 * reachable, so nothing is pulled. A root filesystem is assembled from host
 * binaries and the shared libraries `ldd` names for them, and built with a
 * `FROM scratch` Dockerfile through the Engine API. Images are tagged by a
 * hash of what went in, so every test file (and every run) reuses one build.
 */
import { createHash } from 'node:crypto';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { repoRoot } from '@saasodoo/platform/config';
import { KNOWN_ODOO_VERSIONS } from '@saasodoo/platform/odoo/contract';
import { findPackage, packageClosure } from '@saasodoo/platform/deploy/vendor';
import { STANDIN } from '@saasodoo/platform/runtime/local/daemon';

/** Bump when the recipe changes (the hash covers inputs, not this code). */
const RECIPE = 'odoo-standin-3';

export const docker = new Docker();

/** Whether a Docker engine answers here (tests needing one skip, saying so, when not). */
export async function dockerAvailable(): Promise<boolean> {
  try {
    await docker.ping();
    return true;
  } catch {
    return false;
  }
}

/** Host paths of the shared libraries (and the loader) a binary needs. */
function sharedLibs(bin: string): string[] {
  const out = execFileSync('ldd', [bin], { encoding: 'utf8' });
  return [...out.matchAll(/(\/[^\s)]+)/g)].map((m) => m[1]).filter((p) => fs.existsSync(p));
}

/** Copies host files into `root` at the same paths (symlinks resolved), each with its libraries. */
function copyWithLibs(root: string, bins: string[]): void {
  const files = new Set<string>();
  for (const b of bins) {
    files.add(b);
    for (const l of sharedLibs(b)) files.add(l);
  }
  for (const f of files) {
    const to = path.join(root, f);
    fs.mkdirSync(path.dirname(to), { recursive: true });
    fs.copyFileSync(fs.realpathSync(f), to);
    fs.chmodSync(to, fs.statSync(fs.realpathSync(f)).mode & 0o777);
  }
}

async function imageExists(tag: string): Promise<boolean> {
  try {
    await docker.getImage(tag).inspect();
    return true;
  } catch {
    return false;
  }
}

/** Builds `dir` (holding a Dockerfile) as `tag` through the Engine API. */
export async function buildContext(dir: string, tag: string): Promise<void> {
  const tar = spawn('tar', ['-c', '-C', dir, '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const stream = await docker.buildImage(tar.stdout as unknown as NodeJS.ReadableStream, { t: tag, rm: true, forcerm: true });
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(stream, (err: Error | null, res: any[]) => {
      const failed = res?.find((r) => r.error);
      if (err || failed) reject(err ?? new Error(failed.error));
      else resolve();
    });
  });
}

/** The uid the test image runs as: deliberately not 101, so the driver must read it from the image. */
export const TEST_IMAGE_UID = 4242;

/**
 * The test "Odoo" image: Node, the stand-in and its packages, laid out like
 * the official `odoo` image where the driver depends on it: an `odoo`
 * command on PATH, `/var/lib/odoo` and `/mnt/extra-addons` declared as
 * volumes and owned by a system user `odoo` (uid TEST_IMAGE_UID), and an
 * entrypoint that must not be used (it exits 3, as a reminder that the
 * official one waits for PostgreSQL through the `postgres` database).
 * One tag per Odoo version the contract knows, each setting ODOO_VERSION as
 * the official images do; returns the ODOO_IMAGE template (`{version}`).
 */
export async function testOdooImage(): Promise<string> {
  const node = fs.realpathSync(process.execPath);
  const standinRel = path.relative(repoRoot, STANDIN);
  const packages = [...packageClosure(findPackage(path.dirname(STANDIN), 'pg'))];
  const h = createHash('sha256').update(RECIPE).update(fs.readFileSync(STANDIN)).update(ODOO_SHIM);
  const st = fs.statSync(node);
  h.update(`${node}:${st.size}:${st.mtimeMs}`);
  for (const p of packages.sort()) h.update(`${path.relative(repoRoot, p)}@${JSON.parse(fs.readFileSync(path.join(p, 'package.json'), 'utf8')).version}`);
  const tag = `saasodoo-test/odoo:${h.digest('hex').slice(0, 16)}`;
  if (!(await imageExists(tag))) await buildStandinBase(tag, node, standinRel, packages);
  for (const v of KNOWN_ODOO_VERSIONS) {
    if (await imageExists(`${tag}-${v}`)) continue;
    const ctx = fs.mkdtempSync(path.join(os.tmpdir(), 'saasodoo-image-'));
    try {
      fs.writeFileSync(path.join(ctx, 'Dockerfile'), `FROM ${tag}\nENV ODOO_VERSION=${v}.0\n`);
      await buildContext(ctx, `${tag}-${v}`);
    } finally {
      fs.rmSync(ctx, { recursive: true, force: true });
    }
  }
  return `${tag}-{version}`;
}

async function buildStandinBase(tag: string, node: string, standinRel: string, packages: string[]): Promise<void> {
  const ctx = fs.mkdtempSync(path.join(os.tmpdir(), 'saasodoo-image-'));
  try {
    const root = path.join(ctx, 'rootfs');
    copyWithLibs(root, [node]);
    fs.renameSync(path.join(root, node), path.join(root, 'node.tmp'));
    fs.mkdirSync(path.join(root, 'usr/local/bin'), { recursive: true });
    fs.renameSync(path.join(root, 'node.tmp'), path.join(root, 'usr/local/bin/node'));
    const app = path.join(root, 'opt/saasodoo');
    fs.mkdirSync(path.dirname(path.join(app, standinRel)), { recursive: true });
    fs.copyFileSync(STANDIN, path.join(app, standinRel));
    for (const p of packages) fs.cpSync(p, path.join(app, path.relative(repoRoot, p)), { recursive: true, dereference: true, filter: (s) => !s.includes(`${path.sep}.bin`) });
    fs.mkdirSync(path.join(root, 'usr/bin'), { recursive: true });
    fs.writeFileSync(path.join(root, 'usr/bin/odoo'), ODOO_SHIM.replaceAll('{standin}', `/opt/saasodoo/${standinRel}`), { mode: 0o755 });
    fs.writeFileSync(
      path.join(root, 'entrypoint.sh'),
      '#!/usr/local/bin/node\nconsole.error("the image entrypoint was used: it would wait for PostgreSQL on the postgres database");\nprocess.exit(3);\n',
      { mode: 0o755 },
    );
    fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(root, 'etc/passwd'), `root:x:0:0:root:/root:/bin/false\nodoo:x:${TEST_IMAGE_UID}:${TEST_IMAGE_UID}::/var/lib/odoo:/bin/false\n`);
    fs.writeFileSync(path.join(root, 'etc/group'), `root:x:0:\nodoo:x:${TEST_IMAGE_UID}:\n`);
    for (const d of ['var/lib/odoo', 'mnt/extra-addons', 'tmp']) fs.mkdirSync(path.join(root, d), { recursive: true });
    fs.chmodSync(path.join(root, 'tmp'), 0o1777);
    fs.chownSync(path.join(root, 'var/lib/odoo'), TEST_IMAGE_UID, TEST_IMAGE_UID);
    fs.chownSync(path.join(root, 'mnt/extra-addons'), TEST_IMAGE_UID, TEST_IMAGE_UID);
    fs.writeFileSync(
      path.join(ctx, 'Dockerfile'),
      [
        'FROM scratch',
        'COPY rootfs/ /',
        'ENV PATH=/usr/local/bin:/usr/bin:/bin',
        'VOLUME ["/var/lib/odoo", "/mnt/extra-addons"]',
        'EXPOSE 8069 8071 8072',
        `USER odoo`,
        'ENTRYPOINT ["/entrypoint.sh"]',
        'CMD ["odoo"]',
        '',
      ].join('\n'),
    );
    await buildContext(ctx, tag);
  } finally {
    fs.rmSync(ctx, { recursive: true, force: true });
  }
}

/**
 * The image's `odoo`: the stand-in, which takes exactly Odoo's command line
 * and odoo.conf (platform/src/odoo/contract.ts).
 */
const ODOO_SHIM = `#!/usr/local/bin/node
import('{standin}');
`;

/**
 * A stand-in for the official `node:<n>-slim` image, for function images:
 * this machine's `node` at /usr/local/bin/node (as in the official image)
 * with its libraries, a `node` user of uid 1000 and /tmp. Returns its tag.
 */
export async function testNodeImage(): Promise<string> {
  const node = fs.realpathSync(process.execPath);
  const st = fs.statSync(node);
  const tag = `saasodoo-test/node:${createHash('sha256').update(`node-base-1:${node}:${st.size}:${st.mtimeMs}`).digest('hex').slice(0, 16)}`;
  if (await imageExists(tag)) return tag;
  const ctx = fs.mkdtempSync(path.join(os.tmpdir(), 'saasodoo-image-'));
  try {
    const root = path.join(ctx, 'rootfs');
    copyWithLibs(root, [node]);
    fs.mkdirSync(path.join(root, 'usr/local/bin'), { recursive: true });
    fs.renameSync(path.join(root, node), path.join(root, 'usr/local/bin/node'));
    fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/false\nnode:x:1000:1000::/home/node:/bin/false\n');
    fs.writeFileSync(path.join(root, 'etc/group'), 'root:x:0:\nnode:x:1000:\n');
    fs.mkdirSync(path.join(root, 'tmp'), { recursive: true, mode: 0o1777 });
    fs.chmodSync(path.join(root, 'tmp'), 0o1777);
    fs.writeFileSync(path.join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY rootfs/ /\nENV PATH=/usr/local/bin:/usr/bin:/bin\nCMD ["node"]\n');
    await buildContext(ctx, tag);
  } finally {
    fs.rmSync(ctx, { recursive: true, force: true });
  }
  return tag;
}

/**
 * A stand-in for the backup Jobs' image (`postgres:<n>`): `sh` and the tools
 * the Kubernetes driver's Job scripts call (pg_dump, pg_restore, tar, gzip,
 * du, cut, mkdir, mv, rm), copied from this machine with their libraries.
 */
export async function testPgToolsImage(): Promise<string> {
  const pgBin = path.join('/usr/lib/postgresql', fs.readdirSync('/usr/lib/postgresql').sort().at(-1)!, 'bin');
  const tools = ['sh', 'tar', 'gzip', 'du', 'cut', 'mkdir', 'mv', 'rm', 'cat', 'ls'].map((t) => execFileSync('sh', ['-c', `command -v ${t}`], { encoding: 'utf8' }).trim());
  const bins = [...tools, path.join(pgBin, 'pg_dump'), path.join(pgBin, 'pg_restore')];
  const h = createHash('sha256').update('pg-tools-2');
  for (const b of bins) {
    const st = fs.statSync(b);
    h.update(`${b}:${st.size}:${st.mtimeMs}`);
  }
  const tag = `saasodoo-test/pg-tools:${h.digest('hex').slice(0, 16)}`;
  if (await imageExists(tag)) return tag;
  const ctx = fs.mkdtempSync(path.join(os.tmpdir(), 'saasodoo-image-'));
  try {
    const root = path.join(ctx, 'rootfs');
    copyWithLibs(root, bins);
    fs.mkdirSync(path.join(root, 'usr/bin'), { recursive: true });
    for (const t of ['pg_dump', 'pg_restore']) fs.renameSync(path.join(root, pgBin, t), path.join(root, 'usr/bin', t));
    // As in Debian (postgres:<n>): tar runs its compressor through /bin/sh.
    fs.symlinkSync('usr/bin', path.join(root, 'bin'));
    fs.mkdirSync(path.join(root, 'tmp'), { recursive: true });
    fs.chmodSync(path.join(root, 'tmp'), 0o1777);
    fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/false\npostgres:x:999:999::/var/lib/postgresql:/bin/false\n');
    fs.writeFileSync(path.join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY rootfs/ /\nENV PATH=/usr/bin:/bin\n');
    await buildContext(ctx, tag);
  } finally {
    fs.rmSync(ctx, { recursive: true, force: true });
  }
  return tag;
}
