import { api } from '$lib/server/api';
import { failFrom, formValues, invalid, missing } from '$lib/server/forms';
import { ApiError } from '$lib/server/api';
import type { Actions, PageServerLoad } from './$types';

/**
 * The link in the verification mail lands here with ?token=. The token is
 * spent by the POST of the confirm form, not by a GET, so mail scanners that
 * prefetch links cannot use it up; with JavaScript the form submits itself.
 */
export const load: PageServerLoad = ({ url }) => ({
	token: url.searchParams.get('token') ?? '',
	email: url.searchParams.get('email') ?? '',
});

export const actions: Actions = {
	verify: async (event) => {
		const data = await event.request.formData();
		const token = String(data.get('token') ?? '');
		if (!token) return invalid({ token: 'The confirmation link is incomplete: open the link from the mail again' }, {});
		try {
			await api(event, 'POST', 'verify-email', { auth: false, body: { token } });
		} catch (err) {
			if (err instanceof ApiError && err.status < 500) {
				return failFrom(new ApiError(err.status, err.code, 'This confirmation link is invalid, already used or expired. Send yourself a new one below.', err.fields), {});
			}
			return failFrom(err, {});
		}
		return { verified: true };
	},
	resend: async (event) => {
		const data = await event.request.formData();
		const values = formValues(data);
		const fields = missing(data, { email: 'Email' });
		if (Object.keys(fields).length) return invalid(fields, values);
		try {
			await api(event, 'POST', 'verify-email', { auth: false, body: { email: String(data.get('email')).trim(), resend: true } });
		} catch (err) {
			return failFrom(err, values);
		}
		return { success: 'If that address has an account waiting for confirmation, a new link is on its way.', values };
	},
};
