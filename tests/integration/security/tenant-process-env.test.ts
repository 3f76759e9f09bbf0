/**
 * Tenant process environment (issue 15.9): a local-runtime instance process
 * (the stand-in, or ODOO_COMMAND) used to inherit the host's whole
 * environment, service secrets included, readable by any code the tenant
 * runs. It now gets only PATH/HOME/locale and the Odoo contract's variables.
 * Checked on the real spawned processes through /proc/<pid>/environ.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { config } from '@saasodoo/platform/config';
import { dropNamespace } from '@saasodoo/platform/db/migrate';
import { odooPasswordHash } from '@saasodoo/platform/odoo/contract';
import { STANDIN, startLocalRuntime, type LocalRuntime } from '@saasodoo/platform/runtime/local/daemon';
import { LocalDriver } from '@saasodoo/platform/runtime/local/driver';
import type { InstanceSpec } from '@saasodoo/platform/runtime/types';
import { createInstanceDb } from '../../helpers/instance-db.ts';

const token = randomBytes(16).toString('hex');
const canary = `canary-${randomBytes(16).toString('hex')}`;
// Secrets the host really holds (names from config.ts), plus one of our own.
const HOST_SECRETS = { WEBHOOK_TOKEN: canary, KILLBILL_API_SECRET: canary, TENANT_ENV_TEST_SECRET: canary };
const saved: Record<string, string | undefined> = {};
const runtimes: LocalRuntime[] = [];
const started: { driver: LocalDriver; id: string }[] = [];

/** The environment of a live process, as the kernel shows it. */
function environOf(pid: number): Record<string, string> {
  const raw = fs.readFileSync(`/proc/${pid}/environ`, 'utf8');
  return Object.fromEntries(
    raw
      .split('\0')
      .filter(Boolean)
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
}

async function runInstance(odooCommand?: string): Promise<{ env: Record<string, string>; spec: InstanceSpec }> {
  const portBase = 20_000 + Math.floor(Math.random() * 20_000);
  // A data dir per daemon: a second daemon on the same one would adopt (and restart) the first one's instance.
  const dataDir = path.join(config().dataDir, `tenant-env-${runtimes.length}`);
  const rt = await startLocalRuntime({ port: 0, dataDir, token, portBase, odooCommand, baseDomain: 'localhost', gatewayPort: 8080, scheme: 'http', readyTimeoutMs: 20_000 });
  runtimes.push(rt);
  const driver = new LocalDriver({ url: rt.url, token, dataDir });
  const short = randomBytes(4).toString('hex');
  const spec: InstanceSpec = {
    id: `00000000-0000-4000-8000-${randomBytes(6).toString('hex')}`,
    customerId: 'c1',
    name: 'Env Check',
    subdomain: `env-${short}`,
    odooVersion: '17',
    plan: 'basic-monthly',
    resources: { cpu: 1, memoryMiB: 2048, storageGiB: 10 },
    database: await createInstanceDb(short),
    masterPasswordHash: await odooPasswordHash(randomBytes(12).toString('hex'), { rounds: 1000 }),
  };
  started.push({ driver, id: spec.id });
  await driver.apply(spec);
  await driver.waitReady(spec.id, 20_000);
  const pid = Number(fs.readFileSync(path.join(driver.instanceDir(spec.id), 'pid'), 'utf8'));
  expect(pid).toBeGreaterThan(0);
  return { env: environOf(pid), spec };
}

function expectMinimal(env: Record<string, string>, spec: InstanceSpec) {
  expect(JSON.stringify(env)).not.toContain(canary);
  for (const k of Object.keys(HOST_SECRETS)) expect(env).not.toHaveProperty(k);
  // The Odoo contract: its port and its own database, nothing of the platform's.
  expect(env).toMatchObject({ PGDATABASE: spec.database.name, PGUSER: spec.database.user, PGPASSWORD: spec.database.password, SAASODOO_INSTANCE: spec.id });
  expect(Number(env.PORT)).toBeGreaterThan(0);
  const allowed = new Set(['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'SAASODOO_INSTANCE', 'PORT', 'INSTANCE_NAME', 'ODOO_VERSION', 'PGHOST', 'PGPORT', 'PGUSER', 'PGPASSWORD', 'PGDATABASE']);
  // `sh` adds PWD (and may add SHLVL, _) itself.
  expect(Object.keys(env).filter((k) => !allowed.has(k) && !['PWD', 'SHLVL', '_', 'OLDPWD'].includes(k))).toEqual([]);
}

beforeAll(() => {
  for (const [k, v] of Object.entries(HOST_SECRETS)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
});

afterAll(async () => {
  for (const s of started) await s.driver.remove(s.id).catch(() => {});
  for (const rt of runtimes) await rt.stop();
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  await dropNamespace();
});

describe('tenant process environment', () => {
  it("the stand-in gets the Odoo contract's variables and PATH, not the host's secrets", async () => {
    const { env, spec } = await runInstance();
    expectMinimal(env, spec);
    expect(env.PATH).toBe(process.env.PATH);
  });

  it('an ODOO_COMMAND process (through sh) gets no host secret either', async () => {
    const { env, spec } = await runInstance(`exec '${process.execPath}' '${STANDIN}'`);
    expectMinimal(env, spec);
  });
});
