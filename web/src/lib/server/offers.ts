/** The plans on sale for visitors (the plans API needs no login), as one offer per plan. */
import type { RequestEvent } from '@sveltejs/kit';
import type { Plan } from '$lib/platform';
import { planOffers, type Offer } from '$lib/plans';
import { api } from './api';

export async function publicOffers(event: RequestEvent): Promise<Offer[]> {
	try {
		const r = await api<{ items: Plan[] }>(event, 'GET', 'plans', { auth: false });
		return planOffers(r.items ?? []);
	} catch {
		return []; // the page still explains the service; the plans come back with the API
	}
}
