/**
 * Faults 5–8 of the fault suite (issue 25), each started once at a random
 * moment within FAULT_WINDOW_S of the first subscription, beside the
 * scripted flow; the oracle does not change for them. Each returns what it
 * did (for the summary) and throws when the platform failed a promise the
 * fault is about (a session lost for good, a limit lifted, Kill Bill's
 * outage not answered with 503 + Retry-After): a problem of the run.
 */
import type { Platform } from '../helpers/platform.ts';
import type { TcpProxy } from '../helpers/tcp-proxy.ts';
import { createTestUser, type TestUser } from '../helpers/auth.ts';
import { atInstance } from './after.ts';
import { containerRunsAgain, killInstanceContainer, type PrivateRedis, type RefusingSmtp } from './injectors.ts';
import type { Customer } from './run.ts';

type DbFn = (typeof import('@saasodoo/platform/db/index'))['db'];
type Ctx = { p: Platform; db: DbFn; customers: Customer[]; redis: PrivateRedis; smtp: RefusingSmtp; kbProxy: TcpProxy };

const WINDOW_MS = Number(process.env.FAULT_WINDOW_S ?? 150) * 1000;
const OUTAGE_MS = Number(process.env.FAULT_OUTAGE_S ?? 60) * 1000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (msg: string) => process.stdout.write(`[faults ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

async function get(p: Platform, fn: string, token: string, query = ''): Promise<Response> {
  return fetch(`${p.gateway}/api/${fn}${query}`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(30_000) });
}

/** POST /api/refresh for a customer whose access token stopped working; keeps the rotated pair. */
async function refreshOf(p: Platform, u: TestUser): Promise<boolean> {
  const res = await fetch(`${p.gateway}/api/refresh`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ refreshToken: u.refreshToken }),
    signal: AbortSignal.timeout(30_000),
  }).catch(() => undefined);
  if (res?.status !== 200) return false;
  const t = (await res.json()) as { accessToken: string; refreshToken: string };
  u.accessToken = t.accessToken;
  u.refreshToken = t.refreshToken;
  return true;
}

/** Fault 5: Redis restarted (its data gone). Sessions come back with one refresh; a login limit still bites. */
async function redisRestart(c: Ctx): Promise<string> {
  await c.redis.restart();
  log('fault: Redis is back; checking every session and the login limit');
  // Sessions: every customer's next call works, at worst after one refresh (the portal's answer to a 401).
  let refreshed = 0;
  for (const cu of c.customers) {
    const attempt = () => get(c.p, 'instances', cu.user.accessToken).catch(() => new Response(null, { status: 503 }));
    let r = await attempt();
    for (let i = 0; (r.status === 502 || r.status === 503) && i < 30; i++) {
      await sleep(1000);
      r = await attempt();
    }
    if (r.status === 401) {
      if (!(await refreshOf(c.p, cu.user))) throw new Error("after the Redis restart a customer's refresh was refused: logged out for good");
      refreshed++;
      r = await get(c.p, 'instances', cu.user.accessToken);
    }
    if (r.status !== 200) throw new Error(`after the Redis restart a customer's call answered ${r.status}`);
  }
  // Limits: a fresh account's 6th wrong password in a row is refused (5 per account per 15 min), as before the restart.
  const victim: TestUser = await createTestUser({ firstName: 'Limit' });
  const statuses: number[] = [];
  for (let i = 0; i < 6; i++) {
    const res = await fetch(`${c.p.gateway}/api/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: victim.email, password: 'not the password at all' }),
    });
    statuses.push(res.status);
  }
  if (statuses[5] !== 429 || statuses.slice(0, 5).some((s) => s !== 401)) throw new Error(`after the Redis restart, 6 wrong passwords answered ${statuses.join(', ')} (want 5 × 401 then 429)`);
  return `Redis restarted (a private redis-server, its data gone): ${c.customers.length} customers' calls work again (${refreshed} after one refresh), the login limit still answers 429 on the 6th wrong password`;
}

/** Fault 6: the SMTP server refuses every mail (451) for OUTAGE_MS. */
async function smtpRefusing(c: Ctx): Promise<string> {
  c.smtp.refuse = true;
  await sleep(OUTAGE_MS);
  c.smtp.refuse = false;
  return `SMTP refused mail for ${OUTAGE_MS / 1000} s (${c.smtp.refused} attempts refused with 451)`;
}

/** Fault 7: Kill Bill unreachable for OUTAGE_MS; a customer reading their billing meanwhile gets 503 with Retry-After. */
async function killbillAway(c: Ctx): Promise<string> {
  c.kbProxy.cut();
  try {
    await sleep(2000);
    const cu = c.customers[0];
    let r = await get(c.p, 'billing', cu.user.accessToken);
    if (r.status === 401 && (await refreshOf(c.p, cu.user))) r = await get(c.p, 'billing', cu.user.accessToken); // its session went with a Redis restart
    const after = r.headers.get('retry-after');
    await r.text();
    if (r.status !== 503 || !after) throw new Error(`with Kill Bill unreachable, GET /api/billing answered ${r.status} (Retry-After ${after ?? 'absent'}), want 503 with Retry-After`);
    await sleep(Math.max(0, OUTAGE_MS - 2000));
    return `Kill Bill unreachable for ${OUTAGE_MS / 1000} s (GET /api/billing meanwhile: ${r.status}, Retry-After ${after})`;
  } finally {
    c.kbProxy.restore();
  }
}

async function pidOf(p: Platform, name: string): Promise<number | undefined> {
  return p.host!.supervisor.status().find((s) => s.name === name)?.pid;
}

/** Polls `check` every 50 ms for up to `ms`; true when it held. */
async function waitFor(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return true;
    await sleep(50);
  }
  return false;
}

/** Fault 8a: `provision` SIGKILLed while an instance is being provisioned (one is started for the purpose if none is). */
async function killProvision(c: Ctx): Promise<string> {
  const provisioning = async () => Boolean(await c.db('instance').oneOrNone(`SELECT 1 FROM instance_history WHERE to_status = 'provisioning' AND created_at > now() - interval '2 seconds' LIMIT 1`));
  const inFlight = async () => Boolean(await c.db('instance').oneOrNone(`SELECT 1 FROM instances WHERE status = 'provisioning' LIMIT 1`));
  const mid = (await waitFor(async () => (await inFlight()) || (await provisioning()), 60_000)) && (await inFlight());
  const pid = await pidOf(c.p, 'provision');
  if (!pid) return 'provision was not running when its SIGKILL was due';
  process.kill(pid, 'SIGKILL');
  return `provision (pid ${pid}) killed with SIGKILL ${mid ? 'while an instance was provisioning' : 'with no provisioning in flight (none came within 60 s)'}`;
}

/** Fault 8b: `instance-ops` SIGKILLed mid-backup: a running paid customer asks for a backup, killed once it is `backing_up`. */
async function killInstanceOps(c: Ctx, call: (u: TestUser, body: unknown) => Promise<{ status: number }>): Promise<string> {
  const candidates = c.customers.filter((x) => x.scenario === 'paid-now' && x.instanceId);
  let victim: Customer | undefined;
  await waitFor(async () => {
    for (const x of candidates) {
      const r = await c.db('instance').one<{ status: string }>('SELECT status FROM instances WHERE id = $1', [x.instanceId]);
      if (r.status === 'running') {
        victim = x;
        return true;
      }
    }
    return false;
  }, 120_000);
  if (!victim) return 'instance-ops not killed: no paid customer had a running instance to back up';
  const r = await call(victim.user, { id: victim.instanceId, action: 'backup' });
  if (r.status !== 202) return `instance-ops not killed: the backup was refused (${r.status})`;
  victim.manualBackup = true;
  const mid = await waitFor(async () => (await c.db('instance').one<{ status: string }>('SELECT status FROM instances WHERE id = $1', [victim!.instanceId])).status === 'backing_up', 30_000);
  await waitFor(async () => Boolean(await c.db('instance').oneOrNone(`SELECT 1 FROM backups WHERE instance_id = $1 AND status = 'running'`, [victim!.instanceId])), 10_000);
  const pid = await pidOf(c.p, 'instance-ops');
  if (!pid) return 'instance-ops was not running when its SIGKILL was due';
  process.kill(pid, 'SIGKILL');
  return `instance-ops (pid ${pid}) killed with SIGKILL ${mid ? 'in the middle of a manual backup' : 'while the backup was still queued'}`;
}

/**
 * Fault 9 (FAULT_DRIVER=docker): a running instance's container killed with
 * `docker kill`. It must run again by itself, its history must record the
 * drift once health-probe looks (the run's schedule probes hourly, so ticks
 * are sent here), and its URL must answer; the final oracle then checks its
 * customer still logs in.
 */
async function killContainer(c: Ctx): Promise<string> {
  const { buildEvent, send } = await import('@saasodoo/platform/emit');
  // Reads given up after 10 s: a connection cut by the PostgreSQL fault would otherwise hang the check for good.
  const read = <T>(p: Promise<T>) => Promise.race([p, sleep(10_000).then(() => Promise.reject(new Error('read timed out')))]);
  const statusOf = async (id: string) => (await read(c.db('instance').one<{ status: string }>('SELECT status FROM instances WHERE id = $1', [id]))).status;
  // A customer meant to end running, trials first (fault 8b backs up the first paid one).
  const candidates = [...c.customers.filter((x) => x.scenario === 'trial-then-pays'), ...c.customers.filter((x) => x.scenario === 'paid-now').reverse()].filter((x) => x.instanceId);
  let victim: Customer | undefined;
  await waitFor(async () => {
    for (const x of candidates) {
      if ((await statusOf(x.instanceId!)) !== 'running') continue;
      victim = x;
      return true;
    }
    return false;
  }, 120_000);
  if (!victim) return 'no container killed: no instance was running';
  const id = victim.instanceId!;
  const startedAt = await killInstanceContainer(id);
  if (!(await waitFor(() => containerRunsAgain(id, startedAt), 60_000))) throw new Error(`instance ${id}: its container killed with docker kill did not run again within 60 s`);
  const recorded = () => read(c.db('instance').oneOrNone(`SELECT 1 FROM instance_history WHERE instance_id = $1 AND reason LIKE 'drift: runtime restarted Odoo%'`, [id]));
  // Ticks go to health-probe itself, not through the broker: one refused during another fault would be dead-lettered (ticks are not retried).
  const drift = await waitFor(async () => {
    if (await recorded()) return true;
    await send(buildEvent('com.saasodoo.health.tick', { at: new Date().toISOString() }), await c.p.host!.supervisor.url('health-probe'));
    return Boolean(await recorded());
  }, 120_000);
  if (!drift) throw new Error(`instance ${id}: its container ran again but no drift was recorded in its history within 120 s`);
  // Its own Odoo answers at its URL: the stand-in's login page names the instance's database (another instance's would not).
  const r = await read(c.db('instance').one<{ subdomain: string; db_name: string }>('SELECT subdomain, db_name FROM instances WHERE id = $1', [id]));
  // Given a minute: another fault (PostgreSQL away) may fail the page meanwhile.
  let page = { status: 0, text: '' };
  const own = await waitFor(async () => {
    page = await atInstance(c.p.gateway, `http://${r.subdomain}.localhost`, '/web/login').catch(() => ({ status: 0, text: '' }));
    return page.status === 200 && page.text.includes(r.db_name);
  }, 60_000);
  if (!own) throw new Error(`instance ${id}: after its container came back, /web/login answered ${page.status}${page.text.includes(r.db_name) ? '' : ' without its database'}`);
  return `instance ${id} (${victim.scenario}): its container killed with docker kill ran again, the drift recorded in its history, its own /web/login answering 200`;
}

/**
 * Starts faults 5–8 (and 9 with FAULT_DRIVER=docker), each after a random delay within the window; resolves
 * once all are over to what each did and the promises the platform broke.
 */
export async function randomFaults(c: Ctx & { action: (u: TestUser, body: unknown) => Promise<{ status: number }> }): Promise<{ did: string[]; problems: string[] }> {
  // [name, run, window]: provisionings happen while the subscriptions open, so provision's moment is drawn from those first seconds.
  const plan: [string, () => Promise<string>, number][] = [
    ['Redis restart', () => redisRestart(c), WINDOW_MS],
    ['SMTP refusing mail', () => smtpRefusing(c), WINDOW_MS],
    ['Kill Bill unreachable', () => killbillAway(c), WINDOW_MS],
    ['SIGKILL provision', () => killProvision(c), 10_000],
    ['SIGKILL instance-ops', () => killInstanceOps(c, c.action), WINDOW_MS],
  ];
  if (process.env.FAULT_DRIVER === 'docker') plan.push(['docker kill of an instance container', () => killContainer(c), WINDOW_MS]);
  const results = await Promise.allSettled(
    plan.map(async ([name, run, window]) => {
      const at = Math.round(Math.random() * window);
      await sleep(at);
      log(`fault: ${name} (at +${Math.round(at / 1000)} s)`);
      const what = await run();
      log(`fault over: ${what}`);
      return `${what} (started at +${Math.round(at / 1000)} s)`;
    }),
  );
  return {
    did: results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : [])),
    problems: results.flatMap((r, i) => (r.status === 'rejected' ? [`${plan[i][0]}: ${(r.reason as Error)?.message ?? r.reason}`] : [])),
  };
}
