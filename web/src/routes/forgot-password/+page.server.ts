import { api } from '$lib/server/api';
import { failFrom, formValues, invalid, missing } from '$lib/server/forms';
import type { Actions } from './$types';

export const actions: Actions = {
	default: async (event) => {
		const data = await event.request.formData();
		const values = formValues(data);
		const fields = missing(data, { email: 'Email' });
		if (Object.keys(fields).length) return invalid(fields, values);
		try {
			await api(event, 'POST', 'password-reset', { auth: false, body: { email: String(data.get('email')).trim() } });
		} catch (err) {
			return failFrom(err, values);
		}
		return { success: 'If an account uses that address, we sent it a link to choose a new password. The link works for one hour.' };
	},
};
