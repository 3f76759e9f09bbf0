import { api } from '$lib/server/api';
import { failFrom, invalid, loadError } from '$lib/server/forms';
import type { Actions, PageServerLoad } from './$types';

export type Domain = {
	domain: string;
	verified: boolean;
	primary: boolean;
	checkedAt: string | null;
	problem: string | null;
	/** Verified, but its records stopped checking out then; it is released at releasesAt. */
	failingSince: string | null;
	releasesAt: string | null;
	records: { type: 'CNAME' | 'TXT'; name: string; value: string }[];
};

export const load: PageServerLoad = async (event) => {
	try {
		const [instance, domains] = await Promise.all([
			api<{ id: string; name: string; status: string }>(event, 'GET', 'instances', { query: { id: event.params.id } }),
			api<{ items: Domain[]; limit: number }>(event, 'GET', 'domains', { query: { instanceId: event.params.id } }),
		]);
		return { instance, domains: domains.items, limit: domains.limit };
	} catch (err) {
		loadError(err);
	}
};

/** add, verify and remove all post the same shape; the answer says what happened in words. */
async function act(event: Parameters<Actions[string]>[0], action: 'add' | 'verify' | 'remove') {
	const data = await event.request.formData();
	const domain = String(data.get('domain') ?? '').trim();
	if (!domain) return invalid({ domain: 'Enter a domain, such as erp.example.com' }, { domain });
	try {
		const r = await api<Domain | undefined>(event, 'POST', 'domains', { body: { action, instanceId: event.params.id, domain } });
		if (action === 'remove') return { success: `${domain} was removed. It no longer leads to this instance.` };
		if (action === 'add') return { success: `${r!.domain} was added. Create the two DNS records below, then check them.` };
		if (r!.verified && r!.problem) return { message: `${r!.domain} still leads here, but its records no longer check out: ${r!.problem}.`, fields: {} };
		return r!.verified
			? { success: `${r!.domain} is verified. It leads to this instance within a minute, with its own certificate.` }
			: { message: `${r!.domain} is not verified yet: ${r!.problem ?? 'the records were not found'}.`, fields: {} };
	} catch (err) {
		return failFrom(err, { domain });
	}
}

export const actions: Actions = {
	add: (event) => act(event, 'add'),
	verify: (event) => act(event, 'verify'),
	remove: (event) => act(event, 'remove'),
};
