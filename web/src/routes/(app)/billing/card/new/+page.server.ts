import { redirect } from '@sveltejs/kit';
import { api } from '$lib/server/api';
import { loadError } from '$lib/server/forms';
import type { PageServerLoad } from './$types';

/**
 * "Add card" / "Update card": a link here asks for a Stripe Checkout setup session and redirects to its
 * hosted card page (the card never passes through us). A link rather than a form: the portal's CSP
 * allows forms to post to itself only, and Chrome applies form-action to a form's redirect too.
 */
export const load: PageServerLoad = async (event) => {
	let url: string;
	try {
		({ url } = await api<{ url: string }>(event, 'POST', 'billing', { body: { action: 'addCard' } }));
	} catch (err) {
		loadError(err);
	}
	redirect(303, url);
};
