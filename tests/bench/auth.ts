/**
 * Accounts figures (issue 4): login throughput next to raw argon2id verify
 * throughput on the same machine in the same run (login is bound by the
 * hash, so the ratio shows what the rest of the request costs), and 500
 * concurrent signups (errors must be 0; p99 latency). Runs in its own
 * database namespace and Redis prefix, dropped at the end.
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resetConfig } from '@saasodoo/platform/config';
import { closeDatabases } from '@saasodoo/platform/db/index';
import { dropNamespace, migrate } from '@saasodoo/platform/db/migrate';
import { startFunction } from '@saasodoo/platform/host/run-function';
import { log } from '@saasodoo/platform/log';
import { closeRedis } from '@saasodoo/platform/redis';
import { resetKeyRing } from '@saasodoo/platform/auth/keys';
import { resetSigningKey } from '@saasodoo/platform/auth/signing';
import { hashPassword, verifyPassword } from '@saasodoo/platform/auth/passwords';
import { createTestUser, TEST_PASSWORD } from '../helpers/auth.ts';
import { freePort } from '../helpers/ports.ts';
import { pool, pct } from './_kit.ts';

const CONCURRENCY = 8;

async function serve(name: string): Promise<{ url: string; server: Server }> {
  const mod = await import(`../../functions/${name}/index.ts`);
  const server = await startFunction(mod.default, await freePort());
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, server };
}

function post(url: string, body: unknown, ip: string): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': ip }, body: JSON.stringify(body) });
}

export async function bench(opts: { quick: boolean }) {
  const saved = { ...process.env };
  const id = `b${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  Object.assign(process.env, { DB_NAMESPACE: `${id}_`, REDIS_PREFIX: `${id}:`, DATA_DIR: path.join(os.tmpdir(), 'saasodoo-bench', id), LOG_LEVEL: 'error' });
  await closeDatabases();
  await closeRedis();
  resetConfig();
  resetKeyRing();
  resetSigningKey();
  const servers: Server[] = [];
  const level = log.level;
  log.level = 'error'; // per-login audit lines would drown the table
  try {
    await migrate({ databases: ['auth'] });
    const n = opts.quick ? 40 : 200;

    // raw argon2id verify, same parameters, same concurrency
    const phc = await hashPassword(TEST_PASSWORD);
    const rawSeconds = await pool(n, CONCURRENCY, async () => {
      if (!(await verifyPassword(phc, TEST_PASSWORD))) throw new Error('verify failed');
    });
    const rawRate = n / rawSeconds;

    // login through the function (HTTP, validation, rate-limit checks, argon2, session row, Redis, JWT)
    const login = await serve('login');
    servers.push(login.server);
    const users = await Promise.all(Array.from({ length: 8 }, () => createTestUser()));
    let loginErrors = 0;
    const loginSeconds = await pool(n, CONCURRENCY, async (i) => {
      const u = users[i % users.length];
      const r = await post(login.url, { email: u.email, password: TEST_PASSWORD }, `10.1.${i >> 8}.${i & 255}`);
      await r.arrayBuffer();
      if (r.status !== 200) loginErrors++;
    });
    const loginRate = n / loginSeconds;

    // concurrent signups, each from its own client address (the limit is 10 per IP per hour)
    const signup = await serve('signup');
    servers.push(signup.server);
    const m = opts.quick ? 100 : 500;
    const latencies: number[] = [];
    let signupErrors = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: m }, async (_, i) => {
        const s = performance.now();
        try {
          const r = await post(
            signup.url,
            { email: `bench-${i}-${id}@example.test`, password: 'a sensible passphrase 42', firstName: 'B', lastName: 'M', acceptTerms: true },
            `10.2.${i >> 8}.${i & 255}`,
          );
          await r.arrayBuffer();
          if (r.status !== 202) signupErrors++;
        } catch {
          signupErrors++;
        }
        latencies.push(performance.now() - s);
      }),
    );
    const signupSeconds = (performance.now() - t0) / 1000;
    latencies.sort((a, b) => a - b);

    return [
      {
        name: `login throughput (${n} logins, concurrency ${CONCURRENCY}, ${os.cpus().length} cores)`,
        value: `${loginRate.toFixed(1)}/s (errors ${loginErrors})`,
        baseline: `raw argon2id verify ${rawRate.toFixed(1)}/s`,
        ratio: (loginRate / rawRate).toFixed(2),
      },
      { name: `${m} concurrent signups: errors`, value: String(signupErrors) },
      { name: `${m} concurrent signups: latency`, value: `p50 ${pct(latencies, 50).toFixed(0)} ms, p99 ${pct(latencies, 99).toFixed(0)} ms`, baseline: `all done in ${signupSeconds.toFixed(1)} s` },
    ];
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    await closeRedis();
    await closeDatabases();
    await dropNamespace().catch(() => {});
    for (const k of ['DB_NAMESPACE', 'REDIS_PREFIX', 'DATA_DIR', 'LOG_LEVEL']) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
    resetConfig();
    resetKeyRing();
    resetSigningKey();
    log.level = level;
  }
}
