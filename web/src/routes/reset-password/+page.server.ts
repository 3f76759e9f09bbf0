import { redirect } from '@sveltejs/kit';
import { api } from '$lib/server/api';
import { failFrom, invalid } from '$lib/server/forms';
import type { Actions, PageServerLoad } from './$types';

/** Without a token there is nothing to reset with: send the person to the page that mails one. */
export const load: PageServerLoad = ({ url }) => {
	const token = url.searchParams.get('token') ?? '';
	if (!token) redirect(303, '/forgot-password');
	return { token };
};

export const actions: Actions = {
	default: async (event) => {
		const data = await event.request.formData();
		const token = String(data.get('token') ?? '');
		const password = String(data.get('password') ?? '');
		const fields: Record<string, string> = {};
		if (!token) fields.token = 'The reset link is incomplete: open the link from the mail again';
		if (password.length < 12) fields.password = 'Password must be at least 12 characters';
		if (password.length > 128) fields.password = 'Password must be at most 128 characters';
		if (password !== String(data.get('confirm') ?? '')) fields.confirm = 'The two passwords do not match';
		if (Object.keys(fields).length) return invalid(fields, {});
		try {
			await api(event, 'POST', 'password-reset', { auth: false, body: { token, password } });
		} catch (err) {
			return failFrom(err, {});
		}
		redirect(303, '/login?reset');
	},
};
