import { api } from '$lib/server/api';
import { loadError } from '$lib/server/forms';
import type { ActivityEntry } from '$lib/activity';
import { activityFilters } from '../filters';
import type { RequestHandler } from './$types';

const MAX = 10_000;

/** The matching audit entries as a JSON lines download, newest first (at most 10,000). */
export const GET: RequestHandler = async (event) => {
	const filters = activityFilters(event.url);
	const lines: string[] = [];
	let before: string | undefined;
	try {
		do {
			const page = await api<{ items: ActivityEntry[]; next: string | null }>(event, 'GET', 'audit-log', { query: { ...filters, before, limit: 200 } });
			for (const e of page.items) lines.push(JSON.stringify(e));
			before = page.next ?? undefined;
		} while (before && lines.length < MAX);
	} catch (err) {
		loadError(err);
	}
	return new Response(
		lines
			.slice(0, MAX)
			.map((l) => `${l}\n`)
			.join(''),
		{
			headers: {
				'content-type': 'application/x-ndjson; charset=utf-8',
				'content-disposition': 'attachment; filename="audit-log.jsonl"',
				'cache-control': 'no-store',
			},
		},
	);
};
