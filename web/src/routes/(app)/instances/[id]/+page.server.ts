import { fail, redirect } from '@sveltejs/kit';
import { api } from '$lib/server/api';
import { failFrom, loadError } from '$lib/server/forms';
import { trialEnds } from '$lib/server/trials';
import { planOffers } from '$lib/plans';
import { ACTIONS, RESET_ODOO_PASSWORD, type Instance, type Plan } from '$lib/platform';
import type { Actions, PageServerLoad } from './$types';

export const load: PageServerLoad = async (event) => {
	try {
		const [instance, plans, list] = await Promise.all([
			api<Instance>(event, 'GET', 'instances', { query: { id: event.params.id } }),
			api<{ items: Plan[] }>(event, 'GET', 'plans').catch(() => ({ items: [] as Plan[] })),
			api<{ items: Instance[] }>(event, 'GET', 'instances').catch(() => ({ items: [] as Instance[] })),
		]);
		const trial = instance.billingStatus === 'trial' ? await trialEnds(event, [instance.id]) : undefined;
		const trialEnd = trial?.ends[instance.id];
		// A staging copy names its original; an original links to its live copy (both from the customer's own list).
		const items = list.items ?? [];
		const original = instance.staging ? items.find((x) => x.id === instance.staging!.of) : undefined;
		const copy = items.find((x) => x.staging?.of === instance.id && x.status !== 'terminated');
		return {
			instance,
			plans: plans.items ?? [],
			trialEnd,
			paymentMethod: trial?.paymentMethod,
			isAdmin: event.locals.user?.role === 'admin',
			viewerId: event.locals.user?.id,
			staging: { original: original ? { id: original.id, name: original.name } : undefined, copy: copy ? { id: copy.id, name: copy.name, status: copy.status } : undefined },
		};
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
				api<{ subscriptions?: { id: string; instanceId?: string; state?: string; addOn?: boolean }[] }>(event, 'GET', 'billing'),
			]);
			const offer = planOffers(plans.items ?? []).find((o) => o.key === key);
			if (!offer) return fail(400, { message: 'Choose one of the plans shown', fields: { plan: 'choose a plan' } });
			// The instance's own plan: a staging copy's add-on is billed with its original and changes with it.
			const sub = (billing.subscriptions ?? []).find((s) => s.instanceId === event.params.id && !s.addOn && s.state !== 'CANCELLED');
			if (!sub) return fail(409, { message: 'This instance has no subscription to change', fields: { plan: 'no subscription' } });
			await api(event, 'POST', 'billing', { body: { action: 'changePlan', subscriptionId: sub.id, plan: offer.withoutTrial ?? offer.withTrial } });
			return { success: `Plan change to ${offer.name} requested: the new resources apply within minutes.`, action: 'changePlan' };
		} catch (err) {
			return failFrom(err);
		}
	},
	/** Make a staging copy of this instance (then show the copy), or refresh this copy from production. */
	staging: async (event) => {
		const action = String((await event.request.formData()).get('action') ?? '');
		if (action !== 'create' && action !== 'refresh') return fail(400, { message: 'Unknown action', fields: { action: 'choose one of the buttons' } });
		let copyId: string;
		try {
			copyId = (await api<{ id: string }>(event, 'POST', 'staging', { body: { action, id: event.params.id } })).id;
		} catch (err) {
			return failFrom(err);
		}
		if (action === 'create') redirect(303, `/instances/${copyId}?staging=new`);
		return { success: 'Refreshing from production: a fresh backup of the original is copied here and neutralised; this takes a few minutes.', action: 'refresh' };
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
