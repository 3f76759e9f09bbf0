/**
 * The customer's Odoo password: its one-time display and its reset (README.md 2).
 * Moved out of the instances and instance-action entry files so the SQL and
 * the status rule for a reset live with the slice.
 */
import { db } from '../db/index.ts';
import { HttpError } from '../errors.ts';
import { odooPasswordHash } from '../odoo/contract.ts';
import { withInstanceLock } from './locks.ts';
import { setOdooPassword } from './odoo.ts';
import { getInstance, updateInstance, type InstanceRow } from './repository.ts';
import { specOf } from './runtime-spec.ts';
import { newOdooPassword, unseal } from './secrets.ts';

/** Where Odoo's database is there to take a new password. */
const RESETTABLE = new Set(['running', 'stopped']);

/**
 * The one-time display of the Odoo admin password: the owner's first read
 * of a running instance takes the sealed clear text out of the database
 * (atomically, so two tabs cannot both get it); afterwards only the hash is left.
 */
export async function takeAdminPassword(row: InstanceRow, callerId: string): Promise<string | undefined> {
  if (row.customer_id !== callerId || row.admin_password_shown || !row.admin_password_sealed || row.status !== 'running') return undefined;
  const taken = await db('instance').oneOrNone<{ sealed: string }>(
    `UPDATE instances i SET admin_password_sealed = NULL, admin_password_shown = true, updated_at = now()
       FROM (SELECT id, admin_password_sealed AS sealed FROM instances WHERE id = $1 FOR UPDATE) old
      WHERE i.id = old.id AND i.admin_password_sealed IS NOT NULL RETURNING old.sealed`,
    [row.id],
  );
  return taken ? unseal(taken.sealed) : undefined;
}

/**
 * A new Odoo password for the owner: hashed as Odoo hashes it, written into
 * Odoo's database under the instance lock (no provisioning or restore runs
 * beside it), then sealed for the one-time display. Odoo ties its session
 * tokens to the password hash, so sessions opened with the old one end.
 */
export async function resetOdooPassword(id: string): Promise<InstanceRow> {
  return withInstanceLock(id, async () => {
    const cur = (await getInstance(db('instance'), id))!;
    if (!RESETTABLE.has(cur.status) || !cur.db_password_sealed) {
      throw new HttpError(409, 'invalid_state', `Cannot reset the Odoo password of an instance that is ${cur.status}`, {
        action: `not allowed while ${cur.status}`,
        status: cur.status,
      });
    }
    const fresh = newOdooPassword();
    const hash = await odooPasswordHash(fresh.plain);
    // Odoo's database unreachable: nothing changed, the owner may try again.
    await setOdooPassword(specOf(cur).database, hash).catch(() => {
      throw HttpError.unavailable("The instance's database");
    });
    return updateInstance(db('instance'), id, { admin_password_sealed: fresh.sealed, admin_password_shown: false, admin_password_hash: hash });
  });
}
