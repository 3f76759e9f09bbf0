/**
 * The customer portal as a host service: runs the SvelteKit build
 * (`node web/build`, adapter-node) on PORTAL_PORT, talking to the local
 * gateway. A missing or stale build (older than any file of web/src) is
 * rebuilt first with `vite build`, so `npm install && npm start` is enough.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot, type Config } from '../config.ts';
import { log } from '../log.ts';
import { localSecret } from '../secrets.ts';
import { gatewayProxyToken } from './gateway.ts';
import type { HostService } from './services.ts';

const WEB = path.join(repoRoot, 'web');
const BUILD_ENTRY = path.join(WEB, 'build/index.js');
const SOURCES = ['src', 'static', 'svelte.config.js', 'vite.config.js', 'package.json'];

function newestMtime(p: string): number {
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return st.mtimeMs;
  return Math.max(st.mtimeMs, ...fs.readdirSync(p).map((n) => newestMtime(path.join(p, n))));
}

/** True when web/build is missing or older than a source file of the portal. */
export function portalBuildIsStale(): boolean {
  const built = fs.existsSync(BUILD_ENTRY) ? fs.statSync(BUILD_ENTRY).mtimeMs : 0;
  return built === 0 || Math.max(...SOURCES.map((s) => newestMtime(path.join(WEB, s)))) > built;
}

function viteBin(): string {
  for (const dir of [path.join(WEB, 'node_modules'), path.join(repoRoot, 'node_modules')]) {
    const bin = path.join(dir, 'vite/bin/vite.js');
    if (fs.existsSync(bin)) return bin;
  }
  throw new Error('vite is not installed: run `npm install` at the repository root');
}

/**
 * Builds the portal when stale. Hosts started at the same time (a developer's
 * and a test run) share one build: a lock directory serialises them and the
 * second one finds the build fresh.
 */
export async function buildPortalIfStale(): Promise<boolean> {
  const lock = path.join(WEB, '.build.lock');
  const deadline = Date.now() + 5 * 60_000;
  for (;;) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch {
      const age = Date.now() - (fs.statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > 5 * 60_000) fs.rmSync(lock, { recursive: true, force: true });
      else if (Date.now() > deadline) throw new Error(`Portal build lock ${lock} is held: remove it if no build is running`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    if (!portalBuildIsStale()) return false;
    log.info('building the portal (vite build)');
    const started = Date.now();
    const output: Buffer[] = [];
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(process.execPath, [viteBin(), 'build'], { cwd: WEB, env: { ...process.env, NODE_ENV: 'production' }, stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.on('data', (d: Buffer) => output.push(d));
      child.stderr.on('data', (d: Buffer) => output.push(d));
      child.on('error', reject);
      child.on('exit', resolve);
    });
    if (code !== 0) throw new Error(`Portal build failed:\n${Buffer.concat(output).toString('utf8').slice(-4000)}`);
    fs.utimesSync(BUILD_ENTRY, new Date(), new Date());
    log.info({ ms: Date.now() - started }, 'portal built');
    return true;
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
}

/** The gateway and public addresses the portal uses, following the ports when the URLs are not set explicitly. */
export function portalUrls(c: Config, env: NodeJS.ProcessEnv = process.env): { gateway: string; origin: string } {
  return {
    gateway: env.GATEWAY_URL ? c.GATEWAY_URL : `http://127.0.0.1:${c.GATEWAY_PORT}`,
    origin: env.PUBLIC_URL ? new URL(c.PUBLIC_URL).origin : `http://localhost:${c.PORTAL_PORT}`,
  };
}

async function waitListening(port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`The portal exited during start (code ${child.exitCode})`);
    try {
      await fetch(`http://127.0.0.1:${port}/`, { redirect: 'manual', signal: AbortSignal.timeout(2000) });
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  throw new Error(`The portal did not answer on port ${port} within 30 s`);
}

export const portalService: HostService = {
  name: 'portal',
  phase: 'after',
  async start({ config: c }) {
    await buildPortalIfStale();
    let stopping = false;
    const { gateway, origin } = portalUrls(c);
    const child = spawn(process.execPath, [BUILD_ENTRY], {
      cwd: WEB,
      env: {
        ...process.env,
        NODE_ENV: 'production',
        PORT: String(c.PORTAL_PORT),
        HOST: '127.0.0.1',
        ORIGIN: origin,
        GATEWAY_URL: gateway,
        GATEWAY_PROXY_TOKEN: gatewayProxyToken(),
        SESSION_SECRET: localSecret('PORTAL_SESSION_SECRET', c.PORTAL_SESSION_SECRET, () => randomBytes(32).toString('base64url')),
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    child.on('exit', (code, signal) => {
      if (!stopping) log.error({ code, signal }, 'the portal exited');
    });
    await waitListening(c.PORTAL_PORT, child).catch((err) => {
      child.kill('SIGKILL');
      throw err;
    });
    return {
      endpoint: origin,
      async stop() {
        stopping = true;
        if (child.exitCode !== null) return;
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      },
    };
  },
};
