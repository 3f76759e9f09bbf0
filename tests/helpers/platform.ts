/**
 * The whole platform for integration suites, started the one way the host
 * starts it (`up()` from platform/src/host/up.ts): broker, Kill Bill
 * simulator, SMTP catcher, local runtime, schedules, every function and the
 * gateway, on random free ports, in the test file's own DB_NAMESPACE /
 * REDIS_PREFIX / BROKER_NAME / DATA_DIR (tests/helpers/setup-env.ts), with
 * TEST_PLANS on and short Kill Bill retries. The portal is left out unless
 * asked for (the e2e harness asks).
 *
 *   const p = await startPlatform();               // in this process
 *   await fetch(`${p.gateway}/api/plans`);
 *   await p.stop();                                 // stops everything, drops the namespace
 *
 *   const p = await startPlatformProcess();         // in a child process, every log line captured
 *   p.logs();                                       // host + function output so far
 *
 * Function processes inherit the host's stdout/stderr file descriptors, so
 * only a host running as a child process with piped output lets a test read
 * every log line (the secret scan does).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot, resetConfig } from '@saasodoo/platform/config';
import { freePort, freePortRange } from './ports.ts';

export type PlatformOptions = {
  /** Env that wins over the defaults set here (and over the caller's process env). */
  env?: Record<string, string>;
  /** Host services to leave out (default: the portal). */
  skip?: string[];
  /** Only these functions (default: all). */
  only?: string[];
  /** Keep the DB namespace and DATA_DIR after stop (debugging). */
  keep?: boolean;
  /** Start these functions (scaled to zero otherwise) before resolving, a few at a time; `true` = every HTTP function. */
  warm?: string[] | true;
};

export type Platform = {
  gateway: string;
  killbill: string;
  dataDir: string;
  /** The env the platform was started with (ports, URLs). */
  env: Record<string, string>;
  /** The in-process host (undefined for a child process platform). */
  host?: import('@saasodoo/platform/host/up').Host;
  stop(): Promise<void>;
};

/**
 * Picks free ports and the test settings for a platform run. Exported for
 * the child-process variant and the e2e harness, which add to it.
 */
export async function platformEnv(extra: Record<string, string> = {}): Promise<Record<string, string>> {
  const ports = {
    GATEWAY_PORT: await freePort(),
    BROKER_PORT: await freePort(),
    KILLBILL_SIM_PORT: await freePort(),
    STRIPE_SIM_PORT: await freePort(),
    SMTP_PORT: await freePort(),
    PORTAL_PORT: await freePort(),
    LOCAL_RUNTIME_PORT: await freePort(),
    OPERATOR_PORT: await freePort(),
    FUNCTION_PORT_BASE: await freePortRange(40),
    LOCAL_INSTANCE_PORT_BASE: await freePortRange(20),
  };
  const env: Record<string, string> = Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)]));
  env.GATEWAY_URL = `http://127.0.0.1:${ports.GATEWAY_PORT}`;
  env.PUBLIC_URL = `http://localhost:${ports.PORTAL_PORT}`;
  env.TEST_PLANS = 'true';
  env.KILLBILL_SIM_RETRIES = '200ms,500ms,1s';
  env.HEALTH_INTERVAL_SECONDS = process.env.HEALTH_INTERVAL_SECONDS ?? '5';
  env.PROVISION_READY_TIMEOUT = process.env.PROVISION_READY_TIMEOUT ?? '60';
  return { ...env, ...extra };
}

/** Variables that would point the platform at something else than its own services. */
const INHERITED_TARGETS = ['KILLBILL_URL', 'SMTP_URL', 'K_SINK', 'KILLBILL_CALLBACK_BASE'];

const dataDirOf = () => path.resolve(repoRoot, process.env.DATA_DIR ?? '.data');

/** Where a started platform answers, from the env it was started with (read once it runs). */
function locate(env: Record<string, string>): Pick<Platform, 'gateway' | 'killbill' | 'dataDir' | 'env'> {
  return { gateway: env.GATEWAY_URL, killbill: `http://127.0.0.1:${env.KILLBILL_SIM_PORT}`, dataDir: dataDirOf(), env };
}

async function cleanup(dataDir: string): Promise<void> {
  const { dropNamespace } = await import('@saasodoo/platform/db/migrate');
  await dropNamespace().catch(() => {});
  await dropBroker().catch(() => {});
  fs.rmSync(dataDir, { recursive: true, force: true });
}

/**
 * Deletes this run's broker (its exchange and every trigger's four queues). RabbitMQ keeps durable queues
 * after the platform stops: without this, each test file left about 240 behind (10,000 after a few runs).
 */
async function dropBroker(): Promise<void> {
  const [{ default: amqp }, { config }, { loadTriggers }, { exchangeName, queueNames }] = await Promise.all([
    import('amqplib'),
    import('@saasodoo/platform/config'),
    import('@saasodoo/events/triggers'),
    import('@saasodoo/platform/broker/topology'),
  ]);
  const c = config();
  const conn = await amqp.connect(c.RABBITMQ_URL);
  try {
    const ch = await conn.createChannel();
    for (const t of loadTriggers({ functionExists: () => true })) for (const q of Object.values(queueNames(c.BROKER_NAME, t.name))) await ch.deleteQueue(q);
    await ch.deleteExchange(exchangeName(c.BROKER_NAME));
  } finally {
    await conn.close();
  }
}

/**
 * Cold-starts functions up front (3 at a time, which the 2-core CI box
 * takes best), so a suite's first requests do not each pay a start.
 */
export async function warm(supervisor: import('@saasodoo/platform/host/supervisor').Supervisor, which: string[] | true): Promise<void> {
  const names =
    which === true
      ? supervisor
          .status()
          .filter((f) => f.invoke === 'http')
          .map((f) => f.name)
      : which;
  const queue = [...names];
  await Promise.all(
    Array.from({ length: 3 }, async () => {
      // Best effort: a function that fails to start here is started (or reported) by the first request.
      for (let n = queue.shift(); n; n = queue.shift()) await supervisor.url(n).catch(() => {});
    }),
  );
}

/**
 * Starts the platform in this process. Env set here wins over the
 * developer's: random ports, TEST_PLANS on, short Kill Bill retries.
 */
export async function startPlatform(opts: PlatformOptions = {}): Promise<Platform> {
  const env = await platformEnv(opts.env);
  for (const k of INHERITED_TARGETS) if (!(k in env)) delete process.env[k];
  Object.assign(process.env, env);
  resetConfig();
  const { up } = await import('@saasodoo/platform/host/up');
  const host = await up({ quiet: true, skip: opts.skip ?? ['portal'], only: opts.only });
  if (opts.warm) await warm(host.supervisor, opts.warm);
  const where = locate(env);
  return {
    ...where,
    host,
    async stop() {
      await host.stop();
      if (!opts.keep) await cleanup(where.dataDir);
    },
  };
}

export type PlatformProcess = Platform & {
  /** Every line the host and its functions wrote to stdout/stderr so far. */
  logs(): string[];
  pid: number;
};

const READY = 'PLATFORM_READY ';

/**
 * The bundle of tests/helpers/platform-child.ts: the host loads from a
 * bundle as `npm start` loads it (platform/bin/host-bundle.mjs), seconds
 * faster than under tsx.
 */
export async function platformChildBundle(): Promise<string> {
  const { hostBundle } = await import('@saasodoo/platform/bin/host-bundle');
  return hostBundle('platform-child', 'tests/helpers/platform-child.ts');
}

/**
 * Starts the platform as a child process (this file's `main`) with piped
 * stdout/stderr, in this test file's namespace; resolves once it serves.
 */
export async function startPlatformProcess(opts: PlatformOptions = {}): Promise<PlatformProcess> {
  const env = await platformEnv(opts.env);
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env, PLATFORM_SKIP: (opts.skip ?? ['portal']).join(','), PLATFORM_ONLY: (opts.only ?? []).join(',') };
  for (const k of INHERITED_TARGETS) if (!(k in env)) delete childEnv[k];
  const child = spawn(process.execPath, [await platformChildBundle()], {
    cwd: repoRoot,
    env: { ...childEnv, PLATFORM_CHILD: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let ready: (() => void) | undefined;
  const collect = (stream: NodeJS.ReadableStream) => {
    let rest = '';
    stream.on('data', (d: Buffer) => {
      const parts = (rest + d.toString('utf8')).split('\n');
      rest = parts.pop() ?? '';
      for (const l of parts) {
        if (l.startsWith(READY)) ready?.();
        else lines.push(l);
      }
    });
    stream.on('end', () => rest && lines.push(rest));
  };
  collect(child.stdout!);
  collect(child.stderr!);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  await new Promise<void>((resolve, reject) => {
    ready = resolve;
    exited.then((code) => reject(new Error(`platform process exited (code ${code}) before it was ready:\n${lines.slice(-40).join('\n')}`)));
    setTimeout(() => reject(new Error(`platform process not ready within 120 s:\n${lines.slice(-40).join('\n')}`)), 120_000).unref();
  });
  const where = locate(env);
  return {
    ...where,
    pid: child.pid!,
    logs: () => [...lines],
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      }
      if (!opts.keep) await cleanup(where.dataDir);
    },
  };
}
