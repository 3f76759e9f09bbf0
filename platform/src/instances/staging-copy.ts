/**
 * Provisioning's side of a staging copy (README 6, staging.ts): its data step
 * (a fresh backup of the original, published under the copy, restored,
 * neutralised) and its configure step (Odoo's copy reset and its own
 * address). Apart from staging.ts so the `staging` function, which only
 * writes rows and commands, carries no runtime driver nor instance secrets.
 */
import { randomUUID } from 'node:crypto';
import { config } from '../config.ts';
import { db } from '../db/index.ts';
import { HttpError } from '../errors.ts';
import { log } from '../log.ts';
import { runtime } from '../runtime/index.ts';
import { baseUrlStatements, freshCopyStatements, IS_NEUTRALIZED_SQL } from '../odoo/contract.ts';
import { takeBackup } from './backups.ts';
import type { Cause } from './history.ts';
import { withInstanceLock } from './locks.ts';
import { instanceUrl } from './names.ts';
import { withTenant } from './odoo.ts';
import { getInstance, updateInstance, type InstanceRow } from './repository.ts';
import { specOf } from './runtime-spec.ts';
import { COPYABLE } from './staging.ts';

/** Runs `fn` under the original's lock, waiting a little for an operation on it to finish (a copy must not race its restore). */
async function withOriginalLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await withInstanceLock(id, fn);
    } catch (err) {
      if (!(err instanceof HttpError && err.status === 409 && err.code === 'busy') || attempt >= 60) throw err;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

/**
 * Provisioning's data step for a copy: a fresh backup of the original (kind
 * `safety`: kept by retention, not mailed), published again under the copy
 * with its filestore renamed to the copy's database, restored in place of
 * the copy's data (driver restore path, no safety backup: the copy's data is
 * disposable), then `odoo neutralize` the way the driver runs init, checked
 * by the flag Odoo sets. The copy is left stopped.
 */
export async function copyOriginal(row: InstanceRow, cause: Cause): Promise<InstanceRow> {
  const original = row.staging_of ? await getInstance(db('instance'), row.staging_of) : undefined;
  if (!original || !COPYABLE.has(original.status)) throw new Error(`the original instance is ${original?.status ?? 'gone'}: a copy needs it running or stopped`);
  const rt = await runtime();
  const cmd = { eventId: cause.eventId ?? randomUUID(), eventType: cause.eventType ?? 'staging', data: undefined, traceparent: cause.traceparent, log };
  const taken = await withOriginalLock(original.id, async () => takeBackup(cmd, (await getInstance(db('instance'), original.id))!, undefined, 'safety'));
  if (!taken.ok) throw new Error(`the fresh backup of the original failed: ${taken.reason}`);
  const copy = specOf(row);
  await rt.copyBackup(specOf(original), taken.backupId, copy);
  try {
    // Its storage exists since provisioning's storage step (or the copy's first run, for a refresh).
    if ((await rt.status(copy.id)).state === 'missing') await rt.apply(copy, { replicas: 0 });
    await rt.restoreCopy(copy, taken.backupId);
  } finally {
    // The copy's restore source is the original's backup: not one of the copy's own.
    await rt.deleteBackup(copy.id, taken.backupId).catch(() => {});
  }
  await rt.neutralize(copy, config().PROVISION_READY_TIMEOUT * 1000);
  if (!(await isNeutralized(row))) throw new Error('Odoo neutralize finished but the copy is not marked neutralised');
  return updateInstance(db('instance'), row.id, { staging_copied_at: new Date(), odoo_template: null });
}

/** Whether the copy's Odoo database carries the flag `odoo neutralize` sets. */
async function isNeutralized(row: InstanceRow): Promise<boolean> {
  return withTenant(specOf(row).database, async (c) => (await c.query(IS_NEUTRALIZED_SQL)).rows[0].neutralized === true);
}

/**
 * Provisioning's configure step for a copy: what Odoo's own duplication does
 * to a copy (a new database.secret and uuid, no licence parameters) and the
 * copy's own address, frozen, so its links never point at production.
 */
export async function configureCopy(row: InstanceRow): Promise<InstanceRow> {
  await withTenant(specOf(row).database, async (c) => {
    await c.query('BEGIN');
    try {
      for (const s of [...freshCopyStatements(), ...baseUrlStatements(instanceUrl(row.subdomain))]) await c.query(s.text, s.values);
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {});
      throw err;
    }
  });
  return row;
}
