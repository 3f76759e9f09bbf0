import { publicOffers } from '$lib/server/offers';
import type { PageServerLoad } from './$types';

export const load: PageServerLoad = async (event) => ({ offers: await publicOffers(event) });
