import { api } from '$lib/server/api';
import { loadError } from '$lib/server/forms';
import { trialEnds } from '$lib/server/trials';
import type { Instance, Plan } from '$lib/platform';
import type { PageServerLoad } from './$types';

export const load: PageServerLoad = async (event) => {
	try {
		const [list, plans] = await Promise.all([api<{ items: Instance[] }>(event, 'GET', 'instances'), api<{ items: Plan[] }>(event, 'GET', 'plans').catch(() => ({ items: [] as Plan[] }))]);
		const items = list.items ?? [];
		return {
			instances: items,
			plans: plans.items ?? [],
			trialEnds: (
				await trialEnds(
					event,
					items.filter((i) => i.billingStatus === 'trial').map((i) => i.id),
				)
			).ends,
		};
	} catch (err) {
		loadError(err);
	}
};
