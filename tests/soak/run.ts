/**
 * `npm run test:soak` (issue 25 item 10; outside CI): the whole platform
 * (tests/helpers/platform.ts, in this process, its own namespace) under a
 * steady mixed load for SOAK_MINUTES: signups, logins, instance reads and
 * actions (restart, backup), and Kill Bill notifications (the simulator's
 * clock moves a day every minute, and a share of what it pushed is pushed
 * again). Once a minute it samples every process's memory (RSS) and open
 * handles (file descriptors), every queue's depth and each endpoint's p99
 * latency; at the end it prints the table and fails when
 *
 *   - a process's memory grows without bound: its RSS, read every second, kept
 *     as the lowest reading of each minute (work in flight, such as signup's
 *     64 MB Argon2 hashes, swings RSS; a leak raises the floor), has a
 *     least-squares slope over the last half of the minutes above
 *     SOAK_SLOPE_MB_MIN (default 1 MB/min) and significant against the
 *     floors' scatter (tests/soak/memory.ts);
 *   - a queue never drains: it held messages at every sample, or still does
 *     60 s after the load stopped;
 *   - more than 0.1% of the requests failed (5xx, 429, no answer);
 *   - an endpoint's p99 more than doubled from the first to the last sample
 *     (and by more than SOAK_P99_FLOOR_MS, default 100 ms: a 5 → 11 ms
 *     change on a shared machine is noise, not a trend).
 *
 * Env: SOAK_MINUTES (default 20), SOAK_RATE (requests per second, default 8),
 * SOAK_SLOPE_MB_MIN, SOAK_P99_FLOOR_MS.
 */
import '../helpers/setup-env.ts';
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { createTestUser, type TestUser } from '../helpers/auth.ts';
import { startPlatform, type Platform } from '../helpers/platform.ts';
import { queueDepths } from '../faults/injectors.ts';
import { fitSlope, floorOf, memoryGrowth } from './memory.ts';

process.env.LOG_LEVEL = process.env.LOG_LEVEL === 'warn' ? 'error' : process.env.LOG_LEVEL;
const MINUTES = Number(process.env.SOAK_MINUTES ?? 20);
const RATE = Number(process.env.SOAK_RATE ?? 8);
const SLOPE_MB_MIN = Number(process.env.SOAK_SLOPE_MB_MIN ?? 1);
const P99_FLOOR_MS = Number(process.env.SOAK_P99_FLOOR_MS ?? 100);
const PROXY_TOKEN = randomBytes(24).toString('hex');

const log = (msg: string) => process.stdout.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Sample = { minute: number; mem: Map<string, number>; fds: Map<string, number>; queues: number; queueByName: Map<string, number>; p99: Map<string, number>; requests: number; errors: number };

/** Latencies of the current minute, by endpoint; errors and totals over the whole run. */
const window = new Map<string, number[]>();
let requests = 0;
let errors = 0;
const errorKinds = new Map<string, number>();

let ipSeq = 0;
/** A client address the portal vouches for (GATEWAY_PROXY_TOKEN), one per simulated visitor, so per-IP limits see many visitors as they would. */
const visitor = () => `10.${(ipSeq >> 16) & 255}.${(ipSeq >> 8) & 255}.${ipSeq++ & 255}`;

async function call(
  p: Platform,
  endpoint: string,
  method: 'GET' | 'POST',
  path: string,
  o: { user?: TestUser; body?: unknown; ok?: number[]; retried?: boolean } = {},
): Promise<{ status: number; body: any }> {
  const t0 = performance.now();
  requests++;
  try {
    const res = await fetch(`${p.gateway}${path}`, {
      method,
      headers: {
        'content-type': 'application/json',
        'x-saasodoo-proxy-token': PROXY_TOKEN,
        'x-forwarded-for': visitor(),
        ...(o.user ? { authorization: `Bearer ${o.user.accessToken}` } : {}),
      },
      body: o.body ? JSON.stringify(o.body) : undefined,
      // A request unanswered in 30 s is an error, not a hang of the soak.
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    // An expired access token: the portal refreshes and asks again, and so does the soak (one request, not an error).
    if (res.status === 401 && o.user && !o.retried && (await refresh(p, o.user))) {
      requests--;
      return call(p, endpoint, method, path, { ...o, retried: true });
    }
    const ms = performance.now() - t0;
    window.set(endpoint, [...(window.get(endpoint) ?? []), ms]);
    const bad = res.status >= 500 || res.status === 429 || (o.ok && !o.ok.includes(res.status));
    if (bad) {
      errors++;
      const k = `${endpoint} ${res.status}`;
      errorKinds.set(k, (errorKinds.get(k) ?? 0) + 1);
    }
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  } catch (err) {
    errors++;
    const k = `${endpoint} ${(err as Error).message}`;
    errorKinds.set(k, (errorKinds.get(k) ?? 0) + 1);
    return { status: 0, body: undefined };
  }
}

/** Rotates the customer's tokens (POST /api/refresh); false when refused. One refresh at a time per customer. */
const refreshing = new Map<TestUser, Promise<boolean>>();
function refresh(p: Platform, u: TestUser): Promise<boolean> {
  let r = refreshing.get(u);
  if (!r) {
    const stale = u.accessToken;
    r = (async () => {
      if (u.accessToken !== stale) return true;
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
    })().finally(() => refreshing.delete(u));
    refreshing.set(u, r);
  }
  return r;
}

const p99 = (xs: number[]) => {
  if (!xs.length) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(s.length * 0.99) - 1)];
};

/** RSS in MB and open file descriptors of a pid (Linux /proc); undefined once it is gone. */
function procStats(pid: number): { mb: number; fds: number } | undefined {
  try {
    const rss = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return { mb: Number(rss) / 1024, fds: fs.readdirSync(`/proc/${pid}/fd`).length };
  } catch {
    return undefined;
  }
}

/** RSS readings (MB) of the current minute, by process, taken every second: the minute's floor is their lowest. */
const readings = new Map<string, number[]>();

function readMemory(p: Platform): void {
  const pids: [string, number][] = [['host', process.pid]];
  for (const f of p.host!.supervisor.status()) if (f.pid) pids.push([f.name, f.pid]);
  for (const [name, pid] of pids) {
    const s = procStats(pid);
    if (s) readings.set(name, [...(readings.get(name) ?? []), s.mb]);
  }
}

function sample(p: Platform, minute: number): Sample {
  const mem = new Map<string, number>();
  const fds = new Map<string, number>();
  readMemory(p);
  const self = procStats(process.pid);
  if (self) fds.set('host', self.fds);
  for (const f of p.host!.supervisor.status()) {
    const s = f.pid ? procStats(f.pid) : undefined;
    if (s) fds.set(f.name, s.fds);
  }
  for (const [name, mbs] of readings) mem.set(name, floorOf(mbs)!);
  readings.clear();
  const q = queueDepths() ?? new Map<string, number>();
  const queueByName = new Map([...q].filter(([n]) => !n.endsWith('.dlq')));
  const p99s = new Map([...window].map(([k, v]) => [k, p99(v)]));
  window.clear();
  return { minute, mem, fds, queues: [...queueByName.values()].reduce((a, b) => a + b, 0), queueByName, p99: p99s, requests, errors };
}

async function main(): Promise<number> {
  log(`starting the platform (${MINUTES} min at ${RATE} requests/s)`);
  const p = await startPlatform({ env: { HEALTH_INTERVAL_SECONDS: '60', GATEWAY_PROXY_TOKEN: PROXY_TOKEN }, warm: true });
  const { KillBill } = await import('@saasodoo/platform/billing/killbill');
  const { db } = await import('@saasodoo/platform/db/index');
  const { callbackUrl } = await import('@saasodoo/platform/billing/webhook');
  const { buildEvent, send } = await import('@saasodoo/platform/emit');
  const kb = new KillBill({ url: p.killbill });
  const sink = `http://127.0.0.1:${p.env.BROKER_PORT}`;
  try {
    // Customers with a running trial instance each: the ones the load logs in, reads and acts on.
    const users: TestUser[] = [];
    const instances = new Map<TestUser, string>();
    for (let i = 0; i < 6; i++) {
      const u = await createTestUser({ firstName: `Soak${i}` });
      // The contact mails go to, as signup's user.registered gives it (createTestUser writes the user directly).
      await send(buildEvent('com.saasodoo.user.registered', { customerId: u.userId, email: u.email, firstName: u.firstName, lastName: u.lastName }, { subject: u.userId }), sink);
      users.push(u);
      const r = await call(p, 'POST /api/instances', 'POST', '/api/instances', {
        user: u,
        body: { name: `Soak ${i}`, subdomain: `soak${i}-${randomUUID().slice(0, 6)}`, plan: 'basic-monthly', odooVersion: '17', trial: true },
        ok: [202],
      });
      if (r.status === 202) instances.set(u, r.body.id);
    }
    for (const id of instances.values()) {
      for (let i = 0; i < 300; i++) {
        const s = (await db('instance').one<{ status: string }>('SELECT status FROM instances WHERE id = $1', [id])).status;
        if (s !== 'pending_payment' && s !== 'provisioning') break;
        await sleep(1000);
      }
    }
    const states = await db('instance').manyOrNone<{ status: string }>('SELECT status FROM instances');
    log(`${states.filter((x) => x.status === 'running').length} of ${instances.size} instances running; load starts`);
    requests = 0;
    errors = 0;
    errorKinds.clear();
    window.clear();

    const samples: Sample[] = [];
    const start = Date.now();
    const end = start + MINUTES * 60_000;
    let tick = 0;
    let nextSample = start + 60_000;
    const inflight = new Set<Promise<unknown>>();
    readings.clear();
    const reader = setInterval(() => readMemory(p), 1000);
    const target = new URL(callbackUrl());
    target.host = new URL(p.gateway).host;
    while (Date.now() < end) {
      const u = users[tick % users.length];
      const id = instances.get(u);
      const kind = tick % 20;
      let job: Promise<unknown>;
      if (kind < 2) {
        job = call(p, 'POST /api/signup', 'POST', '/api/signup', {
          body: { email: `soak-${randomUUID()}@example.com`, password: `Soak ${randomBytes(9).toString('base64url')} load`, firstName: 'Soak', lastName: 'Test', acceptTerms: true },
          ok: [202],
        });
      } else if (kind < 5) {
        job = call(p, 'POST /api/login', 'POST', '/api/login', { body: { email: u.email, password: u.password }, ok: [200] });
      } else if (kind < 13) {
        job = call(p, 'GET /api/instances', 'GET', `/api/instances${id && kind % 2 ? `?id=${id}` : ''}`, { user: u, ok: [200] });
      } else if (kind < 15) {
        job = call(p, 'GET /api/billing', 'GET', '/api/billing', { user: u, ok: [200] });
      } else if (kind === 15 && id) {
        // Actions the instance's status allows now; a 409 (busy with the last one) is an answer, not an error.
        job = call(p, 'POST /api/instance-action', 'POST', '/api/instance-action', { user: u, body: { id, action: tick % 40 < 20 ? 'restart' : 'backup' }, ok: [200, 202, 409] });
      } else if (kind < 18) {
        // A notification Kill Bill pushed before, pushed again (its retries do this): a duplicate to absorb.
        job = (async () => {
          const n = await db('billing').oneOrNone<{ body: unknown }>('SELECT body FROM kb_inbox ORDER BY random() LIMIT 1');
          if (n) await call(p, 'POST /api/webhook-intake', 'POST', `${target.pathname}${target.search}`, { body: n.body, ok: [200] });
        })();
      } else {
        job = call(p, 'GET /api/plans', 'GET', '/api/plans', { ok: [200] });
      }
      // A job's own failure (the duplicate push reads the database first) is an error of the run, not a crash of the soak.
      const tracked: Promise<unknown> = job.catch((err: Error) => {
        requests++;
        errors++;
        const k = `load ${err.message.slice(0, 80)}`;
        errorKinds.set(k, (errorKinds.get(k) ?? 0) + 1);
      });
      inflight.add(tracked);
      void tracked.finally(() => inflight.delete(tracked));
      tick++;
      if (Date.now() >= nextSample) {
        // Kill Bill's day goes by: invoices, payments, phase changes pushed to webhook-intake.
        void kb.moveClock({ days: 1 }).catch((err: Error) => log(`clock move failed: ${err.message}`));
        const s = sample(p, samples.length + 1);
        samples.push(s);
        log(
          `minute ${s.minute}: ${requests} requests, ${errors} errors (${[...errorKinds].map(([k, v]) => `${k} × ${v}`).join(', ') || 'none'}), queues ${s.queues}, host ${s.mem.get('host')?.toFixed(0)} MB`,
        );
        nextSample += 60_000;
      }
      const due = start + (tick * 1000) / RATE;
      if (due > Date.now()) await sleep(due - Date.now());
    }
    clearInterval(reader);
    await Promise.allSettled([...inflight]);
    if (samples.length < MINUTES) samples.push(sample(p, samples.length + 1));
    // The last sample, once the load stopped and the queues had 60 s to drain.
    let drained = queueDepths();
    for (let i = 0; i < 60 && [...(drained ?? [])].some(([n, d]) => d > 0 && !n.endsWith('.dlq')); i++) {
      await sleep(1000);
      drained = queueDepths();
    }
    const problems = judge(samples, drained ?? new Map());
    printTable(samples);
    log(`requests: ${requests}, errors: ${errors} (${((errors / Math.max(1, requests)) * 100).toFixed(3)}%)`);
    for (const [k, v] of errorKinds) log(`  error: ${k} × ${v}`);
    if (problems.length) {
      log(`FOUND ${problems.length} problem(s):`);
      for (const pr of problems) log(`  ✗ ${pr}`);
    } else log('no unbounded memory growth, every queue drained, error rate and p99 within bounds');
    return problems.length ? 1 : 0;
  } finally {
    await p.stop().catch(() => {});
  }
}

function judge(samples: Sample[], finalQueues: Map<string, number>): string[] {
  const problems: string[] = [];
  if (samples.length < 2) return ['fewer than 2 samples: run longer (SOAK_MINUTES)'];
  const half = samples.slice(Math.floor(samples.length / 2));
  const names = new Set(samples.flatMap((s) => [...s.mem.keys()]));
  for (const n of names) {
    const growth = memoryGrowth(
      samples.filter((s) => s.mem.has(n)).map((s) => ({ minute: s.minute, mb: s.mem.get(n)! })),
      SLOPE_MB_MIN,
    );
    if (growth) problems.push(`${n}: ${growth}`);
    const pts = half.filter((s) => s.fds.has(n));
    const fd = fitSlope(
      pts.map((s) => s.minute),
      pts.map((s) => s.fds.get(n) ?? 0),
    ).slope;
    if (pts.length >= 2 && fd > 2) problems.push(`${n}: open handles grow ${fd.toFixed(1)} per minute over the last half`);
  }
  const queues = new Set(samples.flatMap((s) => [...s.queueByName.keys()]));
  for (const q of queues) {
    if (samples.every((s) => (s.queueByName.get(q) ?? 0) > 0)) problems.push(`queue ${q} held messages at every sample: it never drains`);
    if ((finalQueues.get(q) ?? 0) > 0) problems.push(`queue ${q} still holds ${finalQueues.get(q)} message(s) 60 s after the load stopped`);
  }
  for (const [q, d] of finalQueues) if (q.endsWith('.dlq') && d > 0) problems.push(`${d} event(s) dead-lettered in ${q}`);
  const last = samples.at(-1)!;
  if (last.errors / Math.max(1, last.requests) > 0.001) problems.push(`error rate ${((last.errors / last.requests) * 100).toFixed(3)}% (> 0.1%)`);
  const first = samples[0];
  for (const [ep, v] of last.p99) {
    const f = first.p99.get(ep);
    if (f !== undefined && v > 2 * f && v - f > P99_FLOOR_MS) problems.push(`${ep}: p99 ${f.toFixed(0)} ms in minute 1, ${v.toFixed(0)} ms in minute ${last.minute} (more than doubled)`);
  }
  return problems;
}

function printTable(samples: Sample[]): void {
  const names = [...new Set(samples.flatMap((s) => [...s.mem.keys()]))].sort();
  const eps = [...new Set(samples.flatMap((s) => [...s.p99.keys()]))].sort();
  log('memory (MB, lowest RSS of the minute) / open handles per process, by minute:');
  process.stdout.write(`${'process'.padEnd(22)}${samples.map((s) => `m${s.minute}`.padStart(10)).join('')}\n`);
  for (const n of names) process.stdout.write(`${n.padEnd(22)}${samples.map((s) => (s.mem.has(n) ? `${s.mem.get(n)!.toFixed(0)}/${s.fds.get(n) ?? '-'}` : '-').padStart(10)).join('')}\n`);
  process.stdout.write(`${'queued messages'.padEnd(22)}${samples.map((s) => String(s.queues).padStart(10)).join('')}\n`);
  log('p99 latency (ms) per endpoint, by minute:');
  for (const e of eps) process.stdout.write(`${e.padEnd(30)}${samples.map((s) => (s.p99.has(e) ? s.p99.get(e)!.toFixed(0) : '-').padStart(8)).join('')}\n`);
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`soak crashed: ${err?.stack ?? err}\n`);
    process.exit(2);
  },
);
