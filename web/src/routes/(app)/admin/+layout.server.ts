import { error } from '@sveltejs/kit';
import type { LayoutServerLoad } from './$types';

/** Operator pages: admins only (the functions check the role again). */
export const load: LayoutServerLoad = ({ locals }) => {
	if (locals.user?.role !== 'admin') error(404, { message: 'Not found', code: 'not_found' });
	return {};
};
