/**
 * Facts of the platform the pages need in the browser too (SPEC 5 and 6):
 * which actions each status allows, the subdomain rules. (Odoo versions come
 * from GET /api/plans.)
 */

export type InstanceStatus =
	'pending_payment' | 'provisioning' | 'running' | 'stopping' | 'stopped' | 'starting' | 'restarting' | 'backing_up' | 'restoring' | 'suspended' | 'error' | 'terminating' | 'terminated' | 'migrating';

export type Instance = {
	id: string;
	name: string;
	subdomain: string;
	url: string;
	plan: string;
	odooVersion: string;
	status: InstanceStatus;
	billingStatus: string;
	/** Whether it started as a free trial. */
	trial?: boolean;
	health: string;
	resources?: { cpu: number; memoryMiB: number; storageGiB: number };
	createdAt: string;
	updatedAt?: string;
	error?: { step?: string; reason?: string };
	suspendedReason?: string;
	customerId?: string;
	customerEmail?: string;
	history?: { at?: string; from?: string | null; to?: string; status?: string; reason?: string; actor?: string }[];
	/** Actions the API allows now (SPEC 5); the portal falls back to ACTIONS when absent. */
	actions?: string[];
	backups?: Backup[];
	progress?: Progress | null;
	/** The customer's Odoo password, in the one answer that shows it. */
	adminPassword?: string;
	/** Where and as whom the customer logs in to Odoo. */
	odoo?: { url: string; database: string; login: string };
	storage?: { usedBytes?: number; limitBytes?: number };
	/** Storage used per hour over the last 30 days, oldest first (the instance page's chart). */
	storageHistory?: { at: string; usedBytes: number; limitBytes: number }[];
	/** A staging copy: the instance it copies and when its data was taken from it. */
	staging?: { of: string; copiedAt?: string };
};

export type Backup = { id: string; createdAt?: string; kind?: string; status?: string; sizeBytes?: number; size?: number };
export type Progress = { operation?: string; step?: string; index?: number; total?: number };

export type Plan = {
	id: string;
	name: string;
	price: { amount: number; currency: string; period: string };
	resources: { cpu: number; memoryMiB: number; storageGiB: number };
	database: string;
	trial?: { days: number };
	/** Whether instances on this plan may have a staging copy. */
	staging?: boolean;
};

/** Customer actions by status (SPEC 5); admins may also retry an instance in error. */
export const ACTIONS: Record<string, string[]> = {
	running: ['stop', 'restart', 'backup', 'delete'],
	stopped: ['start', 'backup', 'restore', 'delete'],
	error: ['start', 'restore', 'delete'],
	suspended: ['delete'],
	pending_payment: ['delete'],
};

/** The owner's Odoo password reset (not a status change): offered while Odoo's database is there. */
export const RESET_ODOO_PASSWORD = 'reset_odoo_password';
export const RESETTABLE = new Set(['running', 'stopped']);

export const IN_PROGRESS = new Set(['provisioning', 'stopping', 'starting', 'restarting', 'backing_up', 'restoring', 'terminating', 'migrating']);

export const RESERVED_SUBDOMAINS = ['www', 'api', 'admin', 'app', 'auth', 'billing', 'mail', 'static', 'status'];

/** Local check of SPEC 6's subdomain rules; the API has the last word (uniqueness). */
export function subdomainProblem(s: string): string | undefined {
	if (s.length < 3) return 'Subdomain must be at least 3 characters';
	if (s.length > 50) return 'Subdomain must be at most 50 characters';
	if (!/^[a-z0-9-]+$/.test(s)) return 'Subdomain may use only lowercase letters, digits and hyphens';
	if (s.startsWith('-') || s.endsWith('-')) return 'Subdomain cannot start or end with a hyphen';
	if (RESERVED_SUBDOMAINS.includes(s) || s.startsWith('tpl-')) return `“${s}” is reserved`;
	return undefined;
}

export function label(s: string | undefined | null): string {
	return (s ?? 'unknown').replace(/_/g, ' ');
}

const CARD_BRANDS: Record<string, string> = { visa: 'Visa', mastercard: 'Mastercard', amex: 'American Express', discover: 'Discover', diners: 'Diners Club', jcb: 'JCB', unionpay: 'UnionPay' };

/** Stripe's card brand (`visa`) as printed on the card (`Visa`). */
export function cardBrand(brand: string | undefined | null): string {
	return CARD_BRANDS[brand ?? ''] ?? 'Card';
}

export function formatDate(s: string | undefined | null): string {
	if (!s) return '—';
	const d = new Date(s);
	return Number.isNaN(d.getTime()) ? String(s) : d.toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'short', timeZone: 'UTC' }) + ' UTC';
}

export function formatDay(s: string | undefined | null): string {
	if (!s) return '—';
	const d = new Date(s);
	return Number.isNaN(d.getTime()) ? String(s) : d.toLocaleDateString('en-GB', { dateStyle: 'medium', timeZone: 'UTC' });
}

export function formatBytes(n: number | undefined | null): string {
	if (n === undefined || n === null || !Number.isFinite(n)) return '—';
	const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
	let i = 0;
	while (n >= 1024 && i < units.length - 1) {
		n /= 1024;
		i++;
	}
	return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

export function formatMoney(amount: number | string | undefined, currency = 'USD'): string {
	const n = Number(amount ?? 0);
	return new Intl.NumberFormat('en-US', { style: 'currency', currency }).format(Number.isFinite(n) ? n : 0);
}

/** What the backup list looks like, compactly: the live stream and the page compare it to know when to reload. */
export function backupSignature(backups: Backup[] | undefined): string {
	return (backups ?? []).map((b) => `${b.id}:${b.status ?? ''}`).join(',');
}
