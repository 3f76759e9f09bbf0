/**
 * The customer's email and name, from the auth service's own API (GET
 * /api/account through the gateway, with the customer's Authorization): a
 * function never reads another service's tables. Create records them as the
 * instance's Odoo login and user name (platform/src/instances/README.md 3 odoo_configure).
 */
import { config } from '@saasodoo/platform/config';
import { HttpError } from '@saasodoo/platform/errors';

export type CustomerProfile = { email: string; name: string };

/** Throws 503 when the account service cannot answer. */
export async function customerProfile(authorization: string): Promise<CustomerProfile> {
  let body: any;
  try {
    const res = await fetch(`${config().GATEWAY_URL}/api/account`, {
      headers: { authorization, accept: 'application/json' },
      signal: AbortSignal.timeout(15_000),
    });
    body = await res.json().catch(() => undefined);
    if (res.status === 401) throw new HttpError(401, 'unauthorized', 'Sign in again');
    if (!res.ok) throw new Error(`account answered ${res.status}`);
  } catch (err) {
    if (err instanceof HttpError) throw err;
    throw HttpError.unavailable('Accounts');
  }
  const p = body?.profile;
  if (typeof p?.email !== 'string' || !p.email) throw HttpError.unavailable('Accounts');
  const name = [p.firstName, p.lastName]
    .filter((v) => typeof v === 'string' && v.trim())
    .join(' ')
    .trim();
  return { email: p.email, name: name || p.email };
}
