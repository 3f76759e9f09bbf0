/**
 * The pool health check (issue 20 item 4), run on every `health.tick` by
 * health-probe: each pool's server must answer `SELECT 1` through its admin
 * connection. A failure makes an active pool `degraded` (still placed on);
 * three in a row `unhealthy` (no new placements, `pool.unhealthy` for the
 * operators); an answer again makes it `active` (`pool.recovered` after
 * unhealthy). A draining pool stays draining: that is the operator's call.
 * A CloudNativePG server (no credentials here) is checked through the
 * Kubernetes API instead (the driver's databaseServerProblem: the Cluster's
 * Ready condition, ready instances and phase), by the same rules.
 */
import { db } from '../db/index.ts';
import { enqueue, transact } from '../outbox.ts';
import { mapBounded } from './bounded.ts';
import { runtime } from '../runtime/index.ts';
import type { Command } from './command.ts';
import { instanceOfDedicatedPool, managedByOperator } from './dedicated.ts';
import { ensureDefaultPool, poolConnection, type PoolRow, type PoolState } from './pools.ts';

export const POOL_UNHEALTHY_AFTER = 3;

export type PoolCheckSummary = { checked: number; unhealthy: number };

/** Why the operator's server is not healthy, from the runtime (undefined: healthy). */
async function operatorProblem(p: PoolRow): Promise<string | undefined> {
  const rt = await runtime();
  const id = instanceOfDedicatedPool(p.name);
  if (!rt.databaseServerProblem || !id) return `the ${rt.name} runtime cannot report on this server`;
  return rt.databaseServerProblem(id);
}

/** Whether the pool's server answers within `timeoutMs`; the reason (no secrets: the driver's message) when not. */
async function probe(p: PoolRow, timeoutMs: number): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const problem = await Promise.race([
      // CloudNativePG's through the Kubernetes API; the platform's own server through health-probe's own role; other pools through their admin.
      managedByOperator(p) ? operatorProblem(p) : (poolConnection(p) ?? db('instance')).one('SELECT 1 AS ok').then(() => undefined),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return problem ? String(problem).slice(0, 300) : undefined;
  } catch (err) {
    return (err as Error).message.slice(0, 300);
  } finally {
    clearTimeout(timer);
  }
}

/** One check of every pool; state changes and their events in one transaction per pool. */
export async function checkPools(cmd: Command<unknown>, o: { timeoutMs?: number } = {}): Promise<PoolCheckSummary> {
  await ensureDefaultPool();
  const pools = await db('instance').manyOrNone<PoolRow>(`SELECT * FROM db_pools ORDER BY name`);
  const problems = await mapBounded(pools, 10, (p) => probe(p, o.timeoutMs ?? 5000));
  let unhealthy = 0;
  for (let i = 0; i < pools.length; i++) {
    const problem = problems[i];
    await transact('instance', async (t) => {
      const cur = await t.oneOrNone<PoolRow>('SELECT * FROM db_pools WHERE name = $1 FOR UPDATE', [pools[i].name]);
      if (!cur) return;
      let state: PoolState = cur.state;
      const failures = problem ? cur.health_failures + 1 : 0;
      if (problem) {
        if (failures >= POOL_UNHEALTHY_AFTER && (cur.state === 'active' || cur.state === 'degraded')) {
          state = 'unhealthy';
          await enqueue(t, 'pool.unhealthy', { pool: cur.name, failures, reason: problem }, { subject: cur.name, traceparent: cmd.traceparent });
        } else if (cur.state === 'active') state = 'degraded';
      } else if (cur.state === 'unhealthy' || cur.state === 'degraded') {
        if (cur.state === 'unhealthy') await enqueue(t, 'pool.recovered', { pool: cur.name }, { subject: cur.name, traceparent: cmd.traceparent });
        state = 'active';
      }
      if (state === 'unhealthy') unhealthy++;
      await t.none('UPDATE db_pools SET state = $2, health_failures = $3, checked_at = now(), last_error = $4 WHERE name = $1', [cur.name, state, failures, problem ?? null]);
    });
  }
  return { checked: pools.length, unhealthy };
}
