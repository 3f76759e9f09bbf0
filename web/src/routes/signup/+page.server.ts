import { redirect } from '@sveltejs/kit';
import { api } from '$lib/server/api';
import { failFrom, formValues, invalid, missing } from '$lib/server/forms';
import type { Actions, PageServerLoad } from './$types';

export const load: PageServerLoad = ({ locals }) => {
	if (locals.user) redirect(303, '/instances');
};

export const actions: Actions = {
	default: async (event) => {
		const data = await event.request.formData();
		const values = formValues(data);
		const fields = missing(data, { firstName: 'First name', lastName: 'Last name', email: 'Email', password: 'Password' });
		const email = String(data.get('email') ?? '').trim();
		const password = String(data.get('password') ?? '');
		if (email && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email)) fields.email = 'Enter an email address like name@example.com';
		if (password && password.length < 12) fields.password = 'Password must be at least 12 characters';
		if (password.length > 128) fields.password = 'Password must be at most 128 characters';
		if (data.get('acceptTerms') !== 'on') fields.acceptTerms = 'You must accept the terms of service';
		if (Object.keys(fields).length) return invalid(fields, values);
		try {
			await api(event, 'POST', 'signup', {
				auth: false,
				body: {
					email,
					password,
					firstName: String(data.get('firstName')).trim(),
					lastName: String(data.get('lastName')).trim(),
					acceptTerms: true,
				},
			});
		} catch (err) {
			return failFrom(err, values);
		}
		return { success: `We sent a link to ${email}. Open it to confirm your address, then log in.`, email };
	},
};
