/**
 * The portal's only way to the platform: the functions behind the gateway
 * (GATEWAY_URL), called with the session's access token. The token is
 * refreshed here, server side, shortly before it expires or when a function
 * answers 401; the rotated pair goes back into the sealed cookie.
 */
import { redirect, type RequestEvent } from '@sveltejs/kit';
import { serverEnv } from './env';
import { clearSession, tokensFrom, userOf, writeSession, type SessionTokens } from './session';

export type ApiErrorBody = { code: string; message: string; fields?: Record<string, string> };

/** An error answer of a function (or the gateway), in SPEC 11's shape. */
export class ApiError extends Error {
	constructor(
		readonly status: number,
		readonly code: string,
		message: string,
		readonly fields: Record<string, string> = {},
		readonly retryAfter?: string,
	) {
		super(message);
	}
	/** The platform (or a dependency) is down, not the caller's fault. */
	get unavailable(): boolean {
		return this.status >= 500 || (this.status === 404 && this.code === 'not_found' && /^No function/.test(this.message));
	}
}

type CallOptions = {
	query?: Record<string, string | number | boolean | undefined>;
	body?: unknown;
	/** Send the session's token (default true). */
	auth?: boolean;
};

const REFRESH_MARGIN_MS = 30_000;
// Refresh tokens rotate on every use and reuse of a rotated one revokes the
// session (SPEC 2). Parallel requests carrying the same cookie (a page load
// and the progress stream, say) must share one refresh: the first starts it,
// the others await it, and late ones within a minute reuse its result.
const inflight = new Map<string, Promise<SessionTokens | undefined>>();
const rotated = new Map<string, { tokens: SessionTokens; at: number }>();

function gateway(): string {
	return serverEnv().GATEWAY_URL;
}

async function rawCall(event: RequestEvent, method: 'GET' | 'POST', fn: string, opts: CallOptions, token?: string) {
	const url = new URL(`${gateway()}/api/${fn}`);
	for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined && v !== '') url.searchParams.set(k, String(v));
	const headers: Record<string, string> = { accept: 'application/json' };
	if (token) headers.authorization = `Bearer ${token}`;
	if (opts.body !== undefined) headers['content-type'] = 'application/json';
	// The browser's, so the account page's sessions list names the customer's devices (not this server's fetch).
	const userAgent = event.request.headers.get('user-agent');
	if (userAgent) headers['user-agent'] = userAgent.slice(0, 512);
	try {
		headers['x-forwarded-for'] = event.getClientAddress();
		// Vouches for that address, so the gateway keeps it for per-IP rate limits
		// (on Kubernetes Traefik replaces X-Forwarded-For: the functions read X-SaaSOdoo-Client-IP).
		const proxyToken = serverEnv().GATEWAY_PROXY_TOKEN;
		if (proxyToken) {
			headers['x-saasodoo-proxy-token'] = proxyToken;
			headers['x-saasodoo-client-ip'] = headers['x-forwarded-for'];
		}
	} catch {
		/* not behind a socket (prerender) */
	}
	let res: Response;
	try {
		res = await fetch(url, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body), signal: AbortSignal.timeout(30_000) });
	} catch {
		throw new ApiError(503, 'unavailable', 'The platform is not answering right now. Please try again in a minute.');
	}
	const text = await res.text();
	let data: unknown = undefined;
	try {
		data = text ? JSON.parse(text) : undefined;
	} catch {
		data = undefined;
	}
	return { res, data };
}

function toError(res: Response, data: unknown): ApiError {
	const e = (data as { error?: ApiErrorBody } | undefined)?.error;
	if (res.status === 404 && e?.message?.startsWith('No function')) {
		return new ApiError(503, 'unavailable', 'This part of the platform is not available right now. Please try again later.');
	}
	if (res.status >= 500) {
		return new ApiError(res.status, e?.code ?? 'unavailable', e?.message ?? 'The platform had a problem. Please try again in a minute.', {}, res.headers.get('retry-after') ?? undefined);
	}
	return new ApiError(res.status, e?.code ?? 'error', e?.message ?? `Request failed (${res.status})`, e?.fields ?? {}, res.headers.get('retry-after') ?? undefined);
}

async function refreshOnce(event: RequestEvent, tokens: SessionTokens): Promise<SessionTokens | undefined> {
	const recent = rotated.get(tokens.refreshToken);
	if (recent && Date.now() - recent.at < 60_000) return recent.tokens;
	let p = inflight.get(tokens.refreshToken);
	if (!p) {
		p = (async () => {
			const { res, data } = await rawCall(event, 'POST', 'refresh', { body: { refreshToken: tokens.refreshToken } });
			if (!res.ok) {
				if (res.status >= 500) throw toError(res, data);
				return undefined;
			}
			const next = tokensFrom(data as { accessToken: string; refreshToken: string; expiresIn?: number });
			rotated.set(tokens.refreshToken, { tokens: next, at: Date.now() });
			for (const [k, v] of rotated) if (Date.now() - v.at > 120_000) rotated.delete(k);
			return next;
		})().finally(() => inflight.delete(tokens.refreshToken));
		inflight.set(tokens.refreshToken, p);
	}
	return p;
}

async function useTokens(event: RequestEvent, next: SessionTokens | undefined): Promise<void> {
	event.locals.tokens = next;
	event.locals.user = next ? userOf(next.accessToken) : undefined;
	try {
		if (next) writeSession(event.cookies, event.url, next);
		else clearSession(event.cookies, event.url);
	} catch {
		// Headers already sent (a stream): the next request refreshes from the
		// rotation cache above and writes the cookie then.
	}
}

/** Where to send someone whose session ended: the login page, then back here. */
export function loginRedirect(url: URL): never {
	const back = url.pathname.startsWith('/login') ? '' : `?next=${encodeURIComponent(url.pathname + url.search)}`;
	redirect(303, `/login${back}`);
}

/**
 * Calls function `fn` through the gateway and returns its JSON body; throws
 * ApiError for an error answer. With auth (the default) a missing or ended
 * session redirects to the login page.
 */
export async function api<T = unknown>(event: RequestEvent, method: 'GET' | 'POST', fn: string, opts: CallOptions = {}): Promise<T> {
	const auth = opts.auth ?? true;
	let tokens = event.locals.tokens;
	if (auth && !tokens) loginRedirect(event.url);
	if (auth && tokens && tokens.expiresAt - Date.now() < REFRESH_MARGIN_MS) {
		await useTokens(event, await refreshOnce(event, tokens));
		tokens = event.locals.tokens;
		if (!tokens) loginRedirect(event.url);
	}
	let { res, data } = await rawCall(event, method, fn, opts, auth ? tokens?.accessToken : undefined);
	if (auth && res.status === 401 && tokens) {
		await useTokens(event, await refreshOnce(event, tokens));
		if (!event.locals.tokens) loginRedirect(event.url);
		({ res, data } = await rawCall(event, method, fn, opts, event.locals.tokens.accessToken));
		if (res.status === 401) {
			await useTokens(event, undefined);
			loginRedirect(event.url);
		}
	}
	if (!res.ok) throw toError(res, data);
	return data as T;
}

/** Like api() but answers undefined instead of throwing when the function fails (optional page parts). */
export async function apiOptional<T>(event: RequestEvent, method: 'GET' | 'POST', fn: string, opts: CallOptions = {}): Promise<T | undefined> {
	try {
		return await api<T>(event, method, fn, opts);
	} catch (err) {
		if (err instanceof ApiError) return undefined;
		throw err;
	}
}

/** Ends the portal session (and asks the platform to end the API session). */
export async function logout(event: RequestEvent): Promise<void> {
	const tokens = event.locals.tokens;
	if (tokens) await rawCall(event, 'POST', 'logout', {}, tokens.accessToken).catch(() => undefined);
	await useTokens(event, undefined);
}

/** Opens a session from a login answer. */
export async function startSession(event: RequestEvent, answer: { accessToken: string; refreshToken: string; expiresIn?: number }): Promise<void> {
	await useTokens(event, tokensFrom(answer));
}
