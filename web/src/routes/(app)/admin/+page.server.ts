import { api } from '$lib/server/api';
import { failFrom, loadError } from '$lib/server/forms';
import type { Instance } from '$lib/platform';
import type { Actions, PageServerLoad } from './$types';

export const load: PageServerLoad = async (event) => {
	const status = event.url.searchParams.get('status') ?? '';
	const q = (event.url.searchParams.get('q') ?? '').trim().toLowerCase();
	try {
		const list = await api<{ items: Instance[] }>(event, 'GET', 'instances', { query: { all: 'true', status: status || undefined } });
		const items = (list.items ?? []).filter(
			(i) => !q || [i.name, i.subdomain, i.customerEmail, i.customerId, i.id].some((s) => s?.toLowerCase().includes(q)),
		);
		// Customers, from their instances: who has how many, and how many are in trouble.
		const customers = new Map<string, { id: string; email?: string; count: number; failing: number }>();
		for (const i of list.items ?? []) {
			const key = i.customerId ?? i.customerEmail ?? 'unknown';
			const c = customers.get(key) ?? { id: key, email: i.customerEmail, count: 0, failing: 0 };
			c.count++;
			if (['error', 'suspended'].includes(i.status)) c.failing++;
			customers.set(key, c);
		}
		return { items, status, q, customers: [...customers.values()] };
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
