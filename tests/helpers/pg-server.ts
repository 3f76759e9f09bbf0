/**
 * A second, real PostgreSQL server for a test file (database pools): Debian's
 * initdb + pg_ctl from /usr/lib/postgresql/<v>/bin, on a free loopback port,
 * in a temp folder owned by the `postgres` user (both tools refuse root).
 * Password auth (scram) for everyone, superuser `postgres` with a random
 * password. About 2–3 s to make: one per test file at most.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports.ts';

export type TestPgServer = { host: string; port: number; user: string; password: string; dir: string; stop(): Promise<void>; start(): Promise<void> };

const BIN = ['17', '16', '15'].map((v) => `/usr/lib/postgresql/${v}/bin`).find((d) => fs.existsSync(path.join(d, 'initdb')));

/** Why no server can be made here, or undefined. */
export function pgServerUnavailable(): string | undefined {
  if (!BIN) return 'no /usr/lib/postgresql/<version>/bin/initdb';
  if (process.getuid?.() !== 0) return 'not root: cannot run initdb as the postgres user';
  return undefined;
}

function run(args: string[]): Promise<string> {
  const asPostgres = ['-u', 'postgres', '--', ...args];
  return new Promise((resolve, reject) => execFile('runuser', asPostgres, { timeout: 60_000 }, (err, out, stderr) => (err ? reject(new Error(`${args[0]}: ${stderr || err.message}`)) : resolve(out))));
}

export async function startPgServer(): Promise<TestPgServer> {
  const why = pgServerUnavailable();
  if (why) throw new Error(why);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'saasodoo-pg-'));
  fs.chmodSync(dir, 0o755);
  const data = path.join(dir, 'data');
  const password = randomBytes(12).toString('hex');
  const pwfile = path.join(dir, 'pw');
  fs.writeFileSync(pwfile, password);
  const pg = fs.statSync('/var/lib/postgresql', { throwIfNoEntry: false });
  const [uid, gid] = pg ? [pg.uid, pg.gid] : [0, 0];
  fs.chownSync(dir, uid, gid);
  fs.chownSync(pwfile, uid, gid);
  await run([`${BIN}/initdb`, '-D', data, '-U', 'postgres', `--pwfile=${pwfile}`, '--auth=scram-sha-256', '-E', 'UTF8', '--locale=C.UTF-8']);
  fs.rmSync(pwfile);
  const port = await freePort();
  const start = () => run([`${BIN}/pg_ctl`, '-D', data, '-w', '-l', path.join(dir, 'log'), '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`, 'start']).then(() => {});
  await start();
  return {
    host: '127.0.0.1',
    port,
    user: 'postgres',
    password,
    dir,
    start,
    async stop() {
      await run([`${BIN}/pg_ctl`, '-D', data, '-m', 'fast', '-w', 'stop']).catch(() => {});
    },
  };
}

/** Stops the server and deletes its folder. */
export async function destroyPgServer(s: TestPgServer | undefined): Promise<void> {
  if (!s) return;
  await s.stop();
  fs.rmSync(s.dir, { recursive: true, force: true });
}
