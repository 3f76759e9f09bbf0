/**
 * Accounts figures (issue 4): login throughput next to raw argon2id verify
 * throughput on the same machine in the same run (login is bound by the
 * hash, so the ratio shows what the rest of the request costs), and 500
 * concurrent signups (errors must be 0; p99 latency). The HTTP load comes
 * from autocannon in a separate process (each login and signup its own
 * body and client address); the functions run here. Runs in its own
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
import { perRequest, pool, profiled, withCpu } from './_kit.ts';
import { autocannonShots } from './_load.ts';

const CONCURRENCY = 8;

async function serve(name: string): Promise<{ url: string; server: Server }> {
  const mod = await import(`../../functions/${name}/index.ts`);
  const server = await startFunction(mod.default, await freePort());
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, server };
}

const JSON_HEADERS = { 'content-type': 'application/json' };

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
    const [rawSeconds, [rawCpu]] = await withCpu([process.pid], () =>
      pool(n, CONCURRENCY, async () => {
        if (!(await verifyPassword(phc, TEST_PASSWORD))) throw new Error('verify failed');
      }),
    );
    const rawRate = n / rawSeconds;

    // login through the function (HTTP, validation, rate-limit checks, argon2, session row, Redis, JWT)
    const login = await serve('login');
    servers.push(login.server);
    const users = await Promise.all(Array.from({ length: 8 }, () => createTestUser()));
    const loginShots = (count: number, net: number) =>
      Array.from({ length: count }, (_, i) => ({
        body: JSON.stringify({ email: users[i % users.length].email, password: TEST_PASSWORD }),
        headers: { 'x-forwarded-for': `10.${net}.${i >> 8}.${i & 255}` },
      }));
    // Warm-up (JIT, database and Redis connections), as the raw verify had its hash made first.
    await autocannonShots(login.url, { connections: CONCURRENCY, headers: JSON_HEADERS, shots: loginShots(2 * CONCURRENCY, 3) });
    // login runs in this process: its CPU (argon2's threads included) per login, against the raw verify's.
    const [logins, [loginCpu]] = await withCpu([process.pid], () => profiled('login', () => autocannonShots(login.url, { connections: CONCURRENCY, headers: JSON_HEADERS, shots: loginShots(n, 1) })));
    const loginErrors = logins.errors + logins.non2xx;
    const loginRate = logins.rps;

    // concurrent signups, each from its own client address (the limit is 10 per IP per hour)
    const signup = await serve('signup');
    servers.push(signup.server);
    const m = opts.quick ? 100 : 500;
    const signups = await autocannonShots(signup.url, {
      connections: m,
      headers: JSON_HEADERS,
      shots: Array.from({ length: m }, (_, i) => ({
        body: JSON.stringify({ email: `bench-${i}-${id}@example.test`, password: 'a sensible passphrase 42', firstName: 'B', lastName: 'M', acceptTerms: true }),
        headers: { 'x-forwarded-for': `10.2.${i >> 8}.${i & 255}` },
      })),
    });
    const signupErrors = signups.errors + signups.non2xx;
    const signupSeconds = signups.requests / signups.rps;

    return [
      {
        name: `login throughput (${n} logins, concurrency ${CONCURRENCY}, ${os.cpus().length} cores)`,
        value: `${loginRate.toFixed(1)}/s (errors ${loginErrors})`,
        baseline: `raw argon2id verify ${rawRate.toFixed(1)}/s`,
        ratio: (loginRate / rawRate).toFixed(2),
      },
      {
        name: 'login CPU per login (this process, argon2 threads included) vs raw argon2id verify',
        value: perRequest(loginCpu, n),
        baseline: perRequest(rawCpu, n),
        ratio: (loginCpu / rawCpu).toFixed(2),
      },
      { name: `${m} concurrent signups: errors`, value: String(signupErrors) },
      { name: `${m} concurrent signups: latency`, value: `p50 ${signups.p50.toFixed(0)} ms, p99 ${signups.p99.toFixed(0)} ms`, baseline: `all done in ${signupSeconds.toFixed(1)} s` },
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
