/**
 * What the API and cold-start benches share: a namespace of their own
 * (database, Redis prefix, DATA_DIR, dropped afterwards), function processes
 * started exactly as the supervisor starts them (from their bundles), and a
 * latency summary.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { repoRoot, resetConfig } from '@saasodoo/platform/config';
import { closeDatabases } from '@saasodoo/platform/db/index';
import { dropNamespace, migrate } from '@saasodoo/platform/db/migrate';
import { closeRedis } from '@saasodoo/platform/redis';
import { resetKeyRing } from '@saasodoo/platform/auth/keys';
import { resetSigningKey } from '@saasodoo/platform/auth/signing';
import * as esbuild from 'esbuild';
import { EXTERNAL_PACKAGES } from '@saasodoo/platform/deploy/build';
import { bundleDir, functionBundles, sourceUrlPlugin } from '@saasodoo/platform/host/bundles';
import { FUNCTION_NODE_ARGS } from '@saasodoo/platform/host/supervisor';
import { freePort } from '../helpers/ports.ts';

/** Runs `fn` in a fresh namespace (migrated), restoring the environment and dropping the namespace afterwards. */
export async function inNamespace<T>(fn: () => Promise<T>): Promise<T> {
  const saved = { ...process.env };
  const id = `b${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  Object.assign(process.env, { DB_NAMESPACE: `${id}_`, REDIS_PREFIX: `${id}:`, BROKER_NAME: id, DATA_DIR: path.join(os.tmpdir(), 'saasodoo-bench', id), LOG_LEVEL: 'error', NODE_ENV: 'test' });
  await closeDatabases();
  await closeRedis();
  resetConfig();
  resetKeyRing();
  resetSigningKey();
  try {
    await migrate();
    return await fn();
  } finally {
    await dropNamespace().catch(() => {});
    await closeDatabases();
    await closeRedis();
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
    resetConfig();
    resetKeyRing();
    resetSigningKey();
  }
}

export type Proc = { port: number; child: ChildProcess; kill(): void };

let bare: Promise<string> | undefined;

/** The bare baseline bundled like the functions, so it starts and runs as they do (no TypeScript loader). */
function bareBundle(): Promise<string> {
  bare ??= (async () => {
    const outfile = path.join(bundleDir, 'bench-bare-function.mjs');
    await esbuild.build({
      entryPoints: [path.join(repoRoot, 'tests/bench/_bare-function.ts')],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      outfile,
      external: EXTERNAL_PACKAGES,
      banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
      logLevel: 'silent',
      plugins: [sourceUrlPlugin],
    });
    await esbuild.stop();
    return outfile;
  })();
  return bare;
}

/**
 * Spawns a platform function (`name`) or the bare baseline (`bare`) as its
 * own process exactly as the supervisor does: from its bundle, with the same
 * V8 settings.
 */
export async function spawnFunction(name: string): Promise<Proc> {
  const port = await freePort();
  const file = name === 'bare' ? await bareBundle() : (await functionBundles([name]))[name]!.file;
  // BENCH_CPUPROF: the process writes its CPU profile there when it ends (SIGTERM lets it exit normally).
  const prof = process.env.BENCH_CPUPROF;
  const profArgs = prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`, `--cpu-prof-name=${name}-${port}.cpuprofile`] : [];
  const child = spawn(process.execPath, [...FUNCTION_NODE_ARGS, ...profArgs, file, name], {
    cwd: repoRoot,
    env: { ...process.env, PORT: String(port), FUNCTION_NAME: name },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return { port, child, kill: () => child.kill(prof ? 'SIGTERM' : 'SIGKILL') };
}

/** Polls `url` until it answers 200; returns the ms since `t0`. */
export async function untilOk(url: string, t0: number, headers: Record<string, string> = {}): Promise<number> {
  for (;;) {
    try {
      const res = await fetch(url, { headers, signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.status === 200) return performance.now() - t0;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}

export const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
export const median = (xs: number[]) =>
  pct(
    [...xs].sort((a, b) => a - b),
    50,
  );
