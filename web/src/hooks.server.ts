import type { Handle } from '@sveltejs/kit';
import { sessionCookie, unseal, userOf } from '$lib/server/session';

/**
 * Reads the sealed session cookie into locals, and marks every page
 * `Cache-Control: no-store` so that after logout the back button cannot show
 * private data from the browser's cache (static assets under /_app stay
 * cacheable; adapter-node serves those before this hook).
 */
export const handle: Handle = async ({ event, resolve }) => {
	const tokens = unseal(event.cookies.get(sessionCookie(event.url).name));
	if (tokens) {
		event.locals.tokens = tokens;
		event.locals.user = userOf(tokens.accessToken);
	}
	const response = await resolve(event);
	try {
		if (!event.url.pathname.startsWith('/_app/')) response.headers.set('cache-control', 'no-store');
		response.headers.set('x-content-type-options', 'nosniff');
		response.headers.set('referrer-policy', 'same-origin');
		response.headers.set('x-frame-options', 'DENY');
	} catch {
		/* immutable headers (a proxied response): leave them */
	}
	return response;
};
