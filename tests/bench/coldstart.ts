/**
 * Cold start (issue 11): a function scaled to zero is a process to spawn,
 * so the figure is spawn → first 200 answer. `instances` (its first
 * authenticated GET: module graph, database pool, Redis) against the bare
 * function run by the same runner. Medians of a few starts.
 */
import { createTestUser } from '../helpers/auth.ts';
import { inNamespace, median, spawnFunction, untilOk } from './_shared.ts';

async function coldStart(name: string, headers: Record<string, string> = {}): Promise<number> {
  const t0 = performance.now();
  const p = await spawnFunction(name);
  try {
    return await untilOk(`http://127.0.0.1:${p.port}/`, t0, headers);
  } finally {
    p.kill();
    await new Promise((r) => p.child.once('exit', r));
  }
}

export async function bench(opts: { quick: boolean }) {
  return inNamespace(async () => {
    const user = await createTestUser();
    const n = opts.quick ? 3 : 7;
    const real: number[] = [];
    const bare: number[] = [];
    for (let i = 0; i < n; i++) {
      real.push(await coldStart('instances', { authorization: `Bearer ${user.accessToken}` }));
      bare.push(await coldStart('bare'));
    }
    const r = median(real);
    const b = median(bare);
    return [{ name: `cold start to first 200: instances (authenticated GET) vs bare fn (median of ${n})`, value: `${r.toFixed(0)} ms`, baseline: `${b.toFixed(0)} ms`, ratio: (r / b).toFixed(2) }];
  });
}
