import { error } from '@sveltejs/kit';
import { api, ApiError } from '$lib/server/api';
import { loadError } from '$lib/server/forms';
import type { PageServerLoad } from './$types';

export type CardResult = {
	card: { brand: string; last4: string; expMonth: number; expYear: number } | null;
	unpaid: { number: string; amount: number; balance: number; currency: string }[];
};

/** Back from Stripe's hosted card page: put the saved card on file and show what Kill Bill could collect with it. */
export const load: PageServerLoad = async (event) => {
	const sessionId = event.url.searchParams.get('session') ?? '';
	if (!sessionId) error(400, { message: 'This link is missing its card session. Add your card again from Billing.', code: 'bad_request' });
	try {
		return { result: await api<CardResult>(event, 'POST', 'billing', { body: { action: 'cardAdded', sessionId } }) };
	} catch (err) {
		if (err instanceof ApiError && (err.status === 400 || err.status === 409)) return { failure: err.message };
		loadError(err);
	}
};
