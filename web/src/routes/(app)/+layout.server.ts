import { loginRedirect } from '$lib/server/api';
import type { LayoutServerLoad } from './$types';

/** Everything in (app) needs a session; without one, log in and come back. */
export const load: LayoutServerLoad = ({ locals, url }) => {
	if (!locals.user) loginRedirect(url);
	return {};
};
