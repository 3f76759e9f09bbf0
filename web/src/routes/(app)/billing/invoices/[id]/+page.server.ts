import { error } from '@sveltejs/kit';
import { api } from '$lib/server/api';
import { loadError } from '$lib/server/forms';
import type { PageServerLoad } from './$types';

export type InvoiceView = { id: string; number?: string; date?: string; amount?: number; balance?: number; currency?: string; html: string };

/** One of the customer's invoices with Kill Bill's rendering of it (shown sandboxed: no scripts, no access to the portal). */
export const load: PageServerLoad = async (event) => {
	if (!/^[0-9a-f-]{36}$/i.test(event.params.id)) error(404, { message: 'Not found', code: 'not_found' });
	try {
		return { invoice: await api<InvoiceView>(event, 'GET', 'billing', { query: { invoice: event.params.id } }) };
	} catch (err) {
		loadError(err);
	}
};
