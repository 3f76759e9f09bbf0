/**
 * A real PostgreSQL server on this machine (issue 20 item 2: the dedicated
 * server of a premium instance with the local and docker drivers; the test
 * helper tests/helpers/pg-server.ts makes its second pool with it too).
 * Debian's initdb and pg_ctl (/usr/lib/postgresql/<v>/bin) refuse to run as
 * root, so both run as the `postgres` user, which owns the server's folder.
 * The server listens on 127.0.0.1 (and, for the docker driver on a bridge
 * network, on that network's gateway address, open to its subnet only;
 * never on a public interface), on a port chosen once and written into its
 * postgresql.conf (a restart after a reboot comes back on the same port),
 * with password (scram) authentication for everyone and the superuser
 * `postgres` whose password the caller keeps (sealed).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export const LOCAL_PG_SUPERUSER = 'postgres';

const BIN = ['17', '16', '15'].map((v) => `/usr/lib/postgresql/${v}/bin`).find((d) => fs.existsSync(path.join(d, 'initdb')));

/** Why no local server can be made here (the reason a step fails with), or undefined. */
export function localPgUnavailable(): string | undefined {
  if (!BIN) return 'no PostgreSQL server binaries (/usr/lib/postgresql/<version>/bin/initdb): apt-get install postgresql';
  if (process.getuid?.() !== 0) return 'initdb must run as the postgres user, which needs root (runuser) to switch to';
  return undefined;
}

function asPostgres(args: string[], timeoutMs = 120_000): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile('runuser', ['-u', 'postgres', '--', ...args], { timeout: timeoutMs }, (err, out, stderr) =>
      err ? reject(new Error(`${path.basename(args[0])}: ${(stderr || err.message).trim().slice(0, 300)}`)) : resolve(out),
    ),
  );
}

/** A free loopback port (the kernel's pick; written into the server's config at once). */
export function freeLocalPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

const dataOf = (dir: string) => path.join(dir, 'data');

/** The port written into the server's config, or undefined when it was never made. */
export function localPgPort(dir: string): number | undefined {
  const conf = path.join(dataOf(dir), 'postgresql.conf');
  if (!fs.existsSync(path.join(dataOf(dir), 'PG_VERSION')) || !fs.existsSync(conf)) return undefined;
  const m = /^port = (\d+)\s*#\s*saasodoo/m.exec(fs.readFileSync(conf, 'utf8'));
  return m ? Number(m[1]) : undefined;
}

/**
 * The address clients should use: the bridge gateway it was made to listen
 * on (reachable from the host and from the bridge's containers), else 127.0.0.1.
 */
export function localPgHost(dir: string): string {
  const conf = path.join(dataOf(dir), 'postgresql.conf');
  const m = fs.existsSync(conf) ? /^listen_addresses = '127\.0\.0\.1,([^',]+)'/m.exec(fs.readFileSync(conf, 'utf8')) : null;
  return m ? m[1] : '127.0.0.1';
}

/** A second address the server listens on (a Docker bridge's gateway) and the subnet allowed to connect through it. */
export type ExtraListen = { address: string; subnet: string };

/**
 * Makes the server in `dir` (initdb) unless it exists, then starts it.
 * Returns its port. `fresh`: a folder left by an attempt that did not
 * finish (no port in its config) is made again from scratch: nothing can be
 * in it yet. `listen`: where containers reach it besides loopback.
 */
export async function createLocalPgServer(dir: string, o: { password: string; fsync?: boolean; listen?: ExtraListen }): Promise<number> {
  const why = localPgUnavailable();
  if (why) throw new Error(why);
  let port = localPgPort(dir);
  if (port === undefined) {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const pg = fs.statSync('/var/lib/postgresql', { throwIfNoEntry: false });
    const [uid, gid] = pg ? [pg.uid, pg.gid] : [0, 0];
    fs.chownSync(dir, uid, gid);
    const pwfile = path.join(dir, 'pw');
    fs.writeFileSync(pwfile, o.password, { mode: 0o600 });
    fs.chownSync(pwfile, uid, gid);
    try {
      await asPostgres([`${BIN}/initdb`, '-D', dataOf(dir), '-U', LOCAL_PG_SUPERUSER, `--pwfile=${pwfile}`, '--auth=scram-sha-256', '-E', 'UTF8', '--locale=C.UTF-8']);
    } finally {
      fs.rmSync(pwfile, { force: true });
    }
    port = await freeLocalPort();
    // Appended by the postgres user's file owner (we are root: keep the owner).
    const conf = path.join(dataOf(dir), 'postgresql.conf');
    if (o.listen && !(net.isIPv4(o.listen.address) && /^[0-9.]+\/\d{1,2}$/.test(o.listen.subnet))) throw new Error(`not an IPv4 bridge address and subnet: ${o.listen.address} ${o.listen.subnet}`);
    const listen = ['127.0.0.1', ...(o.listen ? [o.listen.address] : [])].join(',');
    const extra = [`port = ${port} # saasodoo: chosen once, kept across restarts`, `listen_addresses = '${listen}'`, `unix_socket_directories = '${dir}'`];
    if (o.fsync === false) extra.push('fsync = off', 'synchronous_commit = off', 'full_page_writes = off');
    fs.appendFileSync(conf, `\n${extra.join('\n')}\n`);
    // initdb's pg_hba.conf allows loopback only. Through the bridge address come its containers (each
    // tenant still needs its password) and this machine itself, whose source address Linux may pick on
    // another interface (`samehost`: any of this machine's own addresses).
    if (o.listen) {
      const hba = [`host all all ${o.listen.subnet} scram-sha-256 # saasodoo: docker bridge`, 'host all all samehost scram-sha-256 # saasodoo: this machine'];
      fs.appendFileSync(path.join(dataOf(dir), 'pg_hba.conf'), `${hba.join('\n')}\n`);
    }
  }
  await startLocalPgServer(dir);
  return port;
}

/** Whether the server in `dir` runs (pg_ctl status). */
export async function localPgRunning(dir: string): Promise<boolean> {
  if (!BIN || !fs.existsSync(path.join(dataOf(dir), 'PG_VERSION'))) return false;
  return asPostgres([`${BIN}/pg_ctl`, '-D', dataOf(dir), 'status']).then(
    () => true,
    () => false,
  );
}

/** Starts the server in `dir` unless it runs (after a reboot: `npm start`). */
export async function startLocalPgServer(dir: string): Promise<void> {
  if (await localPgRunning(dir)) return;
  // A pid file left by a crash or reboot would stop pg_ctl: PostgreSQL checks it is stale itself.
  await asPostgres([`${BIN}/pg_ctl`, '-D', dataOf(dir), '-w', '-t', '60', '-l', path.join(dir, 'log'), 'start']);
}

/** Stops the server in `dir` (fast: open sessions are ended). Nothing to do when it does not run. */
export async function stopLocalPgServer(dir: string): Promise<void> {
  if (!(await localPgRunning(dir))) return;
  await asPostgres([`${BIN}/pg_ctl`, '-D', dataOf(dir), '-m', 'fast', '-w', 'stop']);
}

/** Stops the server and deletes its folder, data included. Idempotent. */
export async function removeLocalPgServer(dir: string): Promise<void> {
  await stopLocalPgServer(dir);
  fs.rmSync(dir, { recursive: true, force: true });
}
