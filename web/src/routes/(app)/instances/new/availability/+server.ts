import { json } from '@sveltejs/kit';
import { api, ApiError } from '$lib/server/api';
import { subdomainProblem } from '$lib/platform';
import type { RequestHandler } from './$types';

/** Is this subdomain free? Asked as the customer types (JSON for the new-instance page). */
export const GET: RequestHandler = async (event) => {
	const subdomain = (event.url.searchParams.get('subdomain') ?? '').trim().toLowerCase();
	const problem = subdomainProblem(subdomain);
	if (problem) return json({ available: false, reason: problem });
	try {
		const r = await api<{ available: boolean; reason?: string }>(event, 'GET', 'instances', { query: { available: subdomain } });
		const reason = r.reason && /^[a-z]/.test(r.reason) ? `${subdomain} ${r.reason}` : r.reason;
		return json({ available: !!r.available, reason: reason ?? (r.available ? undefined : `${subdomain} is taken`) });
	} catch (err) {
		if (err instanceof ApiError) return json({ available: null, reason: err.status === 400 ? (err.fields.available ?? err.message) : 'Cannot check right now' });
		throw err;
	}
};
