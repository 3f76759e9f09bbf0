import { api } from '$lib/server/api';
import { loadError } from '$lib/server/forms';
import type { ActivityEntry } from '$lib/activity';
import type { PageServerLoad } from './$types';

/** The customer's own account activity (the audit log keeps only their entries for them), newest first. */
export const load: PageServerLoad = async (event) => {
	const before = event.url.searchParams.get('before') ?? undefined;
	try {
		const [log, instances] = await Promise.all([
			api<{ items: ActivityEntry[]; next: string | null }>(event, 'GET', 'audit-log', { query: { limit: 50, before } }),
			api<{ items: { id: string; name: string }[] }>(event, 'GET', 'instances'),
		]);
		const names = Object.fromEntries((instances.items ?? []).map((i) => [i.id, i.name]));
		return { items: log.items, next: log.next, names, self: event.locals.user?.id };
	} catch (err) {
		loadError(err);
	}
};
