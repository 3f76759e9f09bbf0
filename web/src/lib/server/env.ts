/**
 * The portal's environment, validated once with zod (like the platform's
 * platform/src/config.ts): a malformed variable stops the first request that
 * needs it with a message naming the variable, instead of a fetch to a
 * broken URL or a session key made of a typo. Read through `serverEnv()`,
 * never `env.X` elsewhere, so every variable the portal reads is listed here.
 */
import { env } from '$env/dynamic/private';
import { z } from 'zod';

const schema = z.object({
	/** Where the functions are (the local gateway, or the cluster's); no trailing slash. */
	GATEWAY_URL: z
		.url()
		.default('http://127.0.0.1:8080')
		.transform((u) => u.replace(/\/$/, '')),
	/** Vouches for the client address the portal forwards (gateway.ts); absent: none forwarded. */
	GATEWAY_PROXY_TOKEN: z.string().min(16).optional(),
	/** Seals the session cookie; absent (a bare `vite dev`): a per-process key. */
	SESSION_SECRET: z.string().min(32).optional(),
	/** The operator-editable texts (content.ts); default web/content. */
	SITE_CONTENT_DIR: z.string().min(1).optional(),
});

export type PortalEnv = z.infer<typeof schema>;

let cached: PortalEnv | undefined;

/** The portal's settings, parsed on first use; throws naming every bad variable. */
export function serverEnv(): PortalEnv {
	if (cached) return cached;
	// Empty strings are unset, as in the platform's config: `FOO= npm start` falls back to the default.
	const raw = Object.fromEntries(Object.keys(schema.shape).flatMap((k) => (env[k] ? [[k, env[k]]] : [])));
	const parsed = schema.safeParse(raw);
	if (!parsed.success) {
		throw new Error(`Portal environment: ${parsed.error.issues.map((i) => `${String(i.path[0])} ${i.message}`).join('; ')}`);
	}
	cached = parsed.data;
	return cached;
}
