import { error } from '@sveltejs/kit';
import { api } from '$lib/server/api';
import { serverEnv } from '$lib/server/env';
import { loadError } from '$lib/server/forms';
import type { RequestHandler } from './$types';

/**
 * Downloads a backup: asks the instances API for a signed, expiring link and
 * streams it through the portal, so the gateway need not be public and the
 * link never shows up in the browser's history.
 */
export const GET: RequestHandler = async (event) => {
	let link: { url: string };
	try {
		link = await api(event, 'GET', 'instances', { query: { id: event.params.id, backupLink: event.params.backupId } });
	} catch (err) {
		loadError(err);
	}
	const target = new URL(link.url, serverEnv().GATEWAY_URL + '/');
	const upstream = await fetch(target).catch(() => undefined);
	if (!upstream?.ok || !upstream.body) error(upstream?.status === 404 ? 404 : 503, { message: 'The backup cannot be downloaded right now' });
	const headers = new Headers({ 'cache-control': 'no-store' });
	for (const h of ['content-type', 'content-length', 'content-disposition']) {
		const v = upstream.headers.get(h);
		if (v) headers.set(h, v);
	}
	if (!headers.has('content-disposition')) headers.set('content-disposition', `attachment; filename="backup-${event.params.backupId}.tar"`);
	return new Response(upstream.body, { headers });
};
