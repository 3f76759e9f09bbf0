/**
 * How many PostgreSQL connections one tenant's Odoo may hold, by plan. The
 * tenant role gets this as its CONNECTION LIMIT, so no tenant can take the
 * shared server's connections from the others or from the platform.
 *
 * Why these numbers: Odoo in multi-process mode runs `workers` HTTP
 * processes, `max_cron_threads` (default 2) cron processes and one gevent
 * process (websocket/longpolling). Each process has its own pool (up to
 * `db_maxconn`), but a process serves one request at a time and holds at
 * most two cursors at once (the request's plus a short second one, e.g.
 * ir.logging, the bus or a mail flush). Odoo's own sizing rule gives
 * 2 × CPU + 1 workers. Two more cover the maintenance connections that run
 * as the tenant role next to a live Odoo (pg_dump of a backup, `odoo shell`).
 * Basic (1 CPU) → 14, Standard (2) → 18, Premium (4) → 26; Odoo started with
 * `--workers` and `--db_maxconn` = 2 stays inside it.
 */
import type { Plan } from '../plans.ts';

/** Odoo's default `max_cron_threads`: cron processes next to the workers. */
export const ODOO_CRON_PROCESSES = 2;
/** Cursors one Odoo process holds at once (request + one short-lived). */
export const CONNECTIONS_PER_ODOO_PROCESS = 2;
/** pg_dump of a backup or an `odoo shell` next to the running Odoo. */
export const MAINTENANCE_CONNECTIONS = 2;

/** Odoo HTTP workers for a plan's CPUs (Odoo's rule: 2 per CPU + 1). */
export function odooWorkers(resources: Plan['resources']): number {
  return 2 * Math.max(1, Math.ceil(resources.cpu)) + 1;
}

/** The tenant role's CONNECTION LIMIT for a plan's resources (see the module comment for why). */
export function tenantConnectionLimit(resources: Plan['resources']): number {
  const processes = odooWorkers(resources) + ODOO_CRON_PROCESSES + 1;
  return CONNECTIONS_PER_ODOO_PROCESS * processes + MAINTENANCE_CONNECTIONS;
}
