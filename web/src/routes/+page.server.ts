import { redirect } from '@sveltejs/kit';
import { publicOffers } from '$lib/server/offers';
import type { PageServerLoad } from './$types';

export const load: PageServerLoad = async (event) => {
	if (event.locals.user) redirect(303, '/instances');
	return { offers: await publicOffers(event, 1500) };
};
