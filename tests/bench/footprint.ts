/**
 * Footprint (issue 23 item 6): the host as `npm start` runs it (`up()` from
 * its bundle, in a child process of its own, portal left out: its first `vite build` is a
 * one-off and it is one more process), time from spawn to a gateway that
 * serves `GET /api/plans`, then every function started through the operator
 * listener and warmed with a few requests, then the memory of the host and
 * all its descendants: proportional set size (shared pages such as the node
 * binary counted once) and plain RSS summed. Baseline: the 1 GB / 20 s goals.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot, resetConfig } from '@saasodoo/platform/config';
import { functionNames } from '@saasodoo/platform/funcspec';
import { platformChildBundle, platformEnv } from '../helpers/platform.ts';

function children(): Map<number, number[]> {
  const kids = new Map<number, number[]>();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      kids.set(ppid, [...(kids.get(ppid) ?? []), Number(d)]);
    } catch {
      /* exited */
    }
  }
  return kids;
}

/** PSS and RSS (kB) of `pid` and every descendant, how many processes that is, and the PSS of each by name. */
function treeMemory(pid: number): { pssKb: number; rssKb: number; procs: number; each: [string, number][] } {
  const kids = children();
  const all: number[] = [];
  for (const queue = [pid]; queue.length;) {
    const p = queue.shift()!;
    all.push(p);
    queue.push(...(kids.get(p) ?? []));
  }
  let pssKb = 0;
  let rssKb = 0;
  const each: [string, number][] = [];
  for (const p of all) {
    try {
      const roll = fs.readFileSync(`/proc/${p}/smaps_rollup`, 'utf8');
      const pss = Number(/^Pss:\s+(\d+)/m.exec(roll)?.[1] ?? 0);
      pssKb += pss;
      rssKb += Number(/^Rss:\s+(\d+)/m.exec(roll)?.[1] ?? 0);
      // A function process is `node <args> <bundle> <name>`: its last argument names it.
      const argv = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').filter(Boolean);
      each.push([p === pid ? 'host' : (argv.at(-1) ?? String(p)), pss]);
    } catch {
      /* exited */
    }
  }
  return { pssKb, rssKb, procs: all.length, each: each.sort((a, b) => b[1] - a[1]) };
}

async function until(ok: () => Promise<boolean>, seconds: number): Promise<void> {
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    if (await ok().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`not ready within ${seconds} s`);
}

export async function bench() {
  const id = `b${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const token = randomBytes(16).toString('hex');
  const env = await platformEnv({
    DB_NAMESPACE: `${id}_`,
    REDIS_PREFIX: `${id}:`,
    BROKER_NAME: id,
    DATA_DIR: path.join(os.tmpdir(), 'saasodoo-bench', id),
    LOG_LEVEL: 'warn',
    NODE_ENV: 'test',
    OPERATOR_TOKEN: token,
  });
  const bundle = await platformChildBundle(); // built before the clock starts, as a warm machine has it
  const t0 = performance.now();
  const child = spawn(process.execPath, [bundle], {
    cwd: repoRoot,
    env: { ...process.env, ...env, PLATFORM_SKIP: 'portal', PLATFORM_CHILD: '1' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    await until(async () => (await fetch(`${env.GATEWAY_URL}/api/plans`)).status === 200, 180);
    const startMs = performance.now() - t0;
    const operator = `http://127.0.0.1:${env.OPERATOR_PORT}`;
    const names = functionNames();
    for (const n of names) {
      for (let i = 0; i < 5; i++) {
        const res = await fetch(`${operator}/invoke/${n}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{}' });
        await res.arrayBuffer();
      }
    }
    const status = (await (await fetch(`${operator}/status`, { headers: { authorization: `Bearer ${token}` } })).json()) as { functions: { state: string }[] };
    const running = status.functions.filter((f) => f.state === 'running').length;
    await new Promise((r) => setTimeout(r, 2000)); // let start-up garbage be collected
    const mem = treeMemory(child.pid!);
    const mb = (kb: number) => `${(kb / 1024).toFixed(0)} MB`;
    return [
      { name: 'platform up (no portal) → gateway serves GET /api/plans', value: `${(startMs / 1000).toFixed(1)} s`, baseline: '20 s (goal)', ratio: (startMs / 20_000).toFixed(2) },
      {
        name: `memory, host + ${running}/${names.length} functions running and warmed (PSS, ${mem.procs} processes)`,
        value: mb(mem.pssKb),
        baseline: '1024 MB (goal)',
        ratio: (mem.pssKb / 1024 / 1024).toFixed(2),
      },
      { name: 'same, RSS summed (shared pages counted in every process)', value: mb(mem.rssKb), baseline: '1024 MB (goal)', ratio: (mem.rssKb / 1024 / 1024).toFixed(2) },
      {
        name: 'largest processes (PSS)',
        value: mem.each
          .slice(0, 6)
          .map(([n, kb]) => `${n} ${mb(kb)}`)
          .join(', '),
      },
    ];
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    const { dropNamespace } = await import('@saasodoo/platform/db/migrate');
    const { closeDatabases } = await import('@saasodoo/platform/db/index');
    const saved = process.env.DB_NAMESPACE;
    process.env.DB_NAMESPACE = `${id}_`;
    resetConfig();
    await dropNamespace().catch(() => {});
    await closeDatabases();
    if (saved === undefined) delete process.env.DB_NAMESPACE;
    else process.env.DB_NAMESPACE = saved;
    resetConfig();
    fs.rmSync(env.DATA_DIR, { recursive: true, force: true });
  }
}
