import { fail } from '@sveltejs/kit';
import { api } from '$lib/server/api';
import { failFrom, loadError } from '$lib/server/forms';
import { trialEnds } from '$lib/server/trials';
import { planOffers } from '$lib/plans';
import { ACTIONS, RESET_ODOO_PASSWORD, type Instance, type Plan } from '$lib/platform';
import type { Actions, PageServerLoad } from './$types';

export const load: PageServerLoad = async (event) => {
	try {
		const [instance, plans] = await Promise.all([
			api<Instance>(event, 'GET', 'instances', { query: { id: event.params.id } }),
			api<{ items: Plan[] }>(event, 'GET', 'plans').catch(() => ({ items: [] as Plan[] })),
		]);
		const trialEnd = instance.billingStatus === 'trial' ? (await trialEnds(event, [instance.id]))[instance.id] : undefined;
		return { instance, plans: plans.items ?? [], trialEnd, isAdmin: event.locals.user?.role === 'admin', viewerId: event.locals.user?.id };
	} catch (err) {
		loadError(err);
	}
};

const DONE: Record<string, string> = {
	start: 'Starting the instance…',
	stop: 'Stopping the instance…',
	restart: 'Restarting the instance…',
	backup: 'Taking a backup…',
	restore: 'Restoring the backup: a safety backup of the current state is taken first, and the instance keeps the state it had (a stopped instance stays stopped).',
	delete: 'Deleting the instance. A final backup is kept for 30 days.',
	retry: 'Retrying from the failed step…',
	[RESET_ODOO_PASSWORD]: 'A new Odoo password is set. It is shown below, once; the old one no longer works.',
};

export const actions: Actions = {
	/** A plan change from the instance page: the card (offer) chosen maps to its catalogue plan; billing applies it. */
	changePlan: async (event) => {
		const data = await event.request.formData();
		const key = String(data.get('plan') ?? '');
		try {
			const [plans, billing] = await Promise.all([
				api<{ items: Plan[] }>(event, 'GET', 'plans'),
				api<{ subscriptions?: { id: string; instanceId?: string; state?: string }[] }>(event, 'GET', 'billing'),
			]);
			const offer = planOffers(plans.items ?? []).find((o) => o.key === key);
			if (!offer) return fail(400, { message: 'Choose one of the plans shown', fields: { plan: 'choose a plan' } });
			const sub = (billing.subscriptions ?? []).find((s) => s.instanceId === event.params.id && s.state !== 'CANCELLED');
			if (!sub) return fail(409, { message: 'This instance has no subscription to change', fields: { plan: 'no subscription' } });
			await api(event, 'POST', 'billing', { body: { action: 'changePlan', subscriptionId: sub.id, plan: offer.withoutTrial ?? offer.withTrial } });
			return { success: `Plan change to ${offer.name} requested: the new resources apply within minutes.`, action: 'changePlan' };
		} catch (err) {
			return failFrom(err);
		}
	},
	act: async (event) => {
		const data = await event.request.formData();
		const action = String(data.get('action') ?? '');
		const backupId = data.get('backupId') ? String(data.get('backupId')) : undefined;
		const known = new Set([...Object.values(ACTIONS).flat(), 'retry', RESET_ODOO_PASSWORD]);
		if (!known.has(action)) return fail(400, { message: 'Unknown action', fields: { action: 'choose one of the buttons' } });
		if (action === 'restore' && !backupId) return fail(400, { message: 'Choose a backup to restore', fields: { backupId: 'required' } });
		try {
			await api(event, 'POST', 'instance-action', { body: { id: event.params.id, action, ...(backupId ? { backupId } : {}) } });
		} catch (err) {
			return failFrom(err);
		}
		return { success: DONE[action], action };
	},
};
