import { api } from '$lib/server/api';
import { loadError } from '$lib/server/forms';
import type { Instance } from '$lib/platform';
import type { PageServerLoad } from './$types';

export const load: PageServerLoad = async (event) => {
	try {
		const list = await api<{ items: Instance[] }>(event, 'GET', 'instances');
		return { instances: list.items ?? [] };
	} catch (err) {
		loadError(err);
	}
};
