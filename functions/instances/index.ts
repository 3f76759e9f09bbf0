/**
 * GET /api/instances: the caller's instances (`?id=` one, with its history
 * and backups; `?available=` checks a subdomain; `?backupLink=` signs a
 * download link; admins: `?all=true&status=&customerId=`, `?pools=true`).
 * POST /api/instances: create (platform/src/instances/README.md 3 and functions/README.md, HTTP API), answered 202 {id, status}.
 */
import { z } from 'zod';
import { config } from '@saasodoo/platform/config';
import { db } from '@saasodoo/platform/db/index';
import { HttpError } from '@saasodoo/platform/errors';
import { httpFunction, route } from '@saasodoo/platform/fn';
import { signBackupLink } from '@saasodoo/platform/runtime/backup-links';
import { subdomainProblem } from '@saasodoo/platform/instances/names';
import { BACKUP_ID_RE, backupToApi, findForCaller, getBackup, historyToApi, listBackups, listHistory, toApi, type InstanceRow } from '@saasodoo/platform/instances/repository';
import { allowedActions, STATUSES } from '@saasodoo/platform/instances/states';
import { unseal } from '@saasodoo/platform/instances/secrets';
import { poolsForOperators } from '@saasodoo/platform/instances/pools';
import { createInstance, createBody } from './create.ts';

/** Download links live this long. */
const LINK_TTL_SECONDS = 15 * 60;

const query = z
  .object({
    id: z.uuid().optional(),
    available: z.string().max(100).optional(),
    backupLink: z.string().regex(BACKUP_ID_RE, 'not a backup id').optional(),
    all: z.enum(['true', 'false']).optional(),
    status: z.enum(STATUSES).optional(),
    customerId: z.uuid().optional(),
    /** Admins: the database pools with their instances, capacity and health (the operators' page). */
    pools: z.enum(['true']).optional(),
  })
  .strict();

/**
 * The one-time display of the Odoo admin password: the owner's first read
 * of a running instance takes the sealed clear text out of the database
 * (atomically, so two tabs cannot both get it); afterwards only the hash is left.
 */
async function takeAdminPassword(row: InstanceRow, callerId: string): Promise<string | undefined> {
  if (row.customer_id !== callerId || row.admin_password_shown || !row.admin_password_sealed || row.status !== 'running') return undefined;
  const taken = await db('instance').oneOrNone<{ sealed: string }>(
    `UPDATE instances i SET admin_password_sealed = NULL, admin_password_shown = true, updated_at = now()
       FROM (SELECT id, admin_password_sealed AS sealed FROM instances WHERE id = $1 FOR UPDATE) old
      WHERE i.id = old.id AND i.admin_password_sealed IS NOT NULL RETURNING old.sealed`,
    [row.id],
  );
  return taken ? unseal(taken.sealed) : undefined;
}

export default httpFunction({
  name: 'instances',
  GET: route<z.infer<typeof query>, undefined, 'customer'>({
    auth: 'customer',
    query,
    async handle({ query: q, caller }) {
      const d = db('instance');
      if (q.pools) {
        if (caller.role !== 'admin') throw HttpError.forbidden('Only admins see the database pools');
        return { body: { items: await poolsForOperators() } };
      }
      if (q.available !== undefined) {
        const problem = subdomainProblem(q.available);
        if (problem) return { body: { available: false, reason: problem } };
        const taken = await d.oneOrNone(`SELECT 1 FROM instances WHERE subdomain = $1 AND status <> 'terminated'`, [q.available]);
        return { body: { available: !taken, reason: taken ? 'is taken' : undefined } };
      }
      if (q.backupLink) {
        if (!q.id) throw HttpError.badRequest('Say which instance', { id: 'required with backupLink' });
        const row = await findForCaller(d, q.id, caller);
        // Links are for the owner only: an admin reads the backup list but downloads nothing.
        if (row.customer_id !== caller.userId) throw HttpError.notFound('No such instance');
        const b = await getBackup(d, row.id, q.backupLink);
        if (!b || b.status !== 'completed') throw HttpError.notFound('No such backup');
        const token = signBackupLink(row.id, b.id, LINK_TTL_SECONDS);
        const expiresAt = new Date(Date.now() + LINK_TTL_SECONDS * 1000).toISOString();
        return { body: { url: `${config().GATEWAY_URL}/api/backup-download?token=${token}`, expiresAt } };
      }
      if (q.id) {
        const row = await findForCaller(d, q.id, caller);
        const [history, backups, adminPassword] = await Promise.all([listHistory(d, row.id), listBackups(d, row.id), takeAdminPassword(row, caller.userId)]);
        return {
          body: {
            ...toApi(row),
            actions: allowedActions(row.status, caller.role === 'admin'),
            history: history.map(historyToApi),
            backups: backups.map(backupToApi),
            ...(adminPassword ? { adminPassword } : {}),
          },
          headers: { 'cache-control': 'no-store' },
        };
      }
      const all = q.all === 'true';
      if ((all || q.customerId) && caller.role !== 'admin') throw HttpError.forbidden('Only admins list every tenant');
      const rows = await d.manyOrNone<InstanceRow>(
        `SELECT * FROM instances WHERE ($1::uuid IS NULL OR customer_id = $1) AND ($2::text IS NULL OR status = $2)
         ${all || q.status === 'terminated' ? '' : `AND status <> 'terminated'`} ORDER BY created_at DESC LIMIT 1000`,
        [all ? (q.customerId ?? null) : caller.userId, q.status ?? null],
      );
      return { body: { items: rows.map(toApi) } };
    },
  }),
  POST: route<undefined, z.infer<typeof createBody>, 'customer'>({
    auth: 'customer',
    body: createBody,
    handle: ({ body, caller, headers, requestId, traceparent }) => createInstance(body, caller, String(headers.authorization ?? ''), { requestId, traceparent }),
  }),
  outbox: 'instance',
});
