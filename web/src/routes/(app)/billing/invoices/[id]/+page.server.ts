import { error } from '@sveltejs/kit';
import { api } from '$lib/server/api';
import { loadError } from '$lib/server/forms';
import type { Plan } from '$lib/platform';
import type { PageServerLoad } from './$types';

/** One invoice line as billing describes it (platform/src/billing/service.ts InvoiceLine): the portal words it. */
export type InvoiceLine = { kind: 'charge' | 'credit' | 'tax' | 'adjustment'; plan?: string; addOn: boolean; trial: boolean; startDate?: string; endDate?: string; amount: number };
export type InvoiceView = { id: string; number?: string; date?: string; amount?: number; balance?: number; currency?: string; lines: InvoiceLine[] };

/** One of the customer's invoices, with the plans to name its lines by. */
export const load: PageServerLoad = async (event) => {
	if (!/^[0-9a-f-]{36}$/i.test(event.params.id)) error(404, { message: 'Not found', code: 'not_found' });
	try {
		const [invoice, plans] = await Promise.all([
			api<InvoiceView>(event, 'GET', 'billing', { query: { invoice: event.params.id } }),
			api<{ items: Plan[] }>(event, 'GET', 'plans').catch(() => ({ items: [] as Plan[] })),
		]);
		return { invoice, plans: plans.items ?? [] };
	} catch (err) {
		loadError(err);
	}
};
