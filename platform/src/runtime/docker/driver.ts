/**
 * The `docker` RuntimeDriver: one host with Docker, through the Engine API
 * (dockerode). Per instance a one-shot init container (initialize: the Odoo
 * contract's `-i base --stop-after-init`), then one long-running container named after
 * the instance, labelled with instance, customer and plan, with the plan's
 * CPU and memory limits and restart policy `unless-stopped`. Odoo runs
 * without the image's entrypoint (it waits for PostgreSQL by connecting to
 * the `postgres` database, closed to tenants) and reads everything from the
 * contract's odoo.conf. Its data dir is a bind mount under the instance's
 * data folder, so backups, restores and usage are the same host code as the
 * local driver's.
 *
 * Desired state (replicas, suspended, quota, ports) is a small file per
 * instance next to its data: containers are immutable, and a stopped
 * container cannot say whether it was stopped or suspended. The runtime
 * host (host.ts) holds containers to it: one stopped outside the platform
 * while it should run is started again (restartDrifted). Waits follow the
 * engine (container.wait, the container's log), not a timer.
 */
import { ensureLocalDedicated, removeLocalDedicated } from '../dedicated-local.ts';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import Docker from 'dockerode';
import { config } from '../../config.ts';
import { log } from '../../log.ts';
import {
  configFile,
  initArgs,
  neutralizeArgs,
  ODOO_DATA_DIR,
  odooPasswordHash,
  ODOO_GEVENT_PORT,
  ODOO_HTTP_PORT,
  ODOO_PATHS,
  ODOO_RC,
  ODOO_SERVING_LINE,
  serveArgs,
  serveSettingsOf,
  targetOf,
} from '../../odoo/contract.ts';
import { BackupStore, StoredBackups, assertSafeId } from '../backup-store.ts';
import { probeOne } from '../health.ts';
import { backupOnHost, restoreOnHost } from '../host-backup.ts';
import { keepTemplateFilestoreOnHost, seedFilestoreOnHost } from '../template-filestore.ts';
import { duBytes, portFree, waitUntilRunning } from '../host-util.ts';
import { labelsFor } from '../kubernetes/objects.ts';
import { DEFAULT_PG_TOOLS, type PgTools } from '../pg-tools.ts';
import type {
  BackupKind,
  DatabaseServer,
  BackupManifest,
  BackupStep,
  DesiredState,
  InstanceSpec,
  QuotaUsage,
  ReadyProgress,
  RestoreStep,
  RuntimeDriver,
  RuntimeStatus,
  StepListener,
} from '../types.ts';
import { RuntimeError } from '../types.ts';

const GiB = 1024 ** 3;
export const INSTANCE_LABEL = 'saasodoo.io/instance-id';
const SUBDOMAIN_LABEL = 'saasodoo.io/subdomain';
const COMPONENT_LABEL = 'app.kubernetes.io/component';
/** Hash of everything the container was created from: a changed spec recreates it. */
const CONFIG_LABEL = 'saasodoo.io/config-hash';
const STATE_FILE = 'docker.json';
/** Written only by the runtime host when it starts a container that stopped outside the platform (separate from the state file, which functions write). */
const RESTARTS_FILE = 'restarts.json';
/** The ports given to an instance, written under the allocation lock before anything else knows them. */
const PORTS_FILE = 'ports.json';

/** What the runtime host records of its own restarts of an instance. */
type Restarts = { count: number; lastAt: string; exitCode: number };

export type DockerSettings = {
  /** Image template, `{version}` replaced. */
  image: string;
  /** 'host' or a bridge network name. */
  network: string;
  /** PostgreSQL's address from a container on a bridge network when the spec's host is loopback. */
  dbHost: string;
  /** DATA_DIR (instances live in DATA_DIR/instances/<id>). */
  dataDir: string;
  /** First loopback port for instances. */
  portBase: number;
  baseDomain: string;
  gatewayPort: number;
  scheme: 'http' | 'https';
};

export type DockerDriverOptions = { docker?: Docker; settings: DockerSettings; backups?: BackupStore; tools?: PgTools };

/** What the driver keeps per instance (0600: no secret in it, but the instance's layout). */
export type DockerState = {
  subdomain: string;
  name: string;
  replicas: 0 | 1;
  suspended: boolean;
  quotaBytes: number;
  /** Loopback port the gateway reaches Odoo on (host network: Odoo's own http_port). */
  httpPort: number;
  /** Host network: the gevent port of this instance (a second loopback port). */
  geventPort: number;
  /** Used when the spec brings no master password hash: a hash of a random password nobody knows, kept so odoo.conf stays the same. */
  fallbackMasterHash?: string;
  /** The container's create options, so start/scale can recreate a removed container without the spec. */
  create?: Docker.ContainerCreateOptions;
};

/** Docker status also names the container (tests inspect its HostConfig). */
export type DockerRuntimeStatus = RuntimeStatus & { container?: string };

/** Container name of an instance ("named after the instance"). */
export function containerName(id: string): string {
  return `odoo-${id.toLowerCase()}`;
}

/** Engine connection from DOCKER_HOST (unix:///path, /path, tcp://host:port); default the local socket. */
export function dockerFromHost(host?: string): Docker {
  if (!host) return new Docker({ socketPath: '/var/run/docker.sock' });
  if (host.startsWith('unix://')) return new Docker({ socketPath: host.slice('unix://'.length) });
  if (host.startsWith('/')) return new Docker({ socketPath: host });
  const u = new URL(host.replace(/^tcp:/, 'http:'));
  return new Docker({ host: u.hostname, port: Number(u.port || 2375), protocol: 'http' });
}

function httpCode(err: unknown): number | undefined {
  const c = (err as { statusCode?: unknown })?.statusCode;
  return typeof c === 'number' ? c : undefined;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

/** The text of a log buffer from the Engine API (frames of 8-byte headers when not a TTY). */
function demux(buf: Buffer): string {
  let out = '';
  let i = 0;
  while (i + 8 <= buf.length && buf[i] <= 2 && buf[i + 1] === 0) {
    const size = buf.readUInt32BE(i + 4);
    out += buf.subarray(i + 8, i + 8 + size).toString('utf8');
    i += 8 + size;
  }
  return i === 0 ? buf.toString('utf8') : out;
}

/** The first file of a tar archive (what the Engine API's archive endpoint returns for one file). */
function firstTarFile(tar: Buffer): string {
  const size = parseInt(tar.subarray(124, 136).toString('utf8').replace(/\0.*$/, '').trim(), 8) || 0;
  return tar.subarray(512, 512 + size).toString('utf8');
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks);
}

export class DockerDriver extends StoredBackups implements RuntimeDriver {
  readonly name = 'docker' as const;
  readonly backups: BackupStore;
  readonly docker: Docker;
  readonly settings: DockerSettings;
  protected readonly restoresIntoMissing = false;
  private readonly tools: PgTools;
  private readonly users = new Map<string, { uid: number; gid: number }>();
  /** The engine's CPU count (read by apply, before any container is made). */
  private ncpu?: number;

  constructor(opts: DockerDriverOptions) {
    super();
    this.settings = opts.settings;
    this.docker = opts.docker ?? new Docker();
    this.backups = opts.backups ?? new BackupStore();
    this.tools = opts.tools ?? DEFAULT_PG_TOOLS;
  }

  /** The driver for this process's config (DOCKER_HOST, ODOO_IMAGE, DOCKER_NETWORK, DOCKER_DB_HOST, DATA_DIR). */
  static fromConfig(): DockerDriver {
    return new DockerDriver({ docker: dockerFromHost(config().DOCKER_HOST), settings: dockerSettingsFromConfig() });
  }

  /**
   * The instance's dedicated PostgreSQL: a real server on this machine
   * (dedicated-local.ts). On the host network Odoo reaches it on 127.0.0.1;
   * on a bridge network it also listens on the bridge's gateway (the host's
   * own address on that bridge, not a public interface), open to the
   * bridge's subnet, and that address is the one Odoo is given.
   */
  async ensureDatabaseServer(spec: InstanceSpec, o: { adminPassword: string; fresh?: boolean }): Promise<DatabaseServer> {
    return ensureLocalDedicated(this.settings.dataDir, spec.id, { ...o, listen: await this.bridgeAddress() });
  }

  /** The bridge network's gateway and subnet (undefined on the host network). */
  private async bridgeAddress(): Promise<{ address: string; subnet: string } | undefined> {
    if (this.hostNetwork()) return undefined;
    await this.ensureNetwork();
    const net = await this.docker.getNetwork(this.settings.network).inspect();
    const v4 = (net.IPAM?.Config ?? []).find((c: { Subnet?: string; Gateway?: string }) => c.Gateway && c.Subnet && !c.Subnet.includes(':'));
    if (!v4?.Gateway || !v4.Subnet) throw new RuntimeError('failed', `network ${this.settings.network} has no IPv4 gateway for the database server to listen on`);
    return { address: v4.Gateway, subnet: v4.Subnet };
  }

  /** pg_ctl start waited for it already. */
  async waitDatabaseServer(): Promise<void> {}

  removeDatabaseServer(id: string): Promise<void> {
    return removeLocalDedicated(this.settings.dataDir, id);
  }

  /** The instance's folder: `data/` (mounted over /var/lib/odoo), `addons/`, odoo.conf, the state file. */
  instanceDir(id: string): string {
    assertSafeId(id, 'instance id');
    return path.join(this.settings.dataDir, 'instances', id);
  }

  /** Odoo's data dir on this machine (filestore/, sessions/). */
  dataDirOf(id: string): string {
    return path.join(this.instanceDir(id), 'data');
  }

  private hostNetwork(): boolean {
    return this.settings.network === 'host';
  }

  private urlOf(subdomain: string): string {
    const s = this.settings;
    const defaultPort = s.scheme === 'https' ? 443 : 80;
    return `${s.scheme}://${subdomain}.${s.baseDomain}${s.gatewayPort === defaultPort ? '' : `:${s.gatewayPort}`}`;
  }

  // ---- state file ----

  async readState(id: string): Promise<DockerState | undefined> {
    try {
      return JSON.parse(await fs.readFile(path.join(this.instanceDir(id), STATE_FILE), 'utf8'));
    } catch {
      return undefined;
    }
  }

  private async writeState(id: string, st: DockerState): Promise<void> {
    const file = path.join(this.instanceDir(id), STATE_FILE);
    await fs.writeFile(`${file}.tmp`, JSON.stringify(st, null, 2), { mode: 0o600 });
    await fs.rename(`${file}.tmp`, file);
  }

  /** Every instance this driver has state for (the host service routes and reconciles them). */
  async listStates(): Promise<{ id: string; state: DockerState }[]> {
    const root = path.join(this.settings.dataDir, 'instances');
    const ids = await fs.readdir(root).catch(() => [] as string[]);
    const out: { id: string; state: DockerState }[] = [];
    for (const id of ids) {
      const state = await this.readState(id).catch(() => undefined);
      if (state) out.push({ id, state });
    }
    return out;
  }

  /**
   * Two free loopback ports not given to another instance, chosen under a
   * lock (functions are separate processes and may provision at once) and
   * reserved under it in the instance's ports file: its state file is
   * written later, and until its container runs the ports look free, so
   * without the reservation two instances provisioned at once got the same
   * ports (found by the fault suite's docker kill: the restarted one could
   * not listen).
   */
  private async allocatePorts(id: string): Promise<{ httpPort: number; geventPort: number }> {
    const lock = path.join(this.settings.dataDir, 'instances', '.docker-ports.lock');
    for (let i = 0; ; i++) {
      try {
        await fs.mkdir(lock);
        break;
      } catch {
        const age = Date.now() - ((await fs.stat(lock).catch(() => undefined))?.mtimeMs ?? Date.now());
        if (age > 30_000) await fs.rm(lock, { recursive: true, force: true });
        if (i > 600) throw new RuntimeError('unavailable', 'the port allocation lock is held');
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    try {
      const used = new Set<number>();
      for (const { id: other, state } of await this.listStates()) if (other !== id) used.add(state.httpPort).add(state.geventPort);
      const root = path.join(this.settings.dataDir, 'instances');
      for (const other of await fs.readdir(root).catch(() => [] as string[])) {
        if (other === id || other.startsWith('.')) continue;
        const r = await fs.readFile(path.join(root, other, PORTS_FILE), 'utf8').catch(() => undefined);
        if (r) for (const p of Object.values(JSON.parse(r) as Record<string, number>)) used.add(p);
      }
      for (let p = this.settings.portBase; p + 1 <= 65535; p += 2) {
        if (used.has(p) || used.has(p + 1)) continue;
        if ((await portFree(p)) && (await portFree(p + 1))) {
          const ports = { httpPort: p, geventPort: p + 1 };
          await fs.writeFile(path.join(this.instanceDir(id), PORTS_FILE), JSON.stringify(ports), { mode: 0o600 });
          return ports;
        }
      }
      throw new RuntimeError('unavailable', 'no free port for the instance');
    } finally {
      await fs.rm(lock, { recursive: true, force: true });
    }
  }

  // ---- image ----

  private imageOf(spec: Pick<InstanceSpec, 'odooVersion'>): string {
    return this.settings.image.replaceAll('{version}', spec.odooVersion);
  }

  /** Pulls the image when it is not on this host. */
  private async ensureImage(image: string): Promise<Docker.ImageInspectInfo> {
    try {
      return await this.docker.getImage(image).inspect();
    } catch (err) {
      if (httpCode(err) !== 404) throw new RuntimeError('unavailable', `Docker is not answering (${(err as Error).message})`);
    }
    try {
      const stream = await this.docker.pull(image);
      await new Promise<void>((resolve, reject) => this.docker.modem.followProgress(stream, (e: Error | null) => (e ? reject(e) : resolve())));
      return await this.docker.getImage(image).inspect();
    } catch (err) {
      throw new RuntimeError('failed', `image ${image} is not on this host and could not be pulled: ${(err as Error).message}`);
    }
  }

  /**
   * The uid:gid the image runs as. The official image's `odoo` user is a
   * system user whose uid is not fixed, so a name is looked up in the
   * image's own /etc/passwd (read from a created, never started, container).
   */
  async imageUser(image: string): Promise<{ uid: number; gid: number }> {
    const info = await this.ensureImage(image);
    const cached = this.users.get(info.Id);
    if (cached) return cached;
    const [user = '', group] = (info.Config?.User ?? '').split(':');
    let out: { uid: number; gid: number };
    if (!user) out = { uid: 0, gid: 0 };
    else if (/^\d+$/.test(user) && (!group || /^\d+$/.test(group))) out = { uid: Number(user), gid: Number(group ?? user) };
    else {
      const c = await this.docker.createContainer({ Image: info.Id, Entrypoint: ['/nonexistent'], Cmd: [], Labels: { 'app.kubernetes.io/managed-by': 'saasodoo' } });
      try {
        const passwd = firstTarFile(await readAll(await c.getArchive({ path: '/etc/passwd' })));
        const line = passwd
          .split('\n')
          .map((l) => l.split(':'))
          .find((f) => f[0] === user || f[2] === user);
        if (!line) throw new RuntimeError('failed', `image ${image} runs as ${user}, who is not in its /etc/passwd`);
        out = { uid: Number(line[2]), gid: Number(line[3]) };
      } finally {
        await c.remove({ v: true, force: true }).catch(() => {});
      }
    }
    this.users.set(info.Id, out);
    return out;
  }

  /** Hands the instance's files to the image's user (a restore or the first apply writes them as us). */
  private async chownTree(dir: string, u: { uid: number; gid: number }): Promise<void> {
    if (process.getuid?.() !== 0) return; // not root: the folders must already be writable by that uid
    const walk = async (p: string) => {
      await fs.lchown(p, u.uid, u.gid);
      const st = await fs.lstat(p);
      if (st.isDirectory()) for (const n of await fs.readdir(p)) await walk(path.join(p, n));
    };
    await walk(dir);
  }

  // ---- containers ----

  private container(id: string) {
    return this.docker.getContainer(containerName(id));
  }

  /** Inspect, or undefined when there is no such container. */
  async inspect(id: string): Promise<Docker.ContainerInspectInfo | undefined> {
    try {
      return await this.container(id).inspect();
    } catch (err) {
      if (httpCode(err) === 404) return undefined;
      throw new RuntimeError('unavailable', `Docker is not answering (${(err as Error).message})`);
    }
  }

  /**
   * Creates the bridge network when missing (nothing on the host network).
   * The host service calls it before starting dedicated servers, which
   * listen on the bridge's address.
   */
  async ensureNetwork(): Promise<void> {
    if (this.hostNetwork()) return;
    const name = this.settings.network;
    try {
      await this.docker.getNetwork(name).inspect();
    } catch (err) {
      if (httpCode(err) !== 404) throw err;
      await this.docker.createNetwork({ Name: name, Driver: 'bridge', Labels: { 'app.kubernetes.io/managed-by': 'saasodoo' } }).catch((e) => {
        if (httpCode(e) !== 409) throw e;
      });
    }
  }

  /** Mounts, network, limits and labels shared by the init and the serving container. */
  private hostConfig(spec: InstanceSpec, st: DockerState): Docker.HostConfig {
    const dir = this.instanceDir(spec.id);
    const memory = spec.resources.memoryMiB * 1024 * 1024;
    return {
      Binds: [`${path.join(dir, 'data')}:${ODOO_DATA_DIR}`, `${path.join(dir, 'addons')}:/mnt/extra-addons`, `${path.join(dir, 'odoo.conf')}:${ODOO_RC}:ro`],
      NetworkMode: this.settings.network,
      // Docker refuses a limit above the host's CPUs: a plan larger than this machine gets all of it.
      NanoCpus: Math.round(Math.min(spec.resources.cpu, this.ncpu ?? Infinity) * 1e9),
      Memory: memory,
      MemorySwap: memory, // no swap beyond the plan's memory
      ...(this.hostNetwork()
        ? {}
        : {
            PortBindings: { [`${ODOO_HTTP_PORT}/tcp`]: [{ HostIp: '127.0.0.1', HostPort: String(st.httpPort) }] },
            ExtraHosts: ['host.docker.internal:host-gateway'],
          }),
    };
  }

  /** The contract's odoo.conf for this host: own loopback ports on the host network, 8069 on a bridge. */
  private odooConf(spec: InstanceSpec, st: DockerState): string {
    const host = this.hostNetwork();
    const dbHost = !host && LOOPBACK.has(spec.database.host) ? this.settings.dbHost : spec.database.host;
    const target = targetOf({ ...spec, database: { ...spec.database, host: dbHost } });
    let settings;
    try {
      settings = serveSettingsOf(
        { ...spec, masterPasswordHash: spec.masterPasswordHash ?? st.fallbackMasterHash },
        { dataDir: ODOO_DATA_DIR, httpPort: host ? st.httpPort : ODOO_HTTP_PORT, httpInterface: host ? '127.0.0.1' : '0.0.0.0' },
      );
    } catch (err) {
      throw new RuntimeError('invalid', (err as Error).message);
    }
    return configFile(target, { ...settings, geventPort: host ? st.geventPort : ODOO_GEVENT_PORT });
  }

  /** One Odoo command (init, neutralize) as a one-shot container; RuntimeError failed with the log tail when it exits non-zero, timeout after timeoutMs. */
  private async runOnce(spec: InstanceSpec, st: DockerState, image: string, timeoutMs: number, what: 'init' | 'neutralize' = 'init'): Promise<void> {
    const name = `${containerName(spec.id)}-${what}`;
    await this.docker
      .getContainer(name)
      .remove({ force: true, v: true })
      .catch(() => {});
    const c = await this.docker.createContainer({
      name,
      Image: image,
      Entrypoint: ['odoo'],
      Cmd: what === 'init' ? initArgs(targetOf(spec), ODOO_RC) : neutralizeArgs(targetOf(spec), ODOO_RC),
      Labels: { ...labelsFor(spec), [COMPONENT_LABEL]: what },
      HostConfig: this.hostConfig(spec, st),
    });
    try {
      // 'next-exit': asked before the start, the default ('not-running') would answer at once for a created container.
      const waited = c.wait({ condition: 'next-exit' });
      await c.start();
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
      const result = await Promise.race([waited as Promise<{ StatusCode: number }>, timedOut]).finally(() => clearTimeout(timer));
      if (result === 'timeout') throw new RuntimeError('timeout', `Odoo ${what} did not finish within ${Math.round(timeoutMs / 1000)} s`);
      const { StatusCode } = result;
      if (StatusCode !== 0) {
        const tail = demux((await c.logs({ stdout: true, stderr: true, tail: 5, follow: false })) as unknown as Buffer)
          .trim()
          .split('\n')
          .slice(-3)
          .join(' | ')
          .slice(0, 400);
        throw new RuntimeError('failed', `Odoo ${what} exited with code ${StatusCode}${tail ? `: ${tail}` : ''}`);
      }
    } finally {
      await c.remove({ force: true, v: true }).catch(() => {});
    }
  }

  private createOptions(spec: InstanceSpec, st: DockerState, image: string, confHash: string): Docker.ContainerCreateOptions {
    const options: Docker.ContainerCreateOptions = {
      name: containerName(spec.id),
      Image: image,
      Entrypoint: ['odoo'],
      Cmd: serveArgs(targetOf(spec), ODOO_RC),
      Labels: { ...labelsFor(spec), [COMPONENT_LABEL]: 'odoo', [SUBDOMAIN_LABEL]: spec.subdomain },
      ...(this.hostNetwork() ? {} : { ExposedPorts: { [`${ODOO_HTTP_PORT}/tcp`]: {} } }),
      HostConfig: { ...this.hostConfig(spec, st), RestartPolicy: { Name: 'unless-stopped' } },
    };
    const hash = createHash('sha256').update(JSON.stringify(options)).update(confHash).digest('hex').slice(0, 16);
    options.Labels![CONFIG_LABEL] = hash;
    return options;
  }

  /** Creates the container from the recorded options when it is gone. */
  private async ensureContainer(id: string, st: DockerState): Promise<Docker.ContainerInspectInfo> {
    const cur = await this.inspect(id);
    if (cur) return cur;
    if (!st.create) throw new RuntimeError('not_found', `instance ${id} has no container`);
    await this.docker.createContainer(st.create).catch((err) => {
      if (httpCode(err) !== 409) throw new RuntimeError('failed', `create container: ${(err as Error).message}`);
    });
    return (await this.inspect(id))!;
  }

  /** Brings the container to the desired run state. */
  private async reconcile(id: string, st: DockerState): Promise<void> {
    const want = st.replicas === 1 && !st.suspended;
    const c = this.container(id);
    if (want) {
      const info = await this.ensureContainer(id, st);
      if (!info.State.Running || info.State.Restarting) {
        await c.start().catch((err) => {
          if (httpCode(err) !== 304) throw new RuntimeError('failed', `start container: ${(err as Error).message}`);
        });
      }
    } else {
      const info = await this.inspect(id);
      if (info?.State.Running || info?.State.Restarting) {
        await c.stop({ t: 10 }).catch((err) => {
          if (httpCode(err) !== 304 && httpCode(err) !== 404) throw new RuntimeError('failed', `stop container: ${(err as Error).message}`);
        });
      }
    }
  }

  async apply(spec: InstanceSpec, desired: DesiredState = {}): Promise<void> {
    assertSafeId(spec.id, 'instance id');
    const clash = (await this.listStates()).find((o) => o.id !== spec.id && o.state.subdomain === spec.subdomain);
    if (clash) throw new RuntimeError('invalid', `subdomain ${spec.subdomain} is used by another instance`);
    const image = this.imageOf(spec);
    const user = await this.imageUser(image);
    this.ncpu ??= (await this.docker.info()).NCPU || undefined;
    const dir = this.instanceDir(spec.id);
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    await fs.chmod(dir, 0o711); // the container user must reach data/ and odoo.conf, nothing else
    for (const sub of ['data', 'data/filestore', 'data/sessions', 'addons']) {
      const p = path.join(dir, sub);
      if (!(await fs.stat(p).catch(() => undefined))) {
        await fs.mkdir(p, { recursive: true, mode: 0o700 });
        await this.chownTree(p, user);
      }
    }
    const suspended = desired.suspended ?? false;
    const prev = await this.readState(spec.id);
    const ports = prev ?? (await this.allocatePorts(spec.id));
    const st: DockerState = {
      subdomain: spec.subdomain,
      name: spec.name,
      replicas: suspended ? 0 : (desired.replicas ?? 1),
      suspended,
      quotaBytes: Math.round(spec.resources.storageGiB * GiB),
      httpPort: ports.httpPort,
      geventPort: ports.geventPort,
      ...(spec.masterPasswordHash ? {} : { fallbackMasterHash: prev?.fallbackMasterHash ?? (await odooPasswordHash(randomBytes(24).toString('base64url'))) }),
    };
    // odoo.conf holds the database password: readable by the image's user only.
    const conf = this.odooConf(spec, st);
    const confFile = path.join(dir, 'odoo.conf');
    await fs.writeFile(`${confFile}.tmp`, conf, { mode: 0o400 });
    await this.chownTree(`${confFile}.tmp`, user);
    await fs.rename(`${confFile}.tmp`, confFile);
    await this.ensureNetwork();
    st.create = this.createOptions(spec, st, image, createHash('sha256').update(conf).digest('hex'));
    await this.writeState(spec.id, st);

    const cur = await this.inspect(spec.id);
    if (cur && cur.Config.Labels?.[CONFIG_LABEL] !== st.create.Labels![CONFIG_LABEL]) {
      await this.container(spec.id)
        .remove({ force: true, v: true })
        .catch(() => {});
    }
    await this.reconcile(spec.id, st);
  }

  /**
   * Odoo's init (the contract's initArgs) as a one-shot container with the
   * instance's image, odoo.conf, data folder and network, removed with its
   * volumes afterwards. The instance is applied stopped first, so its
   * folders, odoo.conf and ports exist; provisioning starts it later.
   */
  async initialize(spec: InstanceSpec, timeoutMs: number): Promise<void> {
    await this.apply(spec, { replicas: 0 });
    const st = (await this.readState(spec.id))!;
    await this.runOnce(spec, st, this.imageOf(spec), timeoutMs);
  }

  /** `odoo neutralize` (contract.ts neutralizeArgs) as a one-shot container, the instance stopped, exactly as init runs. */
  async neutralize(spec: InstanceSpec, timeoutMs: number): Promise<void> {
    await this.apply(spec, { replicas: 0 });
    const st = (await this.readState(spec.id))!;
    await this.runOnce(spec, st, this.imageOf(spec), timeoutMs, 'neutralize');
  }

  /** The image's id (a new image under the same tag is another build). */
  async odooBuild(version: string): Promise<string> {
    return `image:${(await this.ensureImage(this.imageOf({ odooVersion: version }))).Id}`;
  }

  async keepTemplateFilestore(spec: InstanceSpec): Promise<void> {
    await keepTemplateFilestoreOnHost(this.backups, path.join(this.dataDirOf(spec.id), 'filestore'), spec.database.name);
  }

  /** Unpacked here, then handed to the image's user as a restore's filestore is. */
  async seedFilestore(spec: InstanceSpec, templateDatabase: string): Promise<void> {
    await this.apply(spec, { replicas: 0 });
    const root = path.join(this.dataDirOf(spec.id), 'filestore');
    await seedFilestoreOnHost(this.backups, templateDatabase, root, spec.database.name);
    await this.chownTree(path.join(root, spec.database.name), await this.imageUser(this.imageOf(spec)));
  }

  async status(id: string): Promise<DockerRuntimeStatus> {
    assertSafeId(id, 'instance id');
    const st = await this.readState(id);
    const info = await this.inspect(id);
    if (!st) return { state: 'missing' };
    const restarts = await this.readRestarts(id);
    const base = {
      url: this.urlOf(st.subdomain),
      // The contract's readiness, as the other drivers (provisioning grants the tenant CONNECT on `postgres` for it).
      healthUrl: `http://127.0.0.1:${st.httpPort}${ODOO_PATHS.readiness}`,
      replicas: st.replicas,
      container: containerName(id),
      ...(restarts ? { restartedAt: restarts.lastAt } : {}),
    };
    if (st.suspended) return { ...base, state: 'suspended' };
    if (st.replicas === 0) return { ...base, state: 'stopped' };
    if (!info) return { ...base, state: 'missing', reason: 'the container was removed outside the platform' };
    const s = info.State;
    if (s.Restarting) return { ...base, state: 'failed', reason: `Odoo exits (code ${s.ExitCode}${s.OOMKilled ? ', out of memory' : ''}) and Docker keeps restarting it` };
    if (!s.Running) {
      // Drift: meant to serve, but the container was stopped or killed outside the platform (Docker does not restart those; the runtime host does).
      return { ...base, state: 'stopped', reason: `the container exited (code ${s.ExitCode}${s.OOMKilled ? ', out of memory' : ''}) outside the platform` };
    }
    const ready = await probeOne(base.healthUrl, 2000);
    return { ...base, state: ready.ok ? 'running' : 'starting' };
  }

  async scale(id: string, replicas: 0 | 1, opts: { suspended?: boolean } = {}): Promise<void> {
    assertSafeId(id, 'instance id');
    const st = await this.readState(id);
    if (!st) throw new RuntimeError('not_found', `no instance ${id} in the docker runtime`);
    st.suspended = opts.suspended ?? false;
    st.replicas = st.suspended ? 0 : replicas;
    await this.writeState(id, st);
    await this.reconcile(id, st);
  }

  /** Starts the instances whose container should run but does not (the platform restarted; a host reboot). */
  async reconcileAll(): Promise<string[]> {
    const started: string[] = [];
    for (const { id, state } of await this.listStates()) {
      if (state.replicas !== 1 || state.suspended) continue;
      const info = await this.inspect(id);
      if (info?.State.Running) continue;
      try {
        await this.reconcile(id, state);
        started.push(id);
      } catch (err) {
        log.warn({ instanceId: id, err: (err as Error).message }, 'docker: could not bring the instance back');
      }
    }
    return started;
  }

  private async readRestarts(id: string): Promise<Restarts | undefined> {
    try {
      return JSON.parse(await fs.readFile(path.join(this.instanceDir(id), RESTARTS_FILE), 'utf8'));
    } catch {
      return undefined;
    }
  }

  /**
   * Starts again the container of an instance meant to run that stopped
   * outside the platform (`docker kill`, `docker stop`), as a Deployment
   * brings back its pod; Docker's restart policy covers Odoo crashing by
   * itself. Only the container that died (`containerId`), only when it is
   * exited (not being removed or restarted by Docker) and the desired state
   * still says run, unchanged since it died at `diedAtMs` (a platform restart
   * is a stop then a start: its own start follows); the episode is recorded
   * for health-probe (status()'s restartedAt). True when it started it. The
   * runtime host calls it on the engine's `die` event, with a backoff.
   */
  async restartDrifted(id: string, containerId: string, diedAtMs: number): Promise<boolean> {
    assertSafeId(id, 'instance id');
    const st = await this.readState(id);
    if (!st || st.replicas !== 1 || st.suspended) return false;
    const written = (await fs.stat(path.join(this.instanceDir(id), STATE_FILE)).catch(() => undefined))?.mtimeMs ?? 0;
    if (written > diedAtMs) return false;
    const info = await this.inspect(id);
    if (!info || info.Id !== containerId || info.State.Status !== 'exited') return false;
    await this.container(id)
      .start()
      .catch((err) => {
        if (httpCode(err) !== 304) throw new RuntimeError('failed', `start container: ${(err as Error).message}`);
      });
    const prev = await this.readRestarts(id);
    const rec: Restarts = { count: (prev?.count ?? 0) + 1, lastAt: new Date().toISOString(), exitCode: info.State.ExitCode };
    const file = path.join(this.instanceDir(id), RESTARTS_FILE);
    await fs.writeFile(`${file}.tmp`, JSON.stringify(rec), { mode: 0o600 });
    await fs.rename(`${file}.tmp`, file);
    // A stop or suspend asked for meanwhile wins: the desired state is read again and applied.
    const now = await this.readState(id);
    if (now) await this.reconcile(id, now);
    return true;
  }

  async remove(id: string): Promise<void> {
    assertSafeId(id, 'instance id');
    for (const name of [containerName(id), `${containerName(id)}-init`, `${containerName(id)}-neutralize`]) {
      try {
        await this.docker.getContainer(name).remove({ force: true, v: true });
      } catch (err) {
        if (httpCode(err) !== 404 && httpCode(err) !== 409) throw new RuntimeError('unavailable', `remove container ${name}: ${(err as Error).message}`);
      }
    }
    await fs.rm(this.instanceDir(id), { recursive: true, force: true });
  }

  protected stopForRestore(id: string, suspended: boolean): Promise<void> {
    return this.scale(id, 0, { suspended });
  }

  /**
   * Waits on events, not a timer: the container's log saying Odoo serves
   * (then a readiness probe, again after 100 ms while its database is not
   * reachable yet), or the log ending (the container exited). An Odoo that
   * never logs that line is still found by a probe backing off to every 2 s.
   */
  async waitReady(id: string, timeoutMs: number, onProgress?: (p: ReadyProgress) => void): Promise<void> {
    assertSafeId(id, 'instance id');
    const signal = await this.followStart(id);
    let backoff = 250;
    try {
      await waitUntilRunning(
        async (last, remainingMs) => {
          if (last !== undefined) {
            const serving = signal.serving();
            await signal.next(Math.max(0, Math.min(serving ? 100 : backoff, remainingMs)));
            if (!serving) backoff = Math.min(backoff * 2, 2000);
          }
          return this.status(id);
        },
        { timeoutMs, intervalMs: 0, runtime: 'docker runtime', onProgress },
      );
    } finally {
      signal.close();
    }
  }

  /**
   * Follows the running container's log from its current start: `serving()`
   * once Odoo logged ODOO_SERVING_LINE; `next(ms)` resolves after ms, or as
   * soon as that line comes or the log ends. Without a log (not running, the
   * engine refusing) only the timer wakes.
   */
  private async followStart(id: string): Promise<{ serving: () => boolean; next: (ms: number) => Promise<void>; close: () => void }> {
    let serving = false;
    // `dirty` keeps a wake-up that lands while no one waits.
    let dirty = false;
    let wake = () => {};
    const poke = () => {
      dirty = true;
      wake();
    };
    let stream: (NodeJS.ReadableStream & { destroy?: () => void }) | undefined;
    const info = await this.inspect(id).catch(() => undefined);
    if (info?.State.Running) {
      try {
        stream = await this.container(id).logs({ follow: true, stdout: true, stderr: true, since: Date.parse(info.State.StartedAt) / 1000 });
        let tail = '';
        const sink = new Writable({
          write(chunk: Buffer, _enc, done) {
            tail = (tail + chunk.toString('utf8')).slice(-4096);
            if (!serving && tail.includes(ODOO_SERVING_LINE)) {
              serving = true;
              poke();
            }
            done();
          },
        });
        this.docker.modem.demuxStream(stream, sink, sink);
        stream.on('end', poke);
        stream.on('error', poke);
      } catch {
        stream = undefined; // the backing-off probe still finds it
      }
    }
    const next = (ms: number) =>
      new Promise<void>((resolve) => {
        if (dirty) {
          dirty = false;
          return resolve();
        }
        const t = setTimeout(() => {
          wake = () => {};
          resolve();
        }, ms);
        wake = () => {
          clearTimeout(t);
          wake = () => {};
          dirty = false;
          resolve();
        };
      });
    return { serving: () => serving, next, close: () => stream?.destroy?.() };
  }

  async setQuota(id: string, bytes: number): Promise<void> {
    assertSafeId(id, 'instance id');
    const st = await this.readState(id);
    if (!st) throw new RuntimeError('not_found', `no instance ${id} in the docker runtime`);
    st.quotaBytes = Math.round(bytes);
    await this.writeState(id, st);
  }

  async usage(id: string): Promise<QuotaUsage> {
    assertSafeId(id, 'instance id');
    const st = await this.readState(id);
    if (!st) throw new RuntimeError('not_found', `no instance ${id} in the docker runtime`);
    const used = (await duBytes(path.join(this.instanceDir(id), 'data'))) + (await duBytes(path.join(this.instanceDir(id), 'addons')));
    return { usedBytes: used, limitBytes: st.quotaBytes, exceeded: used > st.quotaBytes };
  }

  backup(spec: InstanceSpec, backupId: string, kind: BackupKind, onStep?: StepListener<BackupStep>): Promise<BackupManifest> {
    return backupOnHost(this.backups, this.tools, spec, this.dataDirOf(spec.id), backupId, kind, onStep);
  }

  protected async restoreParts(spec: InstanceSpec, backupId: string, onStep?: StepListener<RestoreStep>): Promise<void> {
    await restoreOnHost(this.backups, this.tools, spec, this.dataDirOf(spec.id), backupId, onStep);
    await this.chownTree(path.join(this.dataDirOf(spec.id), 'filestore'), await this.imageUser(this.imageOf(spec)));
  }
}

export function dockerSettingsFromConfig(): DockerSettings {
  const c = config();
  return {
    image: c.ODOO_IMAGE,
    network: c.DOCKER_NETWORK,
    dbHost: c.DOCKER_DB_HOST,
    dataDir: c.dataDir,
    portBase: c.LOCAL_INSTANCE_PORT_BASE,
    baseDomain: c.BASE_DOMAIN,
    gatewayPort: c.GATEWAY_PORT,
    scheme: c.INSTANCE_URL_SCHEME,
  };
}
