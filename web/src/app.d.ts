import type { SessionTokens, SessionUser } from '$lib/server/session';

declare global {
	namespace App {
		interface Locals {
			/** Tokens of the signed-in user, read from the sealed session cookie (server only). */
			tokens?: SessionTokens;
			user?: SessionUser;
		}
		interface Error {
			message: string;
			code?: string;
		}
	}
}

export {};
