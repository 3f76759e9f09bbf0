/**
 * Dedicated PostgreSQL servers on this machine (local and docker drivers):
 * one real server per premium instance (local-postgres.ts), in
 * DATA_DIR/dbservers/<instance id>, owned by the `postgres` user. It sits
 * beside the instance's folder rather than in it: that folder is root's,
 * 0700, and holds the tenant's filestore, which the server's user has no
 * business reading. With the docker driver Odoo's container reaches it on
 * 127.0.0.1 (DOCKER_NETWORK=host, the default).
 */
import fs from 'node:fs';
import path from 'node:path';
import { assertSafeId } from './backup-store.ts';
import { createLocalPgServer, LOCAL_PG_SUPERUSER, removeLocalPgServer, startLocalPgServer } from './local-postgres.ts';
import type { DatabaseServer } from './types.ts';

/** The folder of an instance's dedicated server. */
export function dedicatedServerDir(dataDir: string, id: string): string {
  assertSafeId(id, 'instance id');
  return path.join(dataDir, 'dbservers', id);
}

function ensureParent(dataDir: string): void {
  // Traversable by the postgres user, not listable: it must not learn other instances' ids.
  const parent = path.join(dataDir, 'dbservers');
  fs.mkdirSync(parent, { recursive: true });
  fs.chmodSync(parent, 0o711);
}

/** Creates (or starts) the instance's server; its superuser is `postgres` with `adminPassword`. */
export async function ensureLocalDedicated(dataDir: string, id: string, o: { adminPassword: string; fresh?: boolean }): Promise<DatabaseServer> {
  ensureParent(dataDir);
  const dir = dedicatedServerDir(dataDir, id);
  if (o.fresh) await removeLocalPgServer(dir);
  const port = await createLocalPgServer(dir, { password: o.adminPassword });
  return { host: '127.0.0.1', port, admin: { user: LOCAL_PG_SUPERUSER, password: o.adminPassword } };
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
  const parent = path.join(dataDir, 'dbservers');
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
