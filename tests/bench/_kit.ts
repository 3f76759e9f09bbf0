/** Small helpers the benchmarks share (files starting with _ are not benchmarks). */

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
