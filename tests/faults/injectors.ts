/**
 * The fault suite's faults 5–8 (issue 25), each something the runner owns so
 * it can be broken without touching what other people on the machine use:
 *
 * - a private `redis-server` on a port of its own, restarted for real (its
 *   data is gone after, as after a real Redis restart without persistence);
 * - an SMTP server that refuses every mail (451) while `refuse` is on and
 *   otherwise stores mails where the platform's catcher would;
 * - a TCP proxy between the functions and the Kill Bill simulator, cut to
 *   make Kill Bill unreachable (the simulator keeps pushing notifications);
 * - SIGKILL of a function process, the supervisor starting it again;
 * - the run's own PostgreSQL cluster and RabbitMQ node (FAULT_RESTARTS=real),
 *   restarted for real without touching the machine's shared ones.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SMTPServer } from 'smtp-server';
import { destroyPgServer, pgServerUnavailable, startPgServer } from '../helpers/pg-server.ts';
import { freePort } from '../helpers/ports.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export type PrivateRedis = { url: string; restart(): Promise<void>; stop(): Promise<void> };

async function waitPort(port: number, ms: number): Promise<void> {
  const net = await import('node:net');
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        r(true);
      });
      s.on('error', () => r(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${port} after ${ms} ms`);
    await sleep(50);
  }
}

/** A redis-server of the suite's own (no persistence, like the machine's), so restarting it breaks no one else. */
export async function privateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    await waitPort(port, 10_000);
  };
  const stop = async () => {
    const c = child;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await exited;
  };
  await start();
  // Not left running when the suite is interrupted (run.ts turns SIGINT/SIGTERM into an exit).
  process.once('exit', () => child?.kill('SIGKILL'));
  return {
    url: `redis://127.0.0.1:${port}`,
    async restart() {
      await stop();
      await sleep(1000);
      await start();
    },
    stop,
  };
}

export type RefusingSmtp = { url: string; refuse: boolean; refused: number; stop(): Promise<void> };

/**
 * Stores each mail as `<n>.eml` in `dir` (where the catcher would, so the
 * suite counts them the same way); while `refuse` is set, answers every
 * MAIL FROM with 451, a temporary failure a sender must retry.
 */
export async function refusingSmtp(dir: string): Promise<RefusingSmtp> {
  fs.mkdirSync(dir, { recursive: true });
  let n = 0;
  const state = { refuse: false, refused: 0 };
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    logger: false,
    onMailFrom(_address, _session, done) {
      if (state.refuse) {
        state.refused++;
        return done(Object.assign(new Error('Try again later'), { responseCode: 451 }));
      }
      done();
    },
    onData(stream, _session, done) {
      const id = `${Date.now()}-${n++}`;
      const tmp = path.join(dir, `.${id}.tmp`);
      const out = fs.createWriteStream(tmp);
      stream.pipe(out);
      out.on('error', done);
      out.on('finish', () => {
        fs.renameSync(tmp, path.join(dir, `${id}.eml`));
        done();
      });
    },
  });
  server.on('error', () => {});
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  return {
    url: `smtp://127.0.0.1:${port}`,
    get refuse() {
      return state.refuse;
    },
    set refuse(v: boolean) {
      state.refuse = v;
    },
    get refused() {
      return state.refused;
    },
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** `rabbitmqctl` against one node. */
export type RabbitCtl = (args: string[]) => SpawnSyncReturns<string>;

/** The machine's own node (the default `rabbitmqctl` target). */
export const machineRabbit: RabbitCtl = (args) => spawnSync('rabbitmqctl', args, { encoding: 'utf8', timeout: 30_000 });

/**
 * Messages in this run's RabbitMQ queues (ready + unacknowledged), by queue,
 * read from the node with `rabbitmqctl` (not through the suite's proxy, so it
 * answers while the platform's connections are cut). Queues are named after
 * BROKER_NAME, which the test env makes unique per run.
 */
export function queueDepths(ctl: RabbitCtl = machineRabbit, prefix = process.env.BROKER_NAME ?? ''): Map<string, number> | undefined {
  const r = ctl(['list_queues', '-q', '--no-table-headers', 'name', 'messages']);
  if (r.status !== 0) return undefined;
  const out = new Map<string, number>();
  for (const line of r.stdout.split('\n')) {
    const [name, n] = line.trim().split(/\s+/);
    if (name?.startsWith(`${prefix}.`)) out.set(name.slice(prefix.length + 1), Number(n));
  }
  return out;
}

/**
 * Fault 9's runtime (`FAULT_DRIVER=docker`): the platform's env for the
 * docker driver with the stand-in image the tests build (nothing pulled);
 * none otherwise, so the default run stays on the local driver.
 */
export async function dockerDriverEnv(): Promise<Record<string, string>> {
  if (process.env.FAULT_DRIVER !== 'docker') return {};
  const { testOdooImage } = await import('../helpers/docker-image.ts');
  return { RUNTIME_DRIVER: 'docker', ODOO_IMAGE: await testOdooImage(), DOCKER_NETWORK: 'host' };
}

/**
 * Removes every instance container of this run (containers outlive the
 * platform, as on Kubernetes): those whose data is under `dataDir`.
 */
export async function removeRunContainers(dataDir: string): Promise<void> {
  if (process.env.FAULT_DRIVER !== 'docker') return;
  const { docker } = await import('../helpers/docker-image.ts');
  const { INSTANCE_LABEL } = await import('@saasodoo/platform/runtime/docker/driver');
  for (const c of await docker.listContainers({ all: true, filters: { label: [INSTANCE_LABEL] } })) {
    if (c.Mounts.some((m) => m.Source.startsWith(`${dataDir}/`)))
      await docker
        .getContainer(c.Id)
        .remove({ force: true, v: true })
        .catch(() => {});
  }
}

/** `docker kill` of an instance's container, from outside the platform; the start time of the run it killed. */
export async function killInstanceContainer(instanceId: string): Promise<string> {
  const { docker } = await import('../helpers/docker-image.ts');
  const { containerName } = await import('@saasodoo/platform/runtime/docker/driver');
  const c = docker.getContainer(containerName(instanceId));
  const startedAt = (await c.inspect()).State.StartedAt;
  await c.kill();
  return startedAt;
}

/** Whether the instance's container runs a later start than `startedAt`. */
export async function containerRunsAgain(instanceId: string, startedAt: string): Promise<boolean> {
  const { docker } = await import('../helpers/docker-image.ts');
  const { containerName } = await import('@saasodoo/platform/runtime/docker/driver');
  const s = (await docker.getContainer(containerName(instanceId)).inspect()).State;
  return s.Running && s.StartedAt !== startedAt;
}

export type PrivatePostgres = { adminUrl: string; port: number; restart(): Promise<void>; stop(): Promise<void> };

/**
 * A PostgreSQL cluster of the run's own (tests/helpers/pg-server.ts: initdb
 * and pg_ctl as the postgres user on a free port, fsync off), so a real
 * restart (`pg_ctl stop -m fast`, then start) ends only this run's sessions.
 */
export async function privatePostgres(): Promise<PrivatePostgres> {
  const why = pgServerUnavailable();
  if (why) throw new Error(`FAULT_RESTARTS=real needs a private PostgreSQL cluster: ${why} (or use FAULT_RESTARTS=proxy)`);
  const s = await startPgServer();
  // Not left running when the run is interrupted (run.ts turns SIGINT/SIGTERM into an exit).
  const pgCtl = ['17', '16', '15'].map((v) => `/usr/lib/postgresql/${v}/bin/pg_ctl`).find((f) => fs.existsSync(f));
  process.once('exit', () => {
    if (pgCtl && fs.existsSync(path.join(s.dir, 'server', 'data'))) spawnSync('runuser', ['-u', 'postgres', '--', pgCtl, '-D', path.join(s.dir, 'server', 'data'), '-m', 'immediate', 'stop']);
  });
  return {
    adminUrl: `postgres://${s.user}:${s.password}@${s.host}:${s.port}/postgres`,
    port: s.port,
    async restart() {
      await s.stop();
      await sleep(1000);
      await s.start();
    },
    stop: () => destroyPgServer(s),
  };
}

export type PrivateRabbit = { url: string; node: string; ctl: RabbitCtl; restart(): Promise<void>; stop(): Promise<void> };

const RABBIT_BIN = '/usr/lib/rabbitmq/bin';

/**
 * A RabbitMQ node of the run's own: its own node name, AMQP and distribution
 * ports on loopback, data, logs, config (none: the machine's
 * /etc/rabbitmq files name the shared node's port) and Erlang cookie (HOME),
 * so `rabbitmqctl -n <node> stop` and a fresh start are a real broker restart
 * (durable queues and their messages come back from its own data folder)
 * that nobody else sees. It registers with the machine's epmd, as any node does.
 */
export async function privateRabbit(): Promise<PrivateRabbit> {
  if (!fs.existsSync(path.join(RABBIT_BIN, 'rabbitmq-server'))) {
    throw new Error(`FAULT_RESTARTS=real needs RabbitMQ's ${RABBIT_BIN}/rabbitmq-server for a private node (apt-get install rabbitmq-server, or use FAULT_RESTARTS=proxy)`);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'faults-rabbit-'));
  const node = `faults-${process.pid}@localhost`;
  for (const [f, text] of [
    ['rabbitmq.conf', ''],
    ['env.conf', ''],
    ['enabled_plugins', '[].\n'],
  ]) {
    fs.writeFileSync(path.join(dir, f), text);
  }
  let port = 0;
  let env: NodeJS.ProcessEnv = {};
  let child: ChildProcess | undefined;
  const ctl: RabbitCtl = (args) => spawnSync(path.join(RABBIT_BIN, 'rabbitmqctl'), ['-n', node, ...args], { env, cwd: dir, encoding: 'utf8', timeout: 60_000 });
  const start = async () => {
    const out = fs.openSync(path.join(dir, 'server.out'), 'a');
    const c = spawn(path.join(RABBIT_BIN, 'rabbitmq-server'), [], { env, cwd: dir, stdio: ['ignore', out, out] });
    child = c;
    fs.closeSync(out);
    const exited = new Promise<void>((_, reject) => c.once('exit', (code) => reject(new Error(`rabbitmq-server exited (${code}); see ${dir}/server.out`))));
    exited.catch(() => {});
    await Promise.race([waitPort(port, 120_000), exited]);
  };
  const stop = async () => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    ctl(['stop']);
    await Promise.race([exited, sleep(30_000)]);
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  };
  // A port taken between the pick and the node's listen (the pick is released first): pick again.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    const dist = await freePort();
    env = {
      ...process.env,
      HOME: dir,
      RABBITMQ_CONF_ENV_FILE: path.join(dir, 'env.conf'),
      RABBITMQ_CONFIG_FILE: path.join(dir, 'rabbitmq.conf'),
      RABBITMQ_ENABLED_PLUGINS_FILE: path.join(dir, 'enabled_plugins'),
      RABBITMQ_NODENAME: node,
      RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
      RABBITMQ_NODE_PORT: String(port),
      RABBITMQ_DIST_PORT: String(dist),
      RABBITMQ_MNESIA_BASE: path.join(dir, 'mnesia'),
      RABBITMQ_LOG_BASE: path.join(dir, 'log'),
      RABBITMQ_PID_FILE: path.join(dir, 'pid'),
      ERL_EPMD_ADDRESS: '127.0.0.1',
      ERL_FLAGS: '-kernel inet_dist_use_interface {127,0,0,1}',
    };
    try {
      await start();
      break;
    } catch (err) {
      await stop();
      if (attempt >= 3) throw err;
    }
  }
  process.once('exit', () => child?.kill('SIGKILL'));
  return {
    url: `amqp://guest:guest@127.0.0.1:${port}`,
    node,
    ctl,
    async restart() {
      await stop();
      await sleep(1000);
      await start();
    },
    async stop() {
      await stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
