import { redirect } from '@sveltejs/kit';
import { api, ApiError, startSession } from '$lib/server/api';
import { failFrom, formValues, invalid, missing } from '$lib/server/forms';
import { sameOriginTarget } from '$lib/server/redirects';
import type { Actions, PageServerLoad } from './$types';

/** Only targets on the portal's own origin are followed after login (no open redirect). */
const safeNext = (url: URL) => sameOriginTarget(url.searchParams.get('next'), url);

export const load: PageServerLoad = ({ locals, url }) => {
	if (locals.user) redirect(303, safeNext(url));
	return { reset: url.searchParams.has('reset'), verified: url.searchParams.has('verified') };
};

export const actions: Actions = {
	default: async (event) => {
		const data = await event.request.formData();
		const values = formValues(data);
		const fields = missing(data, { email: 'Email', password: 'Password' });
		if (Object.keys(fields).length) return invalid(fields, values);
		let answer: { accessToken: string; refreshToken: string; expiresIn?: number };
		try {
			answer = await api(event, 'POST', 'login', {
				auth: false,
				body: { email: String(data.get('email')).trim(), password: String(data.get('password')) },
			});
		} catch (err) {
			if (err instanceof ApiError && err.status === 403 && /verif/i.test(err.code + err.message)) {
				return failFrom(new ApiError(403, err.code, 'Please confirm your email address first: open the link we mailed you, or send a new one below.', { email: 'not verified yet' }), {
					...values,
					unverified: 'true',
				});
			}
			// Locked out: the way back in that does not wait is a password reset.
			if (err instanceof ApiError && err.status === 429) return failFrom(err, { ...values, locked: 'true' });
			return failFrom(err, values);
		}
		await startSession(event, answer);
		redirect(303, safeNext(event.url));
	},
};
