/**
 * Webhook intake figures (issue 6): Kill Bill notifications accepted per
 * second (each one a transaction writing the inbox row and its outbox
 * CloudEvent, 200 after the commit) with p50/p99 latency, through the
 * gateway, measured in one run against two baselines fed the same payloads
 * at the same concurrency:
 *   - raw amqplib: a persistent publish to a durable queue awaiting the
 *     publisher confirm (what "durable" costs with no HTTP and no database);
 *   - a bare faas-js-runtime function answering 200 behind the same gateway
 *     (what the HTTP path costs with no work).
 * The intake and the bare function run as their own processes, from their
 * bundles, as the supervisor runs them; the gateway runs here, as in the
 * gateway bench; the HTTP load comes from autocannon in a separate process,
 * each request a distinct notification. Runs in its own database namespace,
 * dropped at the end. No assertion on time.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import amqp from 'amqplib';
import { config, resetConfig } from '@saasodoo/platform/config';
import { closeDatabases, db } from '@saasodoo/platform/db/index';
import { dropNamespace, migrate } from '@saasodoo/platform/db/migrate';
import { startGateway } from '@saasodoo/platform/host/gateway';
import type { Supervisor } from '@saasodoo/platform/host/supervisor';
import { log } from '@saasodoo/platform/log';
import { webhookToken } from '@saasodoo/platform/billing/webhook';
import { freePort } from '../helpers/ports.ts';
import { pct, perRequest, profiled, withCpu } from './_kit.ts';
import { autocannonShots, type Load } from './_load.ts';
import { spawnFunction, untilOk, type Proc } from './_shared.ts';

const CONCURRENCY = 32;

type Figures = { rate: number; p50: number; p99: number; ok: number };

/** Runs `task(i)` for i < n with `concurrency` in flight; rate, latency percentiles and successes. */
async function measure(n: number, concurrency: number, task: (i: number) => Promise<boolean>): Promise<Figures> {
  let next = 0;
  let ok = 0;
  const latencies: number[] = [];
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        const s = performance.now();
        if (await task(i)) ok++;
        latencies.push(performance.now() - s);
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  return { rate: n / secs, p50: pct(latencies, 50), p99: pct(latencies, 99), ok };
}

/** Notifications shaped as Kill Bill sends them, a realistic mix, each distinct (no duplicate shortcut). */
function payloads(n: number, salt: string): string[] {
  return Array.from({ length: n }, (_, i) => {
    const accountId = randomUUID();
    const objectId = randomUUID();
    switch (i % 4) {
      case 0:
        return JSON.stringify({
          eventType: 'SUBSCRIPTION_CREATION',
          accountId,
          objectType: 'SUBSCRIPTION',
          objectId,
          metaData: JSON.stringify({ actionType: 'EFFECTIVE', bundleExternalKey: randomUUID(), subscriptionChangeUndo: false }),
        });
      case 1:
        return JSON.stringify({ eventType: 'INVOICE_CREATION', accountId, objectType: 'INVOICE', objectId, metaData: null });
      case 2:
        return JSON.stringify({
          eventType: 'INVOICE_PAYMENT_SUCCESS',
          accountId,
          objectType: 'INVOICE',
          objectId,
          metaData: JSON.stringify({ invoicePaymentType: 'ATTEMPT', paymentId: randomUUID(), paymentDate: new Date().toISOString(), amount: 5, currency: 'USD', salt }),
        });
      default:
        return JSON.stringify({
          eventType: 'BLOCKING_STATE',
          accountId,
          objectType: 'ACCOUNT',
          objectId: accountId,
          metaData: JSON.stringify({ blockableId: accountId, service: 'overdue-service', stateName: 'WARNING', blockingType: 'ACCOUNT', effectiveDate: new Date().toISOString() }),
        });
    }
  });
}

/** Posts every body once, as Kill Bill posts a notification, CONCURRENCY in flight, from autocannon. */
function load(url: string, bodies: string[], overallRate?: number): Promise<Load> {
  return autocannonShots(url, {
    overallRate,
    connections: CONCURRENCY,
    headers: { 'content-type': 'application/json; charset=UTF-8', 'user-agent': 'KillBill/1.0' },
    shots: bodies.map((body) => ({ body })),
  });
}

const asFigures = (l: Load): Figures => ({ rate: l.rps, p50: l.p50, p99: l.p99, ok: l.requests - l.non2xx - l.errors });

export async function bench(opts: { quick: boolean }) {
  const n = opts.quick ? 1000 : 10_000;
  const warm = opts.quick ? 100 : 500;
  const id = `b${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const keys = ['DB_NAMESPACE', 'REDIS_PREFIX', 'BROKER_NAME', 'DATA_DIR', 'LOG_LEVEL', 'K_SINK'] as const;
  const saved = Object.fromEntries(keys.map((k) => [k, process.env[k]]));
  Object.assign(process.env, { DB_NAMESPACE: `${id}_`, REDIS_PREFIX: `${id}:`, BROKER_NAME: id, DATA_DIR: path.join(os.tmpdir(), 'saasodoo-bench', id), LOG_LEVEL: 'error' });
  delete process.env.K_SINK; // accepting is measured; the outbox relay to the broker is not part of the answer
  await closeDatabases();
  resetConfig();
  const level = log.level;
  log.level = 'error';
  const servers: http.Server[] = [];
  const procs: Proc[] = [];
  const queue = `${id}.webhook-bench`;
  const conn = await amqp.connect(config().RABBITMQ_URL, { noDelay: true });
  try {
    await migrate({ databases: ['billing'] });
    const intake = await spawnFunction('webhook-intake');
    const bareFn = await spawnFunction('bare');
    procs.push(intake, bareFn);
    await untilOk(`http://127.0.0.1:${intake.port}/health/readiness`, 0);
    await untilOk(`http://127.0.0.1:${bareFn.port}/`, 0);
    const ports: Record<string, number> = { 'webhook-intake': intake.port, bare: bareFn.port };
    const supervisor = {
      spec: (name: string) => (ports[name] ? { invoke: 'http' } : undefined),
      url: async (name: string) => `http://127.0.0.1:${ports[name]}`,
      touch: () => {},
    } as unknown as Supervisor;
    const gateway = await startGateway({ port: await freePort(), supervisor, baseDomain: 'localhost' });
    servers.push(gateway);
    const gw = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}`;
    const tenant = config().KILLBILL_API_KEY;
    const intakeUrl = `${gw}/api/webhook-intake?tenant=${encodeURIComponent(tenant)}&token=${encodeURIComponent(webhookToken(tenant))}`;
    const bareUrl = `${gw}/api/bare`;

    const bodies = payloads(n, id);
    const warmBodies = payloads(warm, `${id}-warm`);

    // 1. raw amqplib publish with confirms, persistent, to a durable queue
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue(queue, { durable: true });
    const publish = (body: string) => new Promise<boolean>((resolve) => ch.sendToQueue(queue, Buffer.from(body), { persistent: true, contentType: 'application/json' }, (err) => resolve(!err)));
    await measure(warm, CONCURRENCY, (i) => publish(warmBodies[i]));
    const raw = await measure(n, CONCURRENCY, (i) => publish(bodies[i]));

    // 2. a bare faas-js-runtime function answering 200, through the same gateway
    // CPU of the function process and of the gateway (this process) during each load: per request, what the machine spends.
    const pids = (fn: Proc) => [fn.child.pid!, process.pid];
    await load(bareUrl, warmBodies);
    const [bareLoad, bareCpu] = await withCpu(pids(bareFn), () => load(bareUrl, bodies));
    const nothing = asFigures(bareLoad);

    // 3. the intake: token check, validation, inbox + outbox in one transaction, 200 after commit
    await load(intakeUrl, warmBodies);
    const [intakeLoad, intakeCpu] = await withCpu(pids(intake), () => profiled('webhook-gateway', () => load(intakeUrl, bodies)));
    const intakeFig = asFigures(intakeLoad);
    // 4. the intake at half the rate it just sustained: the latency Kill Bill sees when the intake is not saturated.
    const halfRate = Math.max(1, Math.round(intakeFig.rate / 2));
    const half = asFigures(await load(intakeUrl, payloads(opts.quick ? 500 : 5000, `${id}-half`), halfRate));
    const stored = (await db('billing').one<{ n: number }>('SELECT count(*) AS n FROM kb_inbox')).n - warm - half.ok;

    const rate = (f: Figures) => `${f.rate.toFixed(0)}/s`;
    const ms = (x: number) => `${x.toFixed(1)} ms`;
    const label = `${n} notifications, ${CONCURRENCY} in flight, ${os.cpus().length} cores`;
    return [
      {
        name: `intake accepted via gateway (${label}; ${intakeFig.ok} answered 200, ${stored} stored) vs raw amqplib publish+confirm`,
        value: rate(intakeFig),
        baseline: rate(raw),
        ratio: `${(intakeFig.rate / raw.rate).toFixed(2)}x`,
      },
      {
        name: `intake accepted via gateway vs bare faas function via gateway (${nothing.ok} answered 200)`,
        value: rate(intakeFig),
        baseline: rate(nothing),
        ratio: `${(intakeFig.rate / nothing.rate).toFixed(2)}x`,
      },
      {
        name: 'intake process CPU per notification vs bare function process',
        value: perRequest(intakeCpu[0], n),
        baseline: perRequest(bareCpu[0], n),
        ratio: `${(intakeCpu[0] / bareCpu[0]).toFixed(2)}x`,
      },
      { name: 'gateway CPU per request: intake vs bare', value: perRequest(intakeCpu[1], n), baseline: perRequest(bareCpu[1], n), ratio: `${(intakeCpu[1] / bareCpu[1]).toFixed(2)}x` },
      { name: 'intake p50 latency vs raw amqplib confirm p50', value: ms(intakeFig.p50), baseline: ms(raw.p50), ratio: `${(intakeFig.p50 / raw.p50).toFixed(2)}x` },
      { name: 'intake p99 latency vs raw amqplib confirm p99', value: ms(intakeFig.p99), baseline: ms(raw.p99), ratio: `${(intakeFig.p99 / raw.p99).toFixed(2)}x` },
      { name: 'intake p50 latency vs bare function p50', value: ms(intakeFig.p50), baseline: ms(nothing.p50), ratio: `${(intakeFig.p50 / nothing.p50).toFixed(2)}x` },
      { name: `intake p99 latency at half load (${halfRate}/s offered, ${half.ok} answered 200; goal < 50 ms)`, value: ms(half.p99), baseline: `p50 ${ms(half.p50)}` },
      { name: "intake p99 latency vs bare function p99 (Kill Bill's timeout: 15 s)", value: ms(intakeFig.p99), baseline: ms(nothing.p99), ratio: `${(intakeFig.p99 / nothing.p99).toFixed(2)}x` },
    ];
  } finally {
    for (const p of procs) p.kill();
    await Promise.all(
      servers.map(
        (s) =>
          new Promise((r) => {
            s.closeAllConnections();
            s.close(r);
          }),
      ),
    );
    const ch = await conn.createChannel().catch(() => undefined);
    await ch?.deleteQueue(queue).catch(() => {});
    await conn.close().catch(() => {});
    await closeDatabases();
    await dropNamespace().catch(() => {});
    for (const k of keys) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
    resetConfig();
    log.level = level;
  }
}
