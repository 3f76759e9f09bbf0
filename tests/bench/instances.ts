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
