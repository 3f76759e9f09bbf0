/**
 * The portal session: the access and refresh tokens live only on the portal
 * server's side of the wire, sealed (AES-256-GCM) into an httpOnly,
 * SameSite=Lax cookie. The browser carries an opaque blob it cannot read or
 * forge, so a script on the page can never steal a token.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import type { Cookies } from '@sveltejs/kit';
import { serverEnv } from './env';

export type SessionTokens = { accessToken: string; refreshToken: string; /** epoch ms */ expiresAt: number };
export type SessionUser = { id: string; sessionId: string; role: 'customer' | 'admin' };

const COOKIE = 'saasodoo_session';

/** Plain-HTTP hosts that are this machine (development); browsers treat them as a secure context anyway. */
const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * The session cookie's name and Secure flag for the portal's origin. Outside
 * localhost it is `__Host-` prefixed and Secure: browsers accept such a
 * cookie only from this exact host over HTTPS, never with a Domain
 * attribute, so a tenant's Odoo on a sibling subdomain (acme.example.com next
 * to the portal) cannot plant or overwrite it, and the portal reads no other
 * name. On http://localhost (`npm start`, SvelteKit's own default) it stays a
 * plain cookie, which every browser keeps there.
 */
export function sessionCookie(url: URL): { name: string; secure: boolean } {
	return url.protocol === 'http:' && LOOPBACK.has(url.hostname) ? { name: COOKIE, secure: false } : { name: `__Host-${COOKIE}`, secure: true };
}
const MAX_AGE = 30 * 24 * 3600; // the refresh token's lifetime (SPEC 2)

let key: Buffer | undefined;

/**
 * The sealing key, from SESSION_SECRET (the host generates one into DATA_DIR
 * and passes it). Without it (a bare `vite dev`) a random per-process key is
 * used: sessions then end when the portal restarts, which is safe.
 */
function sealingKey(): Buffer {
	if (!key) {
		const secret = serverEnv().SESSION_SECRET;
		if (!secret) console.warn('SESSION_SECRET is not set: portal sessions will not survive a restart');
		key = createHash('sha256')
			.update(secret || randomBytes(32))
			.digest();
	}
	return key;
}

export function seal(tokens: SessionTokens): string {
	const iv = randomBytes(12);
	const cipher = createCipheriv('aes-256-gcm', sealingKey(), iv);
	const ct = Buffer.concat([cipher.update(JSON.stringify(tokens), 'utf8'), cipher.final()]);
	return Buffer.concat([iv, cipher.getAuthTag(), ct]).toString('base64url');
}

export function unseal(value: string | undefined): SessionTokens | undefined {
	if (!value) return undefined;
	try {
		const raw = Buffer.from(value, 'base64url');
		const decipher = createDecipheriv('aes-256-gcm', sealingKey(), raw.subarray(0, 12));
		decipher.setAuthTag(raw.subarray(12, 28));
		const json = Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
		const t = JSON.parse(json) as SessionTokens;
		return typeof t.accessToken === 'string' && typeof t.refreshToken === 'string' ? t : undefined;
	} catch {
		return undefined; // tampered, or sealed with another key
	}
}

/**
 * Who the access token names. The portal only reads the claims to decide
 * what to show (e.g. operator links); every function verifies the token
 * itself, so a forged claim gains nothing.
 */
export function userOf(accessToken: string): SessionUser | undefined {
	try {
		const claims = JSON.parse(Buffer.from(accessToken.split('.')[1] ?? '', 'base64url').toString('utf8'));
		if (typeof claims.sub !== 'string') return undefined;
		return { id: claims.sub, sessionId: String(claims.sid ?? ''), role: claims.role === 'admin' ? 'admin' : 'customer' };
	} catch {
		return undefined;
	}
}

/** Turns the API's login/refresh answer into stored tokens. */
export function tokensFrom(answer: { accessToken: string; refreshToken: string; expiresIn?: number }): SessionTokens {
	return {
		accessToken: answer.accessToken,
		refreshToken: answer.refreshToken,
		expiresAt: Date.now() + (answer.expiresIn ?? 600) * 1000,
	};
}

export function writeSession(cookies: Cookies, url: URL, tokens: SessionTokens): void {
	const { name, secure } = sessionCookie(url);
	// `__Host-` needs path=/ and no domain, which is what this cookie has.
	cookies.set(name, seal(tokens), { path: '/', httpOnly: true, sameSite: 'lax', secure, maxAge: MAX_AGE });
}

export function clearSession(cookies: Cookies, url: URL): void {
	const { name, secure } = sessionCookie(url);
	cookies.delete(name, { path: '/', httpOnly: true, sameSite: 'lax', secure });
}
