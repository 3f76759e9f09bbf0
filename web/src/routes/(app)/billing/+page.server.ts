import { fail } from '@sveltejs/kit';
import { api } from '$lib/server/api';
import { failFrom, invalid, loadError } from '$lib/server/forms';
import type { Instance, Plan } from '$lib/platform';
import type { Actions, PageServerLoad } from './$types';

export type Subscription = {
	id: string;
	plan?: string;
	planName?: string;
	instanceId?: string;
	instanceName?: string;
	/** A staging copy's add-on: `instanceId` is the copy it pays for. */
	addOn?: boolean;
	state?: string;
	phase?: string;
	startDate?: string;
	chargedThroughDate?: string;
	billingEndDate?: string;
	cancelledDate?: string;
	trialEndDate?: string;
};
export type Invoice = { id: string; number?: string | number; date?: string; invoiceDate?: string; amount?: number; balance?: number; currency?: string; status?: string };
export type BillingView = {
	subscriptions?: Subscription[];
	invoices?: Invoice[];
	balance?: number | { amount: number; currency: string };
	currency?: string;
	paymentMethod?: { type?: string; card?: { brand: string; last4: string; expMonth: number; expYear: number } | null; failing?: boolean } | null;
};

export const load: PageServerLoad = async (event) => {
	try {
		const [billing, plans, instances] = await Promise.all([
			api<BillingView>(event, 'GET', 'billing'),
			api<{ items: Plan[] }>(event, 'GET', 'plans').catch(() => ({ items: [] as Plan[] })),
			api<{ items: Instance[] }>(event, 'GET', 'instances').catch(() => ({ items: [] as Instance[] })),
		]);
		const names = new Map((instances.items ?? []).map((i) => [i.id, i.name]));
		const balance = typeof billing.balance === 'object' && billing.balance ? billing.balance : { amount: Number(billing.balance ?? 0), currency: billing.currency ?? 'USD' };
		const subscriptions = (billing.subscriptions ?? []).map((s) => ({ ...s, instanceName: s.instanceName ?? (s.instanceId ? names.get(s.instanceId) : undefined) }));
		return { billing: { ...billing, subscriptions, balance: balance.amount, currency: balance.currency }, plans: plans.items ?? [] };
	} catch (err) {
		loadError(err);
	}
};

type PayNowResult = { paid: { number: string; amount: number; currency: string }[]; declined: { number: string; balance: number; currency: string }[] };
const money = (n: number, currency: string) => new Intl.NumberFormat('en-US', { style: 'currency', currency }).format(n);

export const actions: Actions = {
	/** "Pay now": the outcome is read from the invoices afterwards, never from Kill Bill's answer code. */
	payNow: async (event) => {
		try {
			const r = await api<PayNowResult>(event, 'POST', 'billing', { body: { action: 'payNow' } });
			const paid = r.paid.map((i) => `invoice ${i.number} (${money(i.amount, i.currency)})`).join(', ');
			const declined = r.declined.map((i) => `invoice ${i.number} (${money(i.balance, i.currency)})`).join(', ');
			if (r.declined.length) {
				return fail(402, { message: `Your bank declined the charge for ${declined}: still unpaid. Update your card and try again.${paid ? ` Paid: ${paid}.` : ''}` });
			}
			return { success: paid ? `Paid ${paid}. Thank you! Any suspended instance restarts within minutes.` : 'Nothing to pay: you are all settled.' };
		} catch (err) {
			return failFrom(err);
		}
	},
	/** "Remove card": nothing is charged until a card is added again (the page says so before confirming). */
	removeCard: async (event) => {
		try {
			await api(event, 'POST', 'billing', { body: { action: 'removeCard' } });
		} catch (err) {
			return failFrom(err);
		}
		return { success: 'Card removed. Nothing will be charged until you add a card again.' };
	},
	cancel: async (event) => {
		const data = await event.request.formData();
		const subscriptionId = String(data.get('subscriptionId') ?? '');
		if (!subscriptionId) return invalid({ subscriptionId: 'Choose a subscription' }, {});
		const until = String(data.get('until') ?? '');
		try {
			await api(event, 'POST', 'billing', { body: { action: 'cancel', subscriptionId } });
			return { success: until ? `Cancelled. Your instance keeps running until ${until}, then it is removed.` : 'Cancelled at the end of the paid period.' };
		} catch (err) {
			return failFrom(err);
		}
	},
	changePlan: async (event) => {
		const data = await event.request.formData();
		const subscriptionId = String(data.get('subscriptionId') ?? '');
		const plan = String(data.get('plan') ?? '');
		if (!plan) return invalid({ plan: 'Choose the new plan' }, {});
		try {
			await api(event, 'POST', 'billing', { body: { action: 'changePlan', subscriptionId, plan } });
		} catch (err) {
			return failFrom(err);
		}
		return { success: 'Plan change requested: the new resources apply within minutes.' };
	},
};
