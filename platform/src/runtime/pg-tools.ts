/**
 * The commands a backup and a restore run on this machine (local driver):
 * pg_dump/pg_restore as the instance's own role (password through
 * PGPASSWORD, never on a command line) and tar for the filestore. Errors keep
 * the tool's stderr tail (never contains the password).
 */
import { execFile } from 'node:child_process';
import type { InstanceSpec } from './types.ts';

export type PgTools = { pgDump: string; pgRestore: string };
export const DEFAULT_PG_TOOLS: PgTools = { pgDump: 'pg_dump', pgRestore: 'pg_restore' };

function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { env: { ...process.env, ...env }, maxBuffer: 16 * 1024 * 1024 }, (err, _out, stderr) => {
      if (!err) return resolve();
      const tail = String(stderr ?? '')
        .trim()
        .split('\n')
        .slice(-3)
        .join(' | ')
        .slice(0, 400);
      reject(new Error(`${cmd.split('/').pop()} failed (${(err as NodeJS.ErrnoException).code ?? 'error'})${tail ? `: ${tail}` : ''}`));
    });
  });
}

function pgEnv(db: InstanceSpec['database']): Record<string, string> {
  return { PGHOST: db.host, PGPORT: String(db.port), PGUSER: db.user, PGPASSWORD: db.password, PGDATABASE: db.name, PGCONNECT_TIMEOUT: '10' };
}

/** `pg_dump -Fc` of the instance database into `file`. */
export function dumpDatabase(db: InstanceSpec['database'], file: string, tools = DEFAULT_PG_TOOLS): Promise<void> {
  return run(tools.pgDump, ['-Fc', '--no-owner', '--no-privileges', '-f', file, db.name], pgEnv(db));
}

/** Checks a dump is a readable custom-format archive (`pg_restore -l`). */
export function checkDump(file: string, tools = DEFAULT_PG_TOOLS): Promise<void> {
  return run(tools.pgRestore, ['-l', file]);
}

/** Replaces the database's contents with the dump's (objects owned by the instance role). */
export function restoreDatabase(db: InstanceSpec['database'], file: string, tools = DEFAULT_PG_TOOLS): Promise<void> {
  return run(tools.pgRestore, ['--clean', '--if-exists', '--no-owner', '--no-privileges', '--single-transaction', '--exit-on-error', '-d', db.name, file], pgEnv(db));
}

/** tar.gz of `dir` (stored as `filestore/...`). */
export function archiveDir(parent: string, name: string, file: string): Promise<void> {
  return run('tar', ['-czf', file, '-C', parent, name]);
}

/** Extracts an archive made by archiveDir into `parent`. */
export function extractArchive(file: string, parent: string): Promise<void> {
  return run('tar', ['-xzf', file, '-C', parent]);
}
