/**
 * GET /api/instances: the caller's instances (`?id=` one, with its history,
 * backups and storage samples; `?available=` checks a subdomain; `?backupLink=` signs a
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
import { takeAdminPassword } from '@saasodoo/platform/instances/admin-password';
import {
  BACKUP_ID_RE,
  backupToApi,
  findForCaller,
  getBackup,
  historyToApi,
  listBackups,
  listHistory,
  listInstances,
  listStorageSamples,
  subdomainTaken,
  toApi,
} from '@saasodoo/platform/instances/repository';
import { allowedActions, STATUSES } from '@saasodoo/platform/instances/states';
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
        const taken = await subdomainTaken(d, q.available);
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
        const [history, backups, storageHistory, adminPassword] = await Promise.all([
          listHistory(d, row.id),
          listBackups(d, row.id),
          listStorageSamples(d, row.id),
          takeAdminPassword(row, caller.userId),
        ]);
        return {
          body: {
            ...toApi(row),
            actions: allowedActions(row.status, caller.role === 'admin'),
            history: history.map(historyToApi),
            backups: backups.map(backupToApi),
            storageHistory,
            ...(adminPassword ? { adminPassword } : {}),
          },
          headers: { 'cache-control': 'no-store' },
        };
      }
      const all = q.all === 'true';
      if ((all || q.customerId) && caller.role !== 'admin') throw HttpError.forbidden('Only admins list every tenant');
      const rows = await listInstances(d, {
        customerId: all ? (q.customerId ?? null) : caller.userId,
        status: q.status ?? null,
        withTerminated: all || q.status === 'terminated',
      });
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
