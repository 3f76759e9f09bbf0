import { api } from '$lib/server/api';
import { loadError } from '$lib/server/forms';
import type { Customer } from '$lib/server/customers';
import type { Instance, Plan } from '$lib/platform';
import type { PageServerLoad } from './$types';

type Session = { id: string; createdAt?: string; lastUsedAt?: string; userAgent?: string; ip?: string };
type Subscription = {
	id: string;
	instanceId?: string;
	plan?: string;
	phase?: string;
	state?: string;
	startDate?: string;
	chargedThroughDate?: string | null;
	cancelledDate?: string | null;
	trialEndDate?: string | null;
};

/** One customer as an operator sees them: profile, instances, subscriptions and sessions. */
export const load: PageServerLoad = async (event) => {
	const customerId = event.params.id;
	try {
		const [account, instances, billing, plans] = await Promise.all([
			api<{ profile: Customer; sessions: Session[] }>(event, 'GET', 'account', { query: { customerId } }),
			api<{ items: Instance[] }>(event, 'GET', 'instances', { query: { all: 'true', customerId } }),
			// Billing may be unreachable: the rest of the page still helps.
			api<{ subscriptions?: Subscription[] }>(event, 'GET', 'billing', { query: { customerId } }).catch(() => null),
			// Plan names, so a subscription reads "Basic", not the catalogue's id.
			api<{ items: Plan[] }>(event, 'GET', 'plans').catch(() => ({ items: [] as Plan[] })),
		]);
		return { profile: account.profile, sessions: account.sessions ?? [], instances: instances.items ?? [], subscriptions: billing?.subscriptions ?? null, plans: plans.items ?? [] };
	} catch (err) {
		loadError(err);
	}
};
