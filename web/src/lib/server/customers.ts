/** The operator console's customers (account API, admins only): id → email and name, for lists that only know ids. */
import type { RequestEvent } from '@sveltejs/kit';
import { api } from './api';

export type Customer = { id: string; email: string; firstName?: string; lastName?: string; createdAt?: string; emailVerified?: boolean };

/** Customers whose email or name contains `q` (all when empty), newest first. */
export async function findCustomers(event: RequestEvent, q = ''): Promise<Customer[]> {
	const r = await api<{ items: Customer[] }>(event, 'GET', 'account', { query: { customers: 'true', q: q || undefined } });
	return r.items ?? [];
}

/** "Ada Lovelace <ada@example.com>"-like label parts: the name when known, else the email. */
export function customerName(c: Customer | undefined): string {
	if (!c) return 'Unknown customer';
	const name = [c.firstName, c.lastName].filter(Boolean).join(' ').trim();
	return name || c.email;
}
