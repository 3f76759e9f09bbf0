/**
 * `platform build` bundles start on their own: two functions (an HTTP one and
 * a CloudEvent one that loads the kubernetes runtime driver) are bundled into
 * a temp folder, given only the packages their package.json lists, started
 * with `node index.js` from another working directory, and answer
 * /health/liveness.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '@saasodoo/platform/config';
import { buildFunctions, type BuiltFunction } from '@saasodoo/platform/deploy/build';
import { freePort } from '../../helpers/ports.ts';

const NAMES = ['plans', 'health-probe'];
let out: string;
let built: BuiltFunction[];
const children: ChildProcess[] = [];

beforeAll(async () => {
  out = fs.mkdtempSync(path.join(os.tmpdir(), 'saasodoo-bundles-'));
  built = await buildFunctions({ names: NAMES, outDir: out, tag: 'test' });
}, 120_000);

afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  fs.rmSync(out, { recursive: true, force: true });
});

/** What `npm install` would give the bundle: only its listed dependencies (linked from this checkout). */
function installListed(b: BuiltFunction) {
  for (const dep of Object.keys(b.dependencies)) {
    const target = path.join(b.dir, 'node_modules', dep);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.symlinkSync(path.join(repoRoot, 'node_modules', dep), target);
  }
}

async function waitLive(port: number, child: ChildProcess, log: () => string): Promise<Response> {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`bundle exited ${child.exitCode}:\n${log()}`);
    // faas-js-runtime's overload protection answers 503 while the event loop is busy (a loaded CI box): retry.
    const r = await fetch(`http://127.0.0.1:${port}/health/liveness`).catch(() => undefined);
    if (r?.status === 200) return r;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`bundle did not listen:\n${log()}`);
}

describe('platform build', () => {
  it('writes index.js, package.json (runtime and native deps only) and func.yaml', () => {
    for (const b of built) {
      expect(fs.readdirSync(b.dir).sort()).toEqual(expect.arrayContaining(['func.yaml', 'index.js', 'package.json']));
      const pkg = JSON.parse(fs.readFileSync(path.join(b.dir, 'package.json'), 'utf8'));
      expect(pkg.scripts.start).toBe('node index.js');
      expect(Object.keys(pkg.dependencies)).toContain('faas-js-runtime');
      // ssh2: docker-modem's SSH transport (the docker runtime driver, bundled with the other drivers), which has a native part.
      for (const d of Object.keys(pkg.dependencies)) expect(['faas-js-runtime', '@node-rs/argon2', 'ssh2']).toContain(d);
      expect(fs.readFileSync(path.join(b.dir, 'func.yaml'), 'utf8')).toContain(`image: ghcr.io/saasodoo/${b.name}:test`);
    }
  });

  it.each(NAMES)('%s starts alone under faas-js-runtime and answers /health/liveness', async (name) => {
    const b = built.find((x) => x.name === name)!;
    installListed(b);
    const port = await freePort();
    let log = '';
    const child = spawn(process.execPath, [path.join(b.dir, 'index.js')], {
      cwd: os.tmpdir(),
      env: { ...process.env, PORT: String(port), NODE_PATH: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    child.stdout!.on('data', (d) => (log += d));
    child.stderr!.on('data', (d) => (log += d));
    const res = await waitLive(port, child, () => log);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('OK');
    // The reserved-query guard of run-function.ts is part of the bundle.
    const bad = await fetch(`http://127.0.0.1:${port}/?headers=x`);
    expect(bad.status).toBe(400);
    child.kill('SIGTERM');
  });
});
