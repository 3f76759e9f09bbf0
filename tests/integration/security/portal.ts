/**
 * The real portal (SvelteKit build under adapter-node, as `npm start` runs
 * it) in front of the gateway and the `login` function only, for security
 * suites that look at its redirects and cookies over plain HTTP (no browser
 * needed: what a browser does with a Location or Set-Cookie header is
 * checked with the same URL rules).
 */
import { startPlatform, type Platform } from '../../helpers/platform.ts';

export type Portal = { platform: Platform; url: string; origin: string };

/** Starts the platform with the portal, leaving out every host service and function the login flow does not use. */
export async function startPortal(env: Record<string, string> = {}): Promise<Portal> {
  const platform = await startPlatform({ env, skip: ['broker', 'schedules', 'killbill-sim', 'smtp-catcher', 'runtime'], only: ['login'] });
  const url = `http://127.0.0.1:${platform.env.PORTAL_PORT}`;
  return { platform, url, origin: new URL(platform.env.PUBLIC_URL).origin };
}

/**
 * Posts the login form as a browser without JavaScript does (`enhanced`:
 * as SvelteKit's `use:enhance` does, answered with JSON), from the portal's
 * own origin (SvelteKit refuses cross-origin form posts).
 */
export function postLogin(p: Portal, o: { email: string; password: string; next?: string; enhanced?: boolean }): Promise<Response> {
  const query = o.next === undefined ? '' : `?${new URLSearchParams({ next: o.next })}`;
  return fetch(`${p.url}/login${query}`, {
    method: 'POST',
    redirect: 'manual',
    headers: {
      origin: p.origin,
      'content-type': 'application/x-www-form-urlencoded',
      // A browser's form post asks for HTML (SvelteKit answers JSON to `*/*`).
      ...(o.enhanced ? { 'x-sveltekit-action': 'true', accept: 'application/json' } : { accept: 'text/html,application/xhtml+xml' }),
    },
    body: new URLSearchParams({ email: o.email, password: o.password }).toString(),
  });
}

/** `name=value` of each Set-Cookie of a response, with its attributes. */
export function setCookies(res: Response): { name: string; value: string; attributes: string[] }[] {
  return res.headers.getSetCookie().map((line) => {
    const [pair, ...attributes] = line.split(';').map((s) => s.trim());
    const eq = pair.indexOf('=');
    return { name: pair.slice(0, eq), value: pair.slice(eq + 1), attributes };
  });
}
