/**
 * Bounded concurrency for sweeps over many instances (health probes, storage
 * measurements): a fixed pool of workers, so a sweep over thousands of rows
 * keeps a constant number of calls in flight and no promise per row up front.
 */

/** `fn` over `items` with at most `limit` in flight; results in input order. */
export async function mapBounded<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}
