/**
 * The caller's address, for per-IP limits (signup, login, reset...). Who
 * may say what it is:
 *
 * - the edge, in X-Forwarded-For: Traefik on Kubernetes and the local
 *   gateway both drop any X-Forwarded-For a client sends and put the TCP
 *   peer first, so the first entry is the client (proxies behind the edge,
 *   Kourier, the activator, only append);
 * - the portal's server side, for the browser it calls on behalf of, in
 *   X-SaaSOdoo-Client-IP, only with the proxy token (GATEWAY_PROXY_TOKEN,
 *   compared in constant time). The portal reaches the functions through
 *   the edge, which replaces its X-Forwarded-For with the portal's own
 *   address, so without this every portal user would share one budget.
 *
 * A client-ip header without the right token is ignored.
 */
import { timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { config } from './config.ts';
import { localSecret } from './secrets.ts';

export const PROXY_TOKEN_HEADER = 'x-saasodoo-proxy-token';
export const CLIENT_IP_HEADER = 'x-saasodoo-client-ip';

type Headers = Record<string, string | string[] | undefined>;

let token: Buffer | undefined;

function proxyToken(): Buffer {
  // The same secret the local gateway and portal use (generated into DATA_DIR on a laptop).
  token ??= Buffer.from(localSecret('GATEWAY_PROXY_TOKEN', config().GATEWAY_PROXY_TOKEN));
  return token;
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function vouched(given: string | undefined): boolean {
  if (!given) return false;
  const g = Buffer.from(given);
  const want = proxyToken();
  return g.length === want.length && timingSafeEqual(g, want);
}

/**
 * The client address of a request (see the module comment for whom it
 * trusts). Removes the proxy token from `headers`, so no handler can log or
 * echo it.
 */
export function takeClientIp(headers: Headers): string {
  const given = first(headers[PROXY_TOKEN_HEADER]);
  delete headers[PROXY_TOKEN_HEADER];
  const claimed = first(headers[CLIENT_IP_HEADER])?.trim();
  if (claimed && isIP(claimed) && vouched(given)) return claimed;
  const forwarded = first(headers['x-forwarded-for'])?.split(',')[0]?.trim();
  return forwarded || '127.0.0.1';
}

/** Forget the cached token (tests that change the environment). */
export function resetProxyToken(): void {
  token = undefined;
}
