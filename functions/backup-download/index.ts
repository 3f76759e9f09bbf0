/**
 * GET /api/backup-download?token=: streams one backup (a tar of db.dump,
 * filestore.tar.gz and manifest.json). The signed, expiring token is the
 * only authorisation (links are handed out by GET /api/instances
 * ?id=&backupLink= to the owner). Bad or expired token → 401; a backup
 * that is gone → 404. The archive streams (memory stays bounded whatever
 * its size); a failure mid-stream aborts the connection.
 */
import { z } from 'zod';
import { db } from '@saasodoo/platform/db/index';
import { HttpError } from '@saasodoo/platform/errors';
import { httpFunction } from '@saasodoo/platform/fn';
import { verifyBackupLink } from '@saasodoo/platform/runtime/backup-links';
import { runtime, RuntimeError } from '@saasodoo/platform/runtime/index';
import { getBackup } from '@saasodoo/platform/instances/repository';

export default httpFunction({
  name: 'backup-download',
  GET: {
    auth: 'none',
    query: z.object({ token: z.string().min(1).max(2000) }).strict(),
    async handle({ query }) {
      const check = verifyBackupLink(query.token);
      if (!check.ok) {
        throw new HttpError(401, 'invalid_link', check.reason === 'expired' ? 'This download link has expired' : 'This download link is not valid');
      }
      const b = await getBackup(db('instance'), check.instanceId, check.backupId);
      if (!b || b.status !== 'completed') throw HttpError.notFound('No such backup');
      try {
        const dl = await (await runtime()).openBackup(check.instanceId, check.backupId);
        // Streamed with backpressure: fn.ts makes a Readable body work under faas-js-runtime (streamingBody).
        return {
          status: 200,
          body: dl.stream,
          headers: {
            'content-type': dl.contentType,
            'content-disposition': `attachment; filename="${dl.filename.replace(/[^A-Za-z0-9._-]/g, '_')}"`,
            'cache-control': 'no-store',
          },
        };
      } catch (err) {
        if (err instanceof RuntimeError && err.code === 'not_found') throw HttpError.notFound('No such backup');
        throw err;
      }
    },
  },
});
