/** The audit log's search filters, read from the page's query string (empty ones left out). */
export function activityFilters(url: URL): Record<string, string> {
	const out: Record<string, string> = {};
	for (const k of ['customerId', 'instanceId', 'actor', 'action']) {
		const v = url.searchParams.get(k)?.trim();
		if (v) out[k] = v;
	}
	// Dates from <input type="date">: whole days, in UTC.
	const from = url.searchParams.get('from');
	const to = url.searchParams.get('to');
	if (from) out.from = `${from}T00:00:00Z`;
	if (to) out.to = new Date(Date.parse(`${to}T00:00:00Z`) + 86_400_000).toISOString();
	return out;
}
