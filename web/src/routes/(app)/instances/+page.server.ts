import { api } from '$lib/server/api';
import { loadError } from '$lib/server/forms';
import { trialEnds } from '$lib/server/trials';
import type { Instance } from '$lib/platform';
import type { PageServerLoad } from './$types';

export const load: PageServerLoad = async (event) => {
	try {
		const list = await api<{ items: Instance[] }>(event, 'GET', 'instances');
		const items = list.items ?? [];
		return { instances: items, trialEnds: await trialEnds(event, items.filter((i) => i.billingStatus === 'trial').map((i) => i.id)) };
	} catch (err) {
		loadError(err);
	}
};
