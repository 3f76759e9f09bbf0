import { api } from '$lib/server/api';
import { loadError } from '$lib/server/forms';
import type { ActivityEntry } from '$lib/activity';
import { activityFilters } from './filters';
import type { PageServerLoad } from './$types';

/** Every account's activity, searched by customer, instance, actor, action and date (operators only: audit-log checks). */
export const load: PageServerLoad = async (event) => {
	const filters = activityFilters(event.url);
	const before = event.url.searchParams.get('before') ?? undefined;
	try {
		const [log, instances] = await Promise.all([
			api<{ items: ActivityEntry[]; next: string | null }>(event, 'GET', 'audit-log', { query: { ...filters, before, limit: 100 } }),
			api<{ items: { id: string; name: string }[] }>(event, 'GET', 'instances'),
		]);
		const names = Object.fromEntries((instances.items ?? []).map((i) => [i.id, i.name]));
		return { items: log.items, next: log.next, names, self: event.locals.user?.id, query: Object.fromEntries(event.url.searchParams) };
	} catch (err) {
		loadError(err);
	}
};
