import { api } from '$lib/server/api';
import { findCustomers } from '$lib/server/customers';
import { loadError } from '$lib/server/forms';
import type { PageServerLoad } from './$types';

/** One database server as the instances API gives it to operators (no credentials). */
export type Pool = {
	name: string;
	kind: 'shared' | 'dedicated';
	server: string;
	capacity: number;
	state: 'active' | 'draining' | 'degraded' | 'unhealthy';
	checkedAt: string | null;
	lastError: string | null;
	instances: { id: string; name: string; subdomain: string; customerId: string; status: string; plan: string }[];
};

export const load: PageServerLoad = async (event) => {
	try {
		const [list, customers] = await Promise.all([api<{ items: Pool[] }>(event, 'GET', 'instances', { query: { pools: 'true' } }), findCustomers(event).catch(() => [])]);
		const emails = Object.fromEntries(customers.map((c) => [c.id, c.email]));
		return { items: list.items ?? [], emails };
	} catch (err) {
		loadError(err);
	}
};
