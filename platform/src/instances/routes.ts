/**
 * `instance.routes` (sent when a custom domain is verified or removed): the
 * runtime routes the instance's verified domains (Kubernetes: its
 * IngressRoute hosts and certificate; locally the gateway reads them from
 * the instance row), and Odoo's `web.base.url` follows the primary one, so
 * the links in Odoo's own mails name the address customers use.
 */
import { db } from '../db/index.ts';
import { runtime } from '../runtime/index.ts';
import { loadOwned, type Command } from './command.ts';
import { withInstanceLock } from './locks.ts';
import { odooBaseUrl } from './names.ts';
import { odooDatabaseState, setOdooBaseUrl } from './odoo.ts';
import { getInstance } from './repository.ts';
import { specOf } from './runtime-spec.ts';

/** Re-applies the instance with its current run state and domains; a no-op before it has a runtime. */
export async function applyRoutes(cmd: Command<{ instanceId: string; customerId: string }>): Promise<void> {
  const row0 = await loadOwned(cmd);
  if (row0.status === 'terminated' || row0.status === 'terminating') return;
  await withInstanceLock(row0.id, async () => {
    const row = (await getInstance(db('instance'), row0.id))!;
    const rt = await runtime();
    if ((await rt.status(row.id)).state !== 'missing') {
      const serving = row.status === 'running' || row.status === 'starting' || row.status === 'restarting';
      await rt.apply(specOf(row), row.status === 'suspended' ? { replicas: 0, suspended: true } : { replicas: serving ? 1 : 0 });
    }
    const spec = specOf(row);
    // Before configure has run, configure itself sets the address (odooBaseUrl).
    if (row.admin_password_hash && (await odooDatabaseState(spec.database)) === 'installed') {
      await setOdooBaseUrl(spec.database, odooBaseUrl(row));
    }
    cmd.log.info({ instanceId: row.id, domains: row.custom_domains.length }, 'routes applied');
  });
}
