/**
 * Provisioning benchmark: Kill Bill SUBSCRIPTION_CREATION → instance
 * `running` with the local driver, through the real lifecycle, outbox,
 * provision steps and runtime (the in-test dispatcher of the instance test
 * harness stands for the broker), against the sum of the irreducible steps
 * measured in the same run by tests/bench/runtime.ts: create role, create
 * database, make dirs, the template copy (CREATE DATABASE … TEMPLATE,
 * REASSIGN OWNED, own secret/uuid, filestore), Odoo configure, spawn to
 * ready. The first instance of the run makes the template (Odoo's init) and
 * is reported on its own row, against the plain-init floor. Medians and their
 * ratio; no assertion on time.
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { resetConfig } from '@saasodoo/platform/config';
import { closeDatabases } from '@saasodoo/platform/db/index';
import { irreducibleSteps } from './runtime.ts';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function bench(opts: { quick: boolean }) {
  const n = opts.quick ? 2 : 5;
  // An isolated namespace, as tests/helpers/setup-env.ts gives each test file.
  const id = `b${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const saved = { ...process.env };
  Object.assign(process.env, {
    DB_NAMESPACE: `${id}_`,
    REDIS_PREFIX: `${id}:`,
    BROKER_NAME: id,
    DATA_DIR: path.join(os.tmpdir(), 'saasodoo-bench', id),
    LOG_LEVEL: 'silent',
    NODE_ENV: 'test',
  });
  await closeDatabases();
  resetConfig();
  const { startHarness, call, deliver, row } = await import('../integration/instances/harness.ts');
  const { createTestUser } = await import('../helpers/auth.ts');
  const h = await startHarness({ realBilling: true, dispatch: true });
  const times: number[] = [];
  // Where the time goes: from the delivery to each event the run wrote (progress steps, commands), to running.
  const phases = new Map<string, number[]>();
  const { db } = await import('@saasodoo/platform/db/index');
  try {
    // One more than measured: the first makes the template database.
    for (let i = 0; i <= n; i++) {
      const u = await createTestUser();
      const r = await call(h.fn.instances, u.accessToken, {
        body: { name: 'Bench', subdomain: `bench-${id}-${i}`, plan: 'basic-monthly', odooVersion: '17', trial: true },
      });
      if (r.status !== 202) throw new Error(`create: ${r.status} ${JSON.stringify(r.body)}`);
      const sub = (await row(r.body.id)).subscription_id;
      const t0 = performance.now();
      const wall0 = Date.now();
      await deliver(h.extra.lifecycle, 'org.killbill.subscription_creation', {
        eventType: 'SUBSCRIPTION_CREATION',
        accountId: null,
        objectType: 'SUBSCRIPTION',
        objectId: sub,
        metaData: null,
      });
      for (;;) {
        const s = (await row(r.body.id)).status;
        if (s === 'running') break;
        if (s === 'error') throw new Error('provisioning failed');
        if (performance.now() - t0 > 60_000) throw new Error('not running after 60 s');
        await new Promise((w) => setTimeout(w, 5));
      }
      times.push(performance.now() - t0);
      const wallEnd = Date.now();
      if (i > 0) {
        const marks = await db('instance').manyOrNone<{ type: string; step: string | null; at: Date }>(
          `SELECT type, data->>'step' AS step, created_at AS at FROM outbox WHERE subject = $1 AND created_at >= $2 ORDER BY created_at, id`,
          [r.body.id, new Date(wall0 - 5)],
        );
        let prev = { label: 'delivery → first event', at: wall0 };
        for (const m of [...marks.map((x) => ({ label: x.step ? `step ${x.step}` : x.type.replace(/^com\.saasodoo\./, ''), at: x.at.getTime() })), { label: 'end', at: wallEnd }]) {
          phases.set(prev.label, [...(phases.get(prev.label) ?? []), m.at - prev.at]);
          prev = m;
        }
      }
    }
  } finally {
    await h.stop();
    process.env = saved;
    resetConfig();
  }
  const steps = await irreducibleSteps(n);
  const common = steps.role + steps.database + steps.dirs + steps.odooConfigure + steps.spawnHealthy;
  const floor = common + steps.templateCopy;
  const plainFloor = common + steps.odooInit;
  const [first, ...rest] = times;
  const total = median(rest);
  return [
    ...[...phases].map(([label, xs]) => ({ name: `provisioning timeline: ${label} → next event (median of ${xs.length})`, value: `${median(xs).toFixed(0)} ms` })),
    { name: `of which Odoo init, stand-in (plain init; median of ${n})`, value: `${steps.odooInit.toFixed(0)} ms` },
    {
      name: `of which template copy (median of ${n})`,
      value: `${steps.templateCopy.toFixed(0)} ms`,
      baseline: `${steps.odooInit.toFixed(0)} ms (plain init)`,
      ratio: `${(steps.templateCopy / steps.odooInit).toFixed(2)}x`,
    },
    { name: `of which Odoo configure (median of ${n})`, value: `${steps.odooConfigure.toFixed(0)} ms` },
    {
      name: `SUBSCRIPTION_CREATION → running from the template, median of ${n}`,
      value: `${total.toFixed(0)} ms`,
      baseline: `${floor.toFixed(0)} ms (irreducible steps)`,
      ratio: `${(total / floor).toFixed(2)}x`,
    },
    {
      name: "first SUBSCRIPTION_CREATION → running of the run (makes the template with Odoo's init)",
      value: `${first.toFixed(0)} ms`,
      baseline: `${plainFloor.toFixed(0)} ms (irreducible steps with a plain init)`,
      ratio: `${(first / plainFloor).toFixed(2)}x`,
    },
  ];
}
