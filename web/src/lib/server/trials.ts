/**
 * When each trial ends, from the billing API (Kill Bill's subscription), so
 * the instance pages can say "Free trial until 9 Dec 2026 · 3 days left"
 * wherever a trial is shown, and whether a payment method is on file (the
 * trial notice asks for one only when there is none). Asked only when an
 * instance is in trial.
 */
import type { RequestEvent } from '@sveltejs/kit';
import { api } from './api';

type Billing = { subscriptions?: { instanceId?: string; trialEndDate?: string; phase?: string }[]; paymentMethod?: unknown };

/**
 * instanceId → trial end date (ISO) for the instances in `ids`, and whether a payment method is on file;
 * empty (and `paymentMethod` unknown) when billing cannot answer: the page still renders.
 */
export async function trialEnds(event: RequestEvent, ids: string[]): Promise<{ ends: Record<string, string>; paymentMethod?: boolean }> {
	if (!ids.length) return { ends: {} };
	try {
		const billing = await api<Billing>(event, 'GET', 'billing');
		const ends: Record<string, string> = {};
		for (const s of billing.subscriptions ?? []) if (s.instanceId && s.trialEndDate && ids.includes(s.instanceId)) ends[s.instanceId] = s.trialEndDate;
		return { ends, paymentMethod: !!billing.paymentMethod };
	} catch {
		return { ends: {} };
	}
}
