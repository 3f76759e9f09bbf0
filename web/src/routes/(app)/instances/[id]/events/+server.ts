import { api, ApiError } from '$lib/server/api';
import { loadError } from '$lib/server/forms';
import { backupSignature, type Instance } from '$lib/platform';
import type { RequestHandler } from './$types';

const POLL_MS = 1500;
const MAX_STREAM_MS = 10 * 60_000;

/** What the page needs live: status fields, provisioning/backup progress, and the one-time password when it appears. */
function snapshot(i: Instance) {
	return {
		status: i.status,
		billingStatus: i.billingStatus,
		health: i.health,
		progress: i.progress ?? null,
		error: i.error ?? null,
		storage: i.storage ?? null,
		actions: i.actions,
		updatedAt: i.updatedAt,
		backups: backupSignature(i.backups),
		adminPassword: i.adminPassword,
	};
}

/**
 * Live progress of one instance as server-sent events. The portal polls the
 * instances API server side (the browser never sees a token) and sends an
 * `instance` event whenever something changed. The stream ends before the
 * access token would need refreshing (a cookie cannot be set once streaming
 * has begun); EventSource then reconnects and the new request refreshes it.
 */
export const GET: RequestHandler = async (event) => {
	let first: Instance;
	try {
		first = await api<Instance>(event, 'GET', 'instances', { query: { id: event.params.id } });
	} catch (err) {
		loadError(err);
	}
	const expiresAt = event.locals.tokens?.expiresAt ?? Date.now() + MAX_STREAM_MS;
	const endAt = Date.now() + Math.max(5_000, Math.min(MAX_STREAM_MS, expiresAt - Date.now() - 45_000));
	const enc = new TextEncoder();
	let stopped = false;
	const stream = new ReadableStream({
		async start(controller) {
			const send = (type: string, data: unknown) => controller.enqueue(enc.encode(`event: ${type}\ndata: ${JSON.stringify(data)}\n\n`));
			event.request.signal.addEventListener('abort', () => (stopped = true));
			let last = '';
			let current: Instance | undefined = first;
			controller.enqueue(enc.encode('retry: 2000\n\n'));
			while (!stopped && Date.now() < endAt) {
				if (current) {
					const snap = snapshot(current);
					const key = JSON.stringify(snap);
					if (key !== last) {
						last = key;
						send('instance', snap);
					}
				}
				await new Promise((r) => setTimeout(r, POLL_MS));
				if (stopped) break;
				try {
					current = await api<Instance>(event, 'GET', 'instances', { query: { id: event.params.id } });
				} catch (err) {
					if (!(err instanceof ApiError) || err.status === 404 || err.status === 401) {
						send('end', { reason: 'gone' });
						break;
					}
					current = undefined; // transient: keep polling
				}
			}
			try {
				controller.close();
			} catch {
				/* already closed by the client */
			}
		},
		cancel() {
			stopped = true;
		},
	});
	return new Response(stream, {
		headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' },
	});
};
