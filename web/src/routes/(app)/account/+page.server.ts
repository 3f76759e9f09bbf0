import { api } from '$lib/server/api';
import { failFrom, formValues, invalid, loadError, missing } from '$lib/server/forms';
import type { ActivityEntry } from '$lib/activity';
import type { Actions, PageServerLoad } from './$types';

type Account = {
	profile?: { email?: string; firstName?: string; lastName?: string; createdAt?: string; role?: string };
	sessions?: { id: string; createdAt?: string; lastUsedAt?: string; userAgent?: string; ip?: string; current?: boolean }[];
};

export const load: PageServerLoad = async (event) => {
	try {
		const [account, activity, instances] = await Promise.all([
			api<Account>(event, 'GET', 'account'),
			// The account page works without its activity: the audit log being down must not hide the profile.
			api<{ items: ActivityEntry[] }>(event, 'GET', 'audit-log', { query: { limit: 5 } }).catch(() => undefined),
			api<{ items: { id: string; name: string }[] }>(event, 'GET', 'instances').catch(() => undefined),
		]);
		const names = Object.fromEntries((instances?.items ?? []).map((i) => [i.id, i.name]));
		return { account, sessionId: event.locals.user?.sessionId, activity: activity?.items, names, self: event.locals.user?.id };
	} catch (err) {
		loadError(err);
	}
};

export const actions: Actions = {
	updateProfile: async (event) => {
		const data = await event.request.formData();
		const values = formValues(data);
		const fields = missing(data, { firstName: 'First name', lastName: 'Last name' });
		if (Object.keys(fields).length) return invalid(fields, values);
		try {
			await api(event, 'POST', 'account', { body: { action: 'updateProfile', firstName: String(data.get('firstName')).trim(), lastName: String(data.get('lastName')).trim() } });
		} catch (err) {
			return failFrom(err, values);
		}
		return { success: 'Profile saved.' };
	},
	changePassword: async (event) => {
		const data = await event.request.formData();
		const fields = missing(data, { currentPassword: 'Current password', newPassword: 'New password' });
		const next = String(data.get('newPassword') ?? '');
		if (next && next.length < 12) fields.newPassword = 'New password must be at least 12 characters';
		if (next.length > 128) fields.newPassword = 'New password must be at most 128 characters';
		if (Object.keys(fields).length) return invalid(fields, {});
		try {
			await api(event, 'POST', 'account', { body: { action: 'changePassword', currentPassword: String(data.get('currentPassword')), newPassword: next } });
		} catch (err) {
			return failFrom(err);
		}
		return { success: 'Password changed. Your other sessions were logged out.' };
	},
	revokeSession: async (event) => {
		const data = await event.request.formData();
		const sessionId = String(data.get('sessionId') ?? '');
		if (!sessionId) return invalid({ sessionId: 'Choose a session' }, {});
		try {
			await api(event, 'POST', 'account', { body: { action: 'revokeSession', sessionId } });
		} catch (err) {
			return failFrom(err);
		}
		return { success: 'Session logged out.' };
	},
};
