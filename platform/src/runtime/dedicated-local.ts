/**
 * Dedicated PostgreSQL servers on this machine (local and docker drivers):
 * one real server per premium instance (local-postgres.ts), owned by the
 * `postgres` user, in that user's home:
 * /var/lib/postgresql/saasodoo/<hash of DATA_DIR>/<instance id>. Not under
 * DATA_DIR: that folder is root's and 0700 on purpose (it holds the
 * platform's generated secrets, secrets.ts), and the instance's own folder
 * holds the tenant's filestore, which the server's user has no business
 * reading; initdb and pg_ctl, run as `postgres`, could reach neither. The
 * hash keeps two installations (or two test files) apart, so `npm start`
 * starts only its own servers. With the docker driver Odoo's container
 * reaches the server on 127.0.0.1 (DOCKER_NETWORK=host, the default) or, on
 * a bridge network, at that network's gateway address, where the server
 * also listens, open to the bridge's subnet only.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { assertSafeId } from './backup-store.ts';
import { log } from '../log.ts';
import { createLocalPgServer, type ExtraListen, LOCAL_PG_SUPERUSER, localPgHost, removeLocalPgServer, startLocalPgServer, stopLocalPgServer } from './local-postgres.ts';
import type { DatabaseServer } from './types.ts';

const PG_HOME = '/var/lib/postgresql';

/** The folder holding this installation's dedicated servers. */
export function localDedicatedRoot(dataDir: string): string {
  return path.join(PG_HOME, 'saasodoo', createHash('sha256').update(path.resolve(dataDir)).digest('hex').slice(0, 12));
}

/** The folder of an instance's dedicated server. */
export function dedicatedServerDir(dataDir: string, id: string): string {
  assertSafeId(id, 'instance id');
  return path.join(localDedicatedRoot(dataDir), id);
}

function ensureParent(dataDir: string): void {
  if (!fs.existsSync(PG_HOME)) throw new Error(`no ${PG_HOME} (the postgres user's home): apt-get install postgresql`);
  // Traversable by the postgres user, not listable by others.
  for (const dir of [path.join(PG_HOME, 'saasodoo'), localDedicatedRoot(dataDir)]) {
    fs.mkdirSync(dir, { recursive: true });
    fs.chmodSync(dir, 0o711);
  }
}

/**
 * Creates (or starts) the instance's server; its superuser is `postgres`
 * with `adminPassword`. `listen`: the docker bridge it must be reachable
 * from (used when it is made); the host returned is the address it was made
 * to answer on, the one Odoo's container and the platform both reach.
 */
export async function ensureLocalDedicated(dataDir: string, id: string, o: { adminPassword: string; fresh?: boolean; listen?: ExtraListen }): Promise<DatabaseServer> {
  ensureParent(dataDir);
  const dir = dedicatedServerDir(dataDir, id);
  if (o.fresh) await removeLocalPgServer(dir);
  const port = await createLocalPgServer(dir, { password: o.adminPassword, listen: o.listen });
  return { host: localPgHost(dir), port, admin: { user: LOCAL_PG_SUPERUSER, password: o.adminPassword } };
}

export async function removeLocalDedicated(dataDir: string, id: string): Promise<void> {
  await removeLocalPgServer(dedicatedServerDir(dataDir, id));
}

/**
 * Starts every dedicated server of this machine that does not run (after a
 * reboot: `npm start`). A server that will not start is reported, not fatal:
 * the other instances must come up. Returns the ids started or failed.
 */
export async function startLocalDedicatedServers(dataDir: string): Promise<{ started: string[]; failed: { id: string; reason: string }[] }> {
  const parent = localDedicatedRoot(dataDir);
  const out = { started: [] as string[], failed: [] as { id: string; reason: string }[] };
  if (!fs.existsSync(parent)) return out;
  for (const id of fs.readdirSync(parent)) {
    try {
      await startLocalPgServer(dedicatedServerDir(dataDir, id));
      out.started.push(id);
    } catch (err) {
      out.failed.push({ id, reason: (err as Error).message });
    }
  }
  return out;
}

/** Stops and deletes every dedicated server of this installation (tests, after their file). */
export async function removeAllLocalDedicated(dataDir: string): Promise<void> {
  const parent = localDedicatedRoot(dataDir);
  if (!fs.existsSync(parent)) return;
  for (const id of fs.readdirSync(parent)) await removeLocalPgServer(path.join(parent, id)).catch(() => {});
  fs.rmSync(parent, { recursive: true, force: true });
}

/**
 * `npm start` (local and docker runtime services, before instances come
 * back): every dedicated server of this installation started again, each
 * failure logged; returns how to stop them on Ctrl-C.
 */
export async function bringUpLocalDedicated(dataDir: string): Promise<() => Promise<void>> {
  const r = await startLocalDedicatedServers(dataDir);
  if (r.started.length) log.info({ servers: r.started.length }, 'dedicated database servers running');
  for (const f of r.failed) log.error({ instanceId: f.id, reason: f.reason }, 'a dedicated database server did not start');
  return async () => {
    const parent = localDedicatedRoot(dataDir);
    if (!fs.existsSync(parent)) return;
    for (const id of fs.readdirSync(parent)) await stopLocalPgServer(path.join(parent, id)).catch(() => {});
  };
}
