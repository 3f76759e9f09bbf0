/** The plans on sale for visitors (the plans API needs no login), as one offer per plan. */
import type { RequestEvent } from '@sveltejs/kit';
import type { Plan } from '$lib/platform';
import { planOffers, type Offer } from '$lib/plans';
import { api } from './api';

export async function publicOffers(event: RequestEvent, waitMs?: number): Promise<Offer[]> {
	const offers = api<{ items: Plan[] }>(event, 'GET', 'plans', { auth: false })
		.then((r) => planOffers(r.items ?? []))
		.catch(() => [] as Offer[]); // the page still explains the service; the plans come back with the API
	if (waitMs === undefined) return offers;
	// The landing page answers at once even while the plans function starts (it is also the portal's start-up probe).
	return Promise.race([offers, new Promise<Offer[]>((r) => setTimeout(() => r([]), waitMs).unref())]);
}
