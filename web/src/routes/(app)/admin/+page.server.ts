import { api } from '$lib/server/api';
import { findCustomers } from '$lib/server/customers';
import { failFrom, loadError } from '$lib/server/forms';
import type { Instance } from '$lib/platform';
import type { Actions, PageServerLoad } from './$types';

export const load: PageServerLoad = async (event) => {
	const status = event.url.searchParams.get('status') ?? '';
	const q = (event.url.searchParams.get('q') ?? '').trim().toLowerCase();
	try {
		// Every instance once: the status filter narrows the instance table only, never the customers.
		const [list, customers] = await Promise.all([api<{ items: Instance[] }>(event, 'GET', 'instances', { query: { all: 'true' } }), findCustomers(event, q)]);
		const all = list.items ?? [];
		const byId = new Map(customers.map((c) => [c.id, c]));
		const items = all
			.filter((i) => !status || i.status === status)
			.filter((i) => !q || byId.has(i.customerId ?? '') || [i.name, i.subdomain, i.id].some((s) => s?.toLowerCase().includes(q)))
			.map((i) => ({ ...i, customerEmail: byId.get(i.customerId ?? '')?.email ?? i.customerEmail }));
		const counts = new Map<string, { count: number; failing: number }>();
		for (const i of all) {
			const c = counts.get(i.customerId ?? '') ?? { count: 0, failing: 0 };
			if (i.status !== 'terminated') c.count++;
			if (['error', 'suspended'].includes(i.status)) c.failing++;
			counts.set(i.customerId ?? '', c);
		}
		return {
			items,
			status,
			q,
			customers: customers.map((c) => ({ ...c, ...(counts.get(c.id) ?? { count: 0, failing: 0 }) })),
		};
	} catch (err) {
		loadError(err);
	}
};

export const actions: Actions = {
	retry: async (event) => {
		const data = await event.request.formData();
		const id = String(data.get('id') ?? '');
		try {
			await api(event, 'POST', 'instance-action', { body: { id, action: 'retry' } });
		} catch (err) {
			return failFrom(err);
		}
		return { success: 'Retry started: provisioning resumes from the failed step.' };
	},
};
