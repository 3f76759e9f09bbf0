/** The operator console's customers (account API, admins only): id → email and name, for lists that only know ids. */
import type { RequestEvent } from '@sveltejs/kit';
import { api } from './api';

export type Customer = { id: string; email: string; firstName?: string; lastName?: string; createdAt?: string; emailVerified?: boolean };

/** Customers whose email or name contains `q` (all when empty), newest first. */
export async function findCustomers(event: RequestEvent, q = ''): Promise<Customer[]> {
	const r = await api<{ items: Customer[] }>(event, 'GET', 'account', { query: { customers: 'true', q: q || undefined } });
	return r.items ?? [];
}
