import { fail } from '@sveltejs/kit';
import { api } from '$lib/server/api';
import { failFrom, loadError } from '$lib/server/forms';
import { trialEnds } from '$lib/server/trials';
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
