/**
 * A second, real PostgreSQL server for a test file (database pools): the
 * platform's own local server maker (platform/src/runtime/local-postgres.ts:
 * Debian's initdb + pg_ctl as the `postgres` user, on a free loopback port)
 * in a temp folder, fsync off. Superuser `postgres` with a random password.
 * About 2–3 s to make: one per test file at most.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLocalPgServer, localPgUnavailable, removeLocalPgServer, startLocalPgServer, stopLocalPgServer } from '@saasodoo/platform/runtime/local-postgres';

export type TestPgServer = { host: string; port: number; user: string; password: string; dir: string; stop(): Promise<void>; start(): Promise<void> };

/** Why no server can be made here, or undefined. */
export function pgServerUnavailable(): string | undefined {
  return localPgUnavailable();
}

export async function startPgServer(): Promise<TestPgServer> {
  const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'saasodoo-pg-'));
  fs.chmodSync(parent, 0o755);
  const dir = path.join(parent, 'server');
  const password = randomBytes(12).toString('hex');
  const port = await createLocalPgServer(dir, { password, fsync: false });
  return {
    host: '127.0.0.1',
    port,
    user: 'postgres',
    password,
    dir: parent,
    start: () => startLocalPgServer(dir),
    stop: () => stopLocalPgServer(dir).catch(() => {}),
  };
}

/** Stops the server and deletes its folder. */
export async function destroyPgServer(s: TestPgServer | undefined): Promise<void> {
  if (!s) return;
  await removeLocalPgServer(path.join(s.dir, 'server')).catch(() => {});
  fs.rmSync(s.dir, { recursive: true, force: true });
}
