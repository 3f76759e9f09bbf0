import { redirect } from '@sveltejs/kit';
import { api, apiOptional } from '$lib/server/api';
import { failFrom, formValues, invalid, loadError, missing } from '$lib/server/forms';
import { subdomainProblem, type Plan } from '$lib/platform';
import { planFor, planOffers } from '$lib/plans';
import type { Actions, PageServerLoad } from './$types';

type Eligibility = { eligible: boolean; reason?: string; trialDays?: number };

/**
 * Plans, Odoo versions and trial eligibility. The trial is offered only when
 * trial-eligibility says yes AND the plan carries trial fields (the plans API
 * leaves them out for ineligible customers); any failure hides it (fail closed).
 */
async function offer(event: Parameters<PageServerLoad>[0]) {
	const [plans, eligibility] = await Promise.all([
		api<{ items: Plan[]; odooVersions?: string[]; instanceAddress?: string }>(event, 'GET', 'plans'),
		apiOptional<Eligibility>(event, 'GET', 'trial-eligibility'),
	]);
	const eligible = eligibility?.eligible === true;
	const items = (plans.items ?? []).map((p) => (eligible ? p : { ...p, trial: undefined }));
	// The versions provisioning accepts, newest first (the first is preselected).
	const versions = [...(plans.odooVersions ?? [])].sort((a, b) => Number(b) - Number(a));
	return { offers: planOffers(items), trialEligible: eligible, versions, instanceAddress: plans.instanceAddress ?? '{subdomain}' };
}

export const load: PageServerLoad = async (event) => {
	try {
		return await offer(event);
	} catch (err) {
		loadError(err);
	}
};

export const actions: Actions = {
	default: async (event) => {
		const data = await event.request.formData();
		const values = formValues(data);
		const fields = missing(data, { name: 'Name', subdomain: 'Subdomain', plan: 'Plan', odooVersion: 'Odoo version' });
		const subdomain = String(data.get('subdomain') ?? '')
			.trim()
			.toLowerCase();
		if (subdomain && subdomainProblem(subdomain)) fields.subdomain = subdomainProblem(subdomain)!;
		if (Object.keys(fields).length) return invalid(fields, values);
		const key = String(data.get('plan'));
		let created: { id: string };
		try {
			const { offers, trialEligible } = await offer(event);
			const chosen = offers.find((o) => o.key === key);
			if (!chosen) return invalid({ plan: 'Choose one of the plans shown' }, values);
			const { plan: planId, trial } = planFor(chosen, trialEligible && data.get('trial') === 'on');
			created = await api(event, 'POST', 'instances', {
				body: {
					name: String(data.get('name')).trim(),
					subdomain,
					plan: planId,
					odooVersion: String(data.get('odooVersion')),
					demoData: data.get('demoData') === 'on',
					trial,
				},
			});
		} catch (err) {
			return failFrom(err, values);
		}
		redirect(303, `/instances/${created.id}`);
	},
};
