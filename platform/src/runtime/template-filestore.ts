/**
 * The filestore of a template database (instances/templates.ts), kept in the
 * backup store as `.templates/<database>.tar.gz` once Odoo's init has written
 * it, and unpacked into a new instance's filestore under that instance's
 * database name (Odoo keys its filestore by database name: a copy made by
 * `CREATE DATABASE … TEMPLATE` finds its attachments there, as
 * `exp_duplicate_database` copies them). One form for every driver: the
 * host drivers run tar here, the Kubernetes driver in a Job on the same
 * backup volume.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { assertSafeId, type BackupStore } from './backup-store.ts';
import { archiveDir, extractArchive } from './pg-tools.ts';
import { RuntimeError } from './types.ts';

/** Archives `{filestoreRoot}/{database}` (empty when init wrote nothing) as the template's; replaces an older one whole. */
export async function keepTemplateFilestoreOnHost(store: BackupStore, filestoreRoot: string, database: string): Promise<void> {
  const file = store.templateArchive(database);
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await fs.mkdir(path.join(filestoreRoot, database), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${randomBytes(4).toString('hex')}.partial`;
  try {
    await archiveDir(filestoreRoot, database, tmp);
    await fs.rename(tmp, file);
  } finally {
    await fs.rm(tmp, { force: true });
  }
}

/** Unpacks template `templateDatabase`'s filestore as `{filestoreRoot}/{database}`, replacing what is there (idempotent). */
export async function seedFilestoreOnHost(store: BackupStore, templateDatabase: string, filestoreRoot: string, database: string): Promise<void> {
  assertSafeId(database, 'database');
  const file = store.templateArchive(templateDatabase);
  if (!(await fs.stat(file).catch(() => undefined))) throw new RuntimeError('not_found', `no kept filestore for template ${templateDatabase}`);
  await fs.mkdir(filestoreRoot, { recursive: true, mode: 0o700 });
  const tmp = path.join(filestoreRoot, `.seed-${randomBytes(4).toString('hex')}`);
  await fs.mkdir(tmp, { mode: 0o700 });
  try {
    await extractArchive(file, tmp);
    await fs.rm(path.join(filestoreRoot, database), { recursive: true, force: true });
    await fs.rename(path.join(tmp, templateDatabase), path.join(filestoreRoot, database));
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}
