/**
 * Authentication of a request's Bearer token. Filled in by the accounts
 * issue: until then every protected call is refused.
 */
import { HttpError } from '../errors.ts';

export type Role = 'customer' | 'admin';
export type Caller = { userId: string; sessionId: string; role: Role };

export async function authenticate(_authorization: string | undefined): Promise<Caller> {
  throw HttpError.unauthorized();
}
