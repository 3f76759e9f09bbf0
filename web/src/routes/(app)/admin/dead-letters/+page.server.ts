import { api } from '$lib/server/api';
import { findCustomers } from '$lib/server/customers';
import { failFrom, invalid, loadError } from '$lib/server/forms';
import type { Actions, PageServerLoad } from './$types';

/** `data` is the event's payload with secret-looking fields already redacted by the API; `status`/`body` the subscriber's last answer. */
export type DeadLetter = {
	id: string;
	trigger?: string;
	type?: string;
	subject?: string;
	reason?: string;
	deadAt?: string;
	time?: string;
	attempts?: number;
	status?: number;
	body?: string;
	data?: unknown;
};

export const load: PageServerLoad = async (event) => {
	const trigger = event.url.searchParams.get('trigger') ?? '';
	try {
		const [list, customers] = await Promise.all([
			api<{ items: DeadLetter[]; triggers?: string[] }>(event, 'GET', 'dead-letters', { query: { trigger: trigger || undefined } }),
			findCustomers(event).catch(() => []),
		]);
		const emails = Object.fromEntries(customers.map((c) => [c.id, c.email]));
		return { items: list.items ?? [], triggers: list.triggers ?? [], trigger, emails };
	} catch (err) {
		loadError(err);
	}
};

export const actions: Actions = {
	replay: async (event) => {
		const data = await event.request.formData();
		const trigger = String(data.get('trigger') ?? '');
		const id = data.get('id') ? String(data.get('id')) : undefined;
		if (!trigger) return invalid({ trigger: 'Choose the trigger whose events to replay' }, {});
		try {
			// The function answers the replayed event ids.
			const r = await api<{ replayed?: string[] }>(event, 'POST', 'dead-letters', { body: { trigger, ...(id ? { id } : {}) } });
			return { success: `Replayed ${r?.replayed?.length ?? (id ? 1 : 'all')} event(s).` };
		} catch (err) {
			return failFrom(err);
		}
	},
};
