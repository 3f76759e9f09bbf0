import { api } from '$lib/server/api';
import { findCustomers } from '$lib/server/customers';
import { loadError } from '$lib/server/forms';
import type { ActivityEntry } from '$lib/activity';
import { activityFilters } from './filters';
import type { PageServerLoad } from './$types';

/** Every account's activity, searched by customer, instance, actor, action and date (operators only: audit-log checks). */
export const load: PageServerLoad = async (event) => {
	const filters = activityFilters(event.url);
	const before = event.url.searchParams.get('before') ?? undefined;
	try {
		// Every customer's instances and emails, so entries name them rather than show ids (a lookup that fails leaves the words generic).
		const [log, instances, customers] = await Promise.all([
			api<{ items: ActivityEntry[]; next: string | null }>(event, 'GET', 'audit-log', { query: { ...filters, before, limit: 100 } }),
			api<{ items: { id: string; name: string }[] }>(event, 'GET', 'instances', { query: { all: 'true' } }).catch(() => ({ items: [] })),
			findCustomers(event).catch(() => []),
		]);
		const names = Object.fromEntries((instances.items ?? []).map((i) => [i.id, i.name]));
		const emails = Object.fromEntries(customers.map((c) => [c.id, c.email]));
		return { items: log.items, next: log.next, names, emails, self: event.locals.user?.id, query: Object.fromEntries(event.url.searchParams) };
	} catch (err) {
		loadError(err);
	}
};
