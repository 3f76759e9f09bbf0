/**
 * The per-tenant webhook secret. Kill Bill cannot sign its notifications, so
 * the callback URL it posts to carries a hard-to-guess token per tenant
 * (reference/killbill.md 2, "Signing"): webhook-intake compares it in
 * constant time, and the host or an operator registers the URL with Kill Bill.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { config } from '../config.ts';
import { localSecret } from '../secrets.ts';

/** Tenants whose notifications are accepted: the configured Kill Bill tenant. */
export function knownTenants(): string[] {
  return [config().KILLBILL_API_KEY];
}

/** The token of a tenant: WEBHOOK_TOKEN for the configured tenant, else generated once into the local secrets. */
export function webhookToken(tenant: string): string {
  const c = config();
  return localSecret(`webhook.${c.DB_NAMESPACE}${tenant}`, tenant === c.KILLBILL_API_KEY ? c.WEBHOOK_TOKEN : undefined);
}

/** Constant-time check of `?tenant=&token=`; unknown tenants fail the same way. */
export function tokenMatches(tenant: string | undefined, token: string | undefined): boolean {
  const known = !!tenant && knownTenants().includes(tenant);
  const expected = createHash('sha256')
    .update(known ? webhookToken(tenant) : 'no such tenant')
    .digest();
  const given = createHash('sha256')
    .update(token ?? '')
    .digest();
  return timingSafeEqual(expected, given) && known && !!token;
}

/** The URL to register with Kill Bill for a tenant (contains the token: print it, never log it). */
export function callbackUrl(tenant = config().KILLBILL_API_KEY): string {
  const c = config();
  const base = c.KILLBILL_CALLBACK_BASE ?? `${c.GATEWAY_URL.replace(/\/$/, '')}/api/webhook-intake`;
  const u = new URL(base);
  u.searchParams.set('tenant', tenant);
  u.searchParams.set('token', webhookToken(tenant));
  return u.toString();
}
