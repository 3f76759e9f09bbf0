/**
 * When each trial ends, from the billing API (Kill Bill's subscription), so
 * the instance pages can say "Free trial until 9 Dec 2026 · 3 days left"
 * wherever a trial is shown. Asked only when an instance is in trial.
 */
import type { RequestEvent } from '@sveltejs/kit';
import { api } from './api';

type Billing = { subscriptions?: { instanceId?: string; trialEndDate?: string; phase?: string }[] };

/** instanceId → trial end date (ISO) for the instances in `ids`; empty when billing cannot answer (the page still renders). */
export async function trialEnds(event: RequestEvent, ids: string[]): Promise<Record<string, string>> {
	if (!ids.length) return {};
	try {
		const billing = await api<Billing>(event, 'GET', 'billing');
		const out: Record<string, string> = {};
		for (const s of billing.subscriptions ?? []) if (s.instanceId && s.trialEndDate && ids.includes(s.instanceId)) out[s.instanceId] = s.trialEndDate;
		return out;
	} catch {
		return {};
	}
}
