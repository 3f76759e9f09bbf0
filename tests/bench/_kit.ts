/** Small helpers the benchmarks share (files starting with _ are not benchmarks). */
import fs from 'node:fs';
import inspector from 'node:inspector/promises';
import path from 'node:path';

/** Runs `task(i)` for every i < n with `concurrency` in flight; resolves to the elapsed seconds. */
export async function pool(n: number, concurrency: number, task: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) await task(next++);
    }),
  );
  return (performance.now() - t0) / 1000;
}

/** The p-th percentile of an ascending array. */
export const pct = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

/**
 * Runs `fn` under the V8 CPU profiler of this process when BENCH_CPUPROF
 * names a directory (writing `<label>.cpuprofile` there), so a bench can
 * profile exactly its measured window; plain `fn()` otherwise. Summarise a
 * profile with `node tests/bench/cpuprof-top.mjs <file>`.
 */
export async function profiled<T>(label: string, fn: () => Promise<T>): Promise<T> {
  const dir = process.env.BENCH_CPUPROF;
  if (!dir) return fn();
  const session = new inspector.Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  try {
    return await fn();
  } finally {
    const { profile } = await session.post('Profiler.stop');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, `${label}.cpuprofile`), JSON.stringify(profile));
    session.disconnect();
  }
}

/**
 * CPU time (user + system, ms, every thread) a process has used so far:
 * this process from process.cpuUsage, another from /proc/<pid>/stat (Linux;
 * NaN elsewhere). CPU per request moves much less than requests per second
 * with what else the machine runs, so it is the figure to compare on a
 * shared machine (short of overload, where it inflates too).
 */
export function cpuMs(pid = process.pid): number {
  if (pid === process.pid) {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime, stime in clock ticks (USER_HZ 100)
  } catch {
    return NaN;
  }
}

/** Runs `fn` and returns its result with the CPU ms each of `pids` used meanwhile. */
export async function withCpu<T>(pids: number[], fn: () => Promise<T>): Promise<[T, number[]]> {
  const before = pids.map((p) => cpuMs(p));
  const r = await fn();
  return [r, pids.map((p, i) => cpuMs(p) - before[i])];
}

/** "123 µs" of CPU per request. */
export const perRequest = (ms: number, n: number): string => `${Math.round((ms * 1000) / n).toLocaleString('en')} µs CPU/req`;
