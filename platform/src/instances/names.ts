/**
 * Naming rules of an instance (platform/src/instances/README.md 3): the subdomain a customer picks, and
 * the database, role and storage names derived from the ids. One place, so
 * `instances` (validation), `provision` (creation) and `instance-ops`
 * (removal) can never disagree on a name.
 */
import { config } from '../config.ts';

/** Words a customer may not take: they route to the platform itself. */
export const RESERVED_SUBDOMAINS: ReadonlySet<string> = new Set(['www', 'api', 'admin', 'app', 'auth', 'billing', 'mail', 'static', 'status']);

/** Template instances (templates.ts) are served as `tpl-<hash>`: a customer's address must never be one. */
export const TEMPLATE_PREFIX = 'tpl-';

const SUBDOMAIN_RE = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;

/**
 * Why `s` cannot be a subdomain, or undefined when it can. Uniqueness is the
 * database's job (a unique index); this checks the form only.
 */
export function subdomainProblem(s: string): string | undefined {
  if (s.length < 3 || s.length > 50) return 'must be 3 to 50 characters';
  if (!/^[a-z0-9-]+$/.test(s)) return 'only lowercase letters, digits and hyphens';
  if (!SUBDOMAIN_RE.test(s)) return 'must not start or end with a hyphen';
  if (RESERVED_SUBDOMAINS.has(s)) return 'is reserved';
  if (s.startsWith(TEMPLATE_PREFIX)) return `is reserved (addresses starting with ${TEMPLATE_PREFIX} are the platform's own)`;
  return undefined;
}

/** First `n` hex digits of a uuid: short but unique enough for names. */
export function shortId(uuid: string, n: number): string {
  return uuid.replace(/-/g, '').toLowerCase().slice(0, n);
}

/**
 * Role `odoo_{instance_short}` and database `odoo_{customer_short}_{instance_short}`,
 * both under the DB_NAMESPACE prefix so a test run's instances are dropped
 * with its namespace.
 */
export function instanceDbNames(instanceId: string, customerId: string): { role: string; database: string } {
  const ns = config().DB_NAMESPACE;
  const inst = shortId(instanceId, 12);
  return { role: `${ns}odoo_${inst}`, database: `${ns}odoo_${shortId(customerId, 8)}_${inst}` };
}

/** Public URL of an instance: `{scheme}://{subdomain}.{BASE_DOMAIN}` (+ the gateway port locally). */
export function instanceUrl(subdomain: string): string {
  return urlOfHost(`${subdomain}.${config().BASE_DOMAIN}`);
}

/** The address Odoo calls itself: its primary custom domain once one is verified, else its own. */
export function odooBaseUrl(row: { subdomain: string; custom_domains: string[] }): string {
  return row.custom_domains[0] ? urlOfHost(row.custom_domains[0]) : instanceUrl(row.subdomain);
}

function urlOfHost(host: string): string {
  const c = config();
  const local = c.BASE_DOMAIN === 'localhost' ? `:${c.GATEWAY_PORT}` : '';
  return `${c.INSTANCE_URL_SCHEME}://${host}${local}`;
}
