/**
 * Form action helpers: read a form into plain values and turn an API error
 * into a `fail()` the page renders next to the named fields. Password-like
 * values are never sent back to the browser.
 */
import { error, fail, isRedirect, type ActionFailure } from '@sveltejs/kit';
import { ApiError } from './api';

export type FormState = {
	message?: string;
	fields?: Record<string, string>;
	values?: Record<string, string>;
	success?: string;
};

const SECRET = /password|token|secret/i;

/** The form's text values (checkboxes as 'on'), without secrets, to refill the form after an error. */
export function formValues(data: FormData): Record<string, string> {
	const out: Record<string, string> = {};
	for (const [k, v] of data) if (typeof v === 'string' && !SECRET.test(k)) out[k] = v;
	return out;
}

/** Field errors found by the portal before calling the API (required fields and the like). */
export function invalid(fields: Record<string, string>, values: Record<string, string>): ActionFailure<FormState> {
	return fail(400, { message: 'Please correct the highlighted fields.', fields, values });
}

/**
 * Maps an error thrown by api() to the form's failure: the API's field
 * messages stay attached to their fields, a rate limit says when to retry.
 * Anything that is not an ApiError (a redirect, a bug) is re-thrown.
 */
export function failFrom(err: unknown, values: Record<string, string> = {}): ActionFailure<FormState> {
	if (isRedirect(err) || !(err instanceof ApiError)) throw err;
	let message = err.message;
	if (err.status === 429) message = `Too many attempts. Please try again${err.retryAfter ? ` in ${Math.ceil(Number(err.retryAfter) / 60)} minute(s)` : ' later'}.`;
	const status = err.status >= 400 && err.status < 500 ? err.status : 503;
	return fail(status, { message, fields: err.fields, values });
}

/** Throws the error page for a load that cannot proceed (404 for others' resources too). */
export function loadError(err: unknown): never {
	if (isRedirect(err) || !(err instanceof ApiError)) throw err;
	if (err.status === 404 || err.status === 403) error(404, { message: 'Not found', code: 'not_found' });
	error(err.status >= 500 ? 503 : err.status, { message: err.message, code: err.code });
}

/** Required text fields that are empty, named with a readable message. */
export function missing(data: FormData, names: Record<string, string>): Record<string, string> {
	const out: Record<string, string> = {};
	for (const [name, label] of Object.entries(names)) {
		const v = data.get(name);
		if (typeof v !== 'string' || !v.trim()) out[name] = `${label} is required`;
	}
	return out;
}
