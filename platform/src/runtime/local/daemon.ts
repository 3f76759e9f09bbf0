/**
 * The local runtime daemon: the long-lived owner of local instance processes
 * (functions are short-lived and scale to zero, so they cannot be parents of
 * instances). It plays kubelet + API server for the `local` driver: keeps
 * each instance's desired state in `DATA_DIR/instances/<id>/spec.json`,
 * runs ODOO_COMMAND or the stand-in on a port of its own, routes
 * `<subdomain>.localhost` for the gateway (stopped / suspended pages when not
 * running), measures storage against the quota, and on start brings back the
 * instances that should run. Its API is loopback-only and needs a bearer
 * token from the local secrets file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { timingSafeEqual } from 'node:crypto';
import { EventEmitter } from 'node:events';
import fs from 'node:fs/promises';
import { readFileSync, watch } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { repoRoot } from '../../config.ts';
import type { InstanceRouter } from '../../host/gateway.ts';
import { log } from '../../log.ts';
import { probeOne } from '../health.ts';
import { duBytes, portFree } from '../host-util.ts';
import { isPageState, statusPage } from '../status-page.ts';
import type { InstanceSpec, QuotaUsage, RuntimeStatus } from '../types.ts';
import { assertSafeId } from '../backup-store.ts';
import { configFile, initArgs, neutralizeArgs, ODOO_PATHS, ODOO_SERVING_LINE, serveArgs, serveSettingsOf, targetOf } from '../../odoo/contract.ts';

const GiB = 1024 ** 3;
/** The Odoo stand-in, run with plain `node` (see standin.mjs). */
export const STANDIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'standin.mjs');

/** Longest a status request may wait for a change (`GET /instances/<id>?changedFrom=<state>&waitMs=<n>`). */
const MAX_STATUS_WAIT_MS = 30_000;

export const instanceSpecSchema = z.object({
  id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/),
  customerId: z.string().min(1),
  name: z.string().min(1).max(200),
  subdomain: z.string().regex(/^[a-z0-9](?:[a-z0-9-]{1,48})[a-z0-9]$/),
  odooVersion: z.string().regex(/^[0-9]{2}(\.[0-9])?$/),
  plan: z.string().min(1),
  resources: z.object({ cpu: z.number().positive(), memoryMiB: z.number().int().positive(), storageGiB: z.number().positive() }),
  database: z.object({
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535),
    name: z.string().regex(/^[a-z0-9_]{1,63}$/),
    user: z.string().regex(/^[a-z0-9_]{1,63}$/),
    password: z.string().min(1),
  }),
  masterPasswordHash: z
    .string()
    .regex(/^\$pbkdf2-sha512\$\d+\$[A-Za-z0-9./]+\$[A-Za-z0-9./]+$/)
    .optional(),
  demoData: z.boolean().optional(),
  lang: z
    .string()
    .regex(/^[a-z]{2,3}(_[A-Za-z0-9]{2,4})?(@[a-z]+)?$/)
    .optional(),
});

export type LocalRuntimeOptions = {
  /** API port on 127.0.0.1 (0 = random). */
  port: number;
  dataDir: string;
  /** Bearer token the driver must send. */
  token: string;
  /** First port for instance processes. */
  portBase: number;
  /** The command that runs real Odoo (the contract's arguments are appended); unset runs the stand-in. */
  odooCommand?: string;
  /** How public URLs look: {scheme}://{sub}.{baseDomain}:{gatewayPort}. */
  baseDomain: string;
  gatewayPort: number;
  scheme: 'http' | 'https';
  /** How long a started process may take to answer /web/health before it counts as failed. */
  readyTimeoutMs: number;
  /** How long Odoo's init (`-i base --stop-after-init`) may take; default readyTimeoutMs. */
  initTimeoutMs?: number;
};

export type LocalRuntime = { url: string; port: number; router: InstanceRouter; stop(): Promise<void> };

type Persisted = { spec: InstanceSpec; replicas: 0 | 1; suspended: boolean; port: number; quotaBytes: number };
type Live = { child?: ChildProcess; healthy: boolean; failure?: string; stopping?: boolean };
type Instance = Persisted & { live: Live };

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** What a tenant process may take from the host's environment: enough to find programs and run in the host's locale. */
const TENANT_HOST_VARS = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ'];

/**
 * The base environment of a tenant process (the stand-in or ODOO_COMMAND),
 * never the host's whole environment: that holds the platform's secrets
 * (JWT keys, database and broker passwords, tokens), which a tenant's code
 * could read from its own environment.
 */
export function tenantBaseEnv(host: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return Object.fromEntries(TENANT_HOST_VARS.filter((k) => host[k] !== undefined).map((k) => [k, host[k]]));
}

/** One argument single-quoted for `sh -c`. */
export function shellQuote(v: string): string {
  return `'${v.replace(/'/g, `'\\''`)}'`;
}

/** Starts the daemon: loads instances from disk, restarts those that should run, serves the API. */
export async function startLocalRuntime(opts: LocalRuntimeOptions): Promise<LocalRuntime> {
  const root = path.join(opts.dataDir, 'instances');
  await fs.mkdir(root, { recursive: true, mode: 0o700 });
  const instances = new Map<string, Instance>();
  const locks = new Map<string, Promise<unknown>>();
  let closing = false;
  /**
   * Emits an instance id whenever its status may have changed (an operation
   * ended, the process became ready or exited), for status requests that
   * wait for a change. Mid-operation states (replicas 1 before the process
   * is spawned reads as failed) are not announced: waiters skip ids with an
   * operation in progress and hear from the operation's end.
   */
  const changes = new EventEmitter().setMaxListeners(0);
  const changed = (id: string) => changes.emit('change', id);

  /** Serialises operations on one instance. */
  function locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = locks.get(id) ?? Promise.resolve();
    const next = prev.catch(() => {}).then(fn);
    locks.set(id, next);
    next
      .finally(() => {
        if (locks.get(id) === next) locks.delete(id);
        changed(id);
      })
      .catch(() => {});
    return next;
  }

  const dirOf = (id: string) => path.join(root, id);

  async function persist(inst: Instance) {
    const { live: _live, ...p } = inst;
    const file = path.join(dirOf(inst.spec.id), 'spec.json');
    await fs.writeFile(`${file}.tmp`, JSON.stringify(p, null, 2), { mode: 0o600 });
    await fs.rename(`${file}.tmp`, file);
  }

  async function allocatePort(): Promise<number> {
    const used = new Set([...instances.values()].map((i) => i.port));
    for (let p = opts.portBase; p < opts.portBase + 20_000 && p <= 65535; p++) {
      if (!used.has(p) && (await portFree(p))) return p;
    }
    throw new ApiError(503, 'no_port', 'no free port for the instance');
  }

  function urlOf(spec: InstanceSpec): string {
    const defaultPort = opts.scheme === 'https' ? 443 : 80;
    return `${opts.scheme}://${spec.subdomain}.${opts.baseDomain}${opts.gatewayPort === defaultPort ? '' : `:${opts.gatewayPort}`}`;
  }

  function statusOf(inst: Instance): RuntimeStatus & { pid?: number } {
    const base = { url: urlOf(inst.spec), healthUrl: `http://127.0.0.1:${inst.port}${ODOO_PATHS.readiness}`, replicas: inst.replicas };
    if (inst.suspended) return { ...base, state: 'suspended' };
    if (inst.replicas === 0) return { ...base, state: 'stopped' };
    const child = inst.live.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return { ...base, state: 'failed', reason: inst.live.failure ?? 'the process is not running' };
    return { ...base, state: inst.live.healthy ? 'running' : 'starting', pid: child.pid };
  }

  async function startProcess(inst: Instance) {
    const c = inst.live.child;
    if (c && c.exitCode === null && c.signalCode === null) return;
    if (!(await portFree(inst.port))) {
      inst.port = await allocatePort();
      await persist(inst);
    }
    const { spec } = inst;
    const dir = dirOf(spec.id);
    const env: NodeJS.ProcessEnv = {
      ...tenantBaseEnv(),
      SAASODOO_INSTANCE: spec.id,
      PORT: String(inst.port),
      INSTANCE_NAME: spec.name,
      ODOO_VERSION: spec.odooVersion,
      PGHOST: spec.database.host,
      PGPORT: String(spec.database.port),
      PGUSER: spec.database.user,
      PGPASSWORD: spec.database.password,
      PGDATABASE: spec.database.name,
    };
    const logFile = path.join(dir, 'instance.log');
    const logFd = await fs.open(logFile, 'a', 0o600);
    const logStart = (await logFd.stat()).size;
    const [cmd, args] = odooCommandLine(serveArgs(targetOf(spec), await writeOdooConf(inst)));
    const child = spawn(cmd, args, { cwd: repoRoot, env, stdio: ['ignore', logFd.fd, logFd.fd], detached: true });
    await logFd.close();
    inst.live = { child, healthy: false };
    await fs.writeFile(path.join(dir, 'pid'), String(child.pid ?? ''), { mode: 0o600 });
    child.on('exit', (code, signal) => {
      if (inst.live.child !== child) return;
      inst.live.healthy = false;
      inst.live.failure = signal ? `the process was killed (${signal})` : `the process exited with code ${code}`;
      if (!inst.live.stopping && !closing) log.warn({ instance: spec.id, code, signal }, 'instance process exited');
      changed(spec.id);
    });
    void watchHealth(inst, child, logFile, logStart);
  }

  /**
   * odoo.conf in the instance directory (owner-only: it holds the database
   * password and the master password hash); data_dir is the instance
   * directory itself, so filestore, sessions and addons all persist there.
   */
  async function writeOdooConf(inst: Instance): Promise<string> {
    const file = path.join(dirOf(inst.spec.id), 'odoo.conf');
    const text = configFile(targetOf(inst.spec), serveSettingsOf(inst.spec, { dataDir: dirOf(inst.spec.id), httpPort: inst.port, httpInterface: '127.0.0.1', workers: 0 }));
    await fs.writeFile(`${file}.tmp`, text, { mode: 0o600 });
    await fs.rename(`${file}.tmp`, file);
    return file;
  }

  /** ODOO_COMMAND with the contract's arguments (each quoted for sh), or the stand-in with the same arguments. */
  function odooCommandLine(args: string[]): [string, string[]] {
    return opts.odooCommand ? ['sh', ['-c', `${opts.odooCommand} ${args.map(shellQuote).join(' ')}`]] : [process.execPath, [STANDIN, ...args]];
  }

  /**
   * Odoo's own initialisation (`-i base --stop-after-init`) with the
   * instance's config, to completion. Fails with the exit code and the last
   * line Odoo printed (it prints no secrets: the password is in odoo.conf).
   */
  function initialize(inst: Instance) {
    return runOnce(inst, 'init', (conf) => initArgs(targetOf(inst.spec), conf));
  }

  /** `odoo neutralize` (contract.ts neutralizeArgs) on a staging copy, stopped, the same way as init. */
  function neutralize(inst: Instance) {
    return runOnce(inst, 'neutralize', (conf) => neutralizeArgs(targetOf(inst.spec), conf));
  }

  /** One Odoo command to completion with the instance stopped (init, neutralize); fails with the exit reason and Odoo's last line. */
  async function runOnce(inst: Instance, what: 'init' | 'neutralize', argsFor: (conf: string) => string[]) {
    await stopProcess(inst);
    const { spec } = inst;
    const logFile = path.join(dirOf(spec.id), `${what}.log`);
    const logFd = await fs.open(logFile, 'w', 0o600);
    const [cmd, args] = odooCommandLine(argsFor(await writeOdooConf(inst)));
    const env: NodeJS.ProcessEnv = { ...tenantBaseEnv(), SAASODOO_INSTANCE: spec.id, INSTANCE_NAME: spec.name, ODOO_VERSION: spec.odooVersion };
    const child = spawn(cmd, args, { cwd: repoRoot, env, stdio: ['ignore', logFd.fd, logFd.fd], detached: true });
    await logFd.close();
    const timeoutMs = opts.initTimeoutMs ?? opts.readyTimeoutMs;
    const result = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; timedOut?: boolean }>((resolve) => {
      const timer = setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          /* gone */
        }
        resolve({ code: null, signal: 'SIGKILL', timedOut: true });
      }, timeoutMs);
      child.once('error', () => {
        clearTimeout(timer);
        resolve({ code: 127, signal: null });
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal });
      });
    });
    if (result.code === 0) return;
    const last = (await fs.readFile(logFile, 'utf8').catch(() => '')).trim().split('\n').filter(Boolean).at(-1) ?? '';
    const why = result.timedOut ? `did not finish within ${Math.round(timeoutMs / 1000)} s` : result.signal ? `was killed (${result.signal})` : `exited with code ${result.code}`;
    throw new ApiError(500, 'failed', `Odoo ${what} ${why}${last ? `: ${last.slice(0, 200)}` : ''}`);
  }

  /**
   * Marks the instance healthy once it is ready, woken by events rather than
   * a timer: the process's log (fs.watch) saying it serves, then one
   * readiness probe (Odoo answers and its database server is reachable), or
   * the process's exit. A process that never logs that line (an
   * ODOO_COMMAND logging elsewhere) is still found by a probe that backs off
   * to every 2 s; once the line is seen, a failed probe (database not yet
   * reachable) is retried after 100 ms.
   */
  async function watchHealth(inst: Instance, child: ChildProcess, logFile: string, logStart: number) {
    const deadline = Date.now() + opts.readyTimeoutMs;
    const current = () => inst.live.child === child && child.exitCode === null && child.signalCode === null;
    // `dirty` keeps an event that lands while no one waits (between a look and the next wait).
    let dirty = false;
    let wake = () => {};
    const poke = () => {
      dirty = true;
      wake();
    };
    const watcher = (() => {
      try {
        return watch(logFile, poke);
      } catch {
        return undefined; // no inotify: the backing-off probe still finds it
      }
    })();
    child.once('exit', poke);
    let offset = logStart;
    let tail = '';
    /** Reads what the process logged since the last look; true once it said it serves. */
    const saysServing = async () => {
      dirty = false;
      const fd = await fs.open(logFile, 'r').catch(() => undefined);
      if (!fd) return false;
      try {
        const { bytesRead, buffer } = await fd.read({ buffer: Buffer.alloc(64 * 1024), position: offset });
        offset += bytesRead;
        tail = (tail + buffer.subarray(0, bytesRead).toString('utf8')).slice(-4096);
        return tail.includes(ODOO_SERVING_LINE); // waits for Odoo's serving line instead of probing an instance that cannot answer yet
      } finally {
        await fd.close();
      }
    };
    const ready = async () => {
      const r = await probeOne(`http://127.0.0.1:${inst.port}${ODOO_PATHS.readiness}`, 2000);
      if (!r.ok || inst.live.child !== child) return false;
      inst.live.healthy = true;
      changed(inst.spec.id);
      return true;
    };
    /** Resolves true after `ms`, or false as soon as the log grows or the process exits. */
    const woken = (ms: number) =>
      new Promise<boolean>((resolve) => {
        if (dirty) return resolve(false);
        const t = setTimeout(() => resolve(true), ms);
        wake = () => {
          clearTimeout(t);
          resolve(false);
        };
      }).finally(() => (wake = () => {}));
    let serving = false;
    let backoff = 250;
    try {
      while (current() && Date.now() < deadline) {
        serving ||= await saysServing();
        if (serving && (await ready())) return;
        if (serving) {
          await new Promise((res) => setTimeout(res, 100)); // it serves but its database is not reachable yet
        } else if (await woken(backoff)) {
          backoff = Math.min(backoff * 2, 2000);
          if (await ready()) return;
        }
      }
    } finally {
      watcher?.close();
      child.off('exit', poke);
    }
    if (inst.live.child === child && !inst.live.healthy && child.exitCode === null) {
      inst.live.failure = `no answer on /web/health within ${Math.round(opts.readyTimeoutMs / 1000)} s`;
      await stopProcess(inst);
    }
  }

  async function stopProcess(inst: Instance) {
    const child = inst.live.child;
    if (!child) return;
    inst.live.stopping = true;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      const kill = (sig: NodeJS.Signals) => {
        try {
          process.kill(-child.pid!, sig);
        } catch {
          /* already gone */
        }
      };
      kill('SIGTERM');
      const t = setTimeout(() => kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    inst.live = { healthy: false, failure: inst.live.failure };
    await fs.rm(path.join(dirOf(inst.spec.id), 'pid'), { force: true });
  }

  /** Kills a process group left by a previous daemon, if it is really ours. */
  async function killStale(id: string) {
    const pid = Number(await fs.readFile(path.join(dirOf(id), 'pid'), 'utf8').catch(() => ''));
    if (!pid) return;
    try {
      const environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
      if (environ.split('\0').includes(`SAASODOO_INSTANCE=${id}`)) process.kill(-pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }

  async function reconcile(inst: Instance) {
    if (inst.replicas === 1 && !inst.suspended) await startProcess(inst);
    else await stopProcess(inst);
  }

  // ---- operations ----
  async function apply(spec: InstanceSpec, desired: { replicas?: 0 | 1; suspended?: boolean }) {
    const clash = [...instances.values()].find((i) => i.spec.subdomain === spec.subdomain && i.spec.id !== spec.id);
    if (clash) throw new ApiError(409, 'subdomain_taken', `subdomain ${spec.subdomain} is used by another instance`);
    const dir = dirOf(spec.id);
    for (const sub of ['addons', 'filestore', 'sessions']) await fs.mkdir(path.join(dir, sub), { recursive: true, mode: 0o700 });
    const suspended = desired.suspended ?? false;
    const replicas = suspended ? 0 : (desired.replicas ?? 1);
    let inst = instances.get(spec.id);
    const changed = inst && JSON.stringify(inst.spec) !== JSON.stringify(spec);
    if (!inst) {
      inst = { spec, replicas, suspended, port: await allocatePort(), quotaBytes: Math.round(spec.resources.storageGiB * GiB), live: { healthy: false } };
      instances.set(spec.id, inst);
    } else {
      Object.assign(inst, { spec, replicas, suspended, quotaBytes: Math.round(spec.resources.storageGiB * GiB) });
    }
    await persist(inst);
    if (changed) await stopProcess(inst);
    await reconcile(inst);
  }

  function need(id: string): Instance {
    const inst = instances.get(id);
    if (!inst) throw new ApiError(404, 'not_found', `no instance ${id} in the local runtime`);
    return inst;
  }

  async function scale(id: string, replicas: 0 | 1, suspended: boolean) {
    const inst = need(id);
    inst.suspended = suspended;
    inst.replicas = suspended ? 0 : replicas;
    await persist(inst);
    // Scaling 1 -> 1 after a crash restarts the process (like a pod restart).
    await reconcile(inst);
  }

  async function remove(id: string) {
    const inst = instances.get(id);
    if (inst) await stopProcess(inst);
    else await killStale(id);
    instances.delete(id);
    await fs.rm(dirOf(id), { recursive: true, force: true });
  }

  async function usage(id: string): Promise<QuotaUsage> {
    const inst = need(id);
    const used = await duBytes(dirOf(id));
    return { usedBytes: used, limitBytes: inst.quotaBytes, exceeded: used > inst.quotaBytes };
  }

  // ---- boot: bring back what should run ----
  for (const id of await fs.readdir(root)) {
    try {
      const p = JSON.parse(await fs.readFile(path.join(root, id, 'spec.json'), 'utf8')) as Persisted;
      await killStale(id);
      instances.set(id, { ...p, live: { healthy: false } });
    } catch {
      /* a directory without a spec: not ours to run */
    }
  }
  for (const inst of instances.values()) {
    if (inst.replicas === 1 && !inst.suspended) await startProcess(inst).catch((err) => log.warn({ err, instance: inst.spec.id }, 'restart failed'));
  }

  // ---- HTTP API ----
  const tokenBuf = Buffer.from(`Bearer ${opts.token}`);
  const authorized = (req: IncomingMessage) => {
    const got = Buffer.from(String(req.headers.authorization ?? ''));
    return got.length === tokenBuf.length && timingSafeEqual(got, tokenBuf);
  };
  const readJson = async (req: IncomingMessage): Promise<any> => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    try {
      return raw ? JSON.parse(raw) : {};
    } catch {
      throw new ApiError(400, 'invalid_json', 'body is not JSON');
    }
  };
  const send = (res: ServerResponse, status: number, body: unknown) => {
    const data = JSON.stringify(body ?? {});
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) });
    res.end(data);
  };
  const desiredSchema = z.object({ replicas: z.union([z.literal(0), z.literal(1)]).optional(), suspended: z.boolean().optional() });

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://runtime');
    if (url.pathname === '/healthz') return send(res, 200, { ok: true, instances: instances.size });
    if (!authorized(req)) throw new ApiError(401, 'unauthorized', 'bad or missing token');
    const m = url.pathname.match(/^\/instances\/([^/]+)(?:\/([a-z]+))?$/);
    if (!m) throw new ApiError(404, 'not_found', 'no such route');
    const id = decodeURIComponent(m[1]);
    try {
      assertSafeId(id, 'instance id');
    } catch (err) {
      throw new ApiError(400, 'invalid', (err as Error).message);
    }
    const action = `${req.method} ${m[2] ?? ''}`;
    switch (action) {
      case 'GET ': {
        const from = url.searchParams.get('changedFrom');
        const waitMs = Math.min(Number(url.searchParams.get('waitMs') ?? 0) || 0, MAX_STATUS_WAIT_MS);
        return send(res, 200, from && waitMs > 0 ? await statusChange(id, from, waitMs, res) : currentStatus(id));
      }
      case 'PUT ': {
        const body = await readJson(req);
        const spec = instanceSpecSchema.safeParse(body.spec);
        const desired = desiredSchema.safeParse(body.desired ?? {});
        if (!spec.success) throw new ApiError(400, 'invalid', `spec: ${spec.error.issues.map((i) => `${i.path.join('.')} ${i.message}`).join('; ')}`);
        if (!desired.success) throw new ApiError(400, 'invalid', 'desired: replicas 0|1, suspended boolean');
        if (spec.data.id !== id) throw new ApiError(400, 'invalid', 'spec.id does not match the URL');
        await locked(id, () => apply(spec.data, desired.data));
        return send(res, 200, statusOf(need(id)));
      }
      case 'POST scale': {
        const body = desiredSchema.safeParse(await readJson(req));
        if (!body.success || body.data.replicas === undefined) throw new ApiError(400, 'invalid', 'replicas: 0 or 1');
        await locked(id, () => scale(id, body.data.replicas!, body.data.suspended ?? false));
        return send(res, 200, statusOf(need(id)));
      }
      case 'DELETE ':
        await locked(id, () => remove(id));
        return send(res, 200, { state: 'missing' });
      case 'PUT quota': {
        const body = await readJson(req);
        if (!Number.isSafeInteger(body.bytes) || body.bytes <= 0) throw new ApiError(400, 'invalid', 'bytes: a positive integer');
        await locked(id, async () => {
          const inst = need(id);
          inst.quotaBytes = body.bytes;
          await persist(inst);
        });
        return send(res, 200, await usage(id));
      }
      case 'POST init':
        await locked(id, () => initialize(need(id)));
        return send(res, 200, statusOf(need(id)));
      case 'POST neutralize':
        await locked(id, () => neutralize(need(id)));
        return send(res, 200, statusOf(need(id)));
      case 'GET usage':
        return send(res, 200, await usage(id));
      default:
        throw new ApiError(405, 'method_not_allowed', `${req.method} not allowed here`);
    }
  }

  function currentStatus(id: string): RuntimeStatus {
    const inst = instances.get(id);
    return inst ? statusOf(inst) : { state: 'missing' };
  }

  /**
   * The status once it is no longer `from` (or after `waitMs`, or when the
   * caller hangs up): a driver waiting for an instance to run asks again on
   * each change, instead of asking every 100 ms.
   */
  function statusChange(id: string, from: string, waitMs: number, res: ServerResponse): Promise<RuntimeStatus> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        changes.off('change', onChange);
        res.off('close', done);
        resolve(currentStatus(id));
      };
      const settled = () => !locks.has(id) && currentStatus(id).state !== from;
      const onChange = (changedId: string) => changedId === id && settled() && done();
      const timer = setTimeout(done, waitMs);
      changes.on('change', onChange);
      res.once('close', done); // the caller hung up
      if (settled() || closing) done();
    });
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err) => {
      if (res.headersSent) return res.destroy();
      if (err instanceof ApiError) return send(res, err.status, { error: { code: err.code, message: err.message } });
      log.error({ err }, 'local runtime error');
      send(res, 500, { error: { code: 'internal', message: 'internal error' } });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  const router: InstanceRouter = async (sub) => {
    const inst = [...instances.values()].find((i) => i.spec.subdomain === sub);
    if (!inst) return undefined;
    const st = statusOf(inst);
    if (isPageState(st.state)) return { page: statusPage(st.state, inst.spec.name) };
    return { port: inst.port };
  };

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    router,
    async stop() {
      closing = true;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      // The host is stopping: stop the processes but keep desired state, so the next start brings them back.
      await Promise.all([...instances.values()].map((i) => stopProcess(i).catch(() => {})));
    },
  };
}
