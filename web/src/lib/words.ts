/**
 * What the portal says about an instance, in the customer's words, derived
 * from its real state (status, billing status, health, history). Raw values
 * stay in data-value attributes for tests and scripts; people read these.
 */
import type { Backup } from './platform';
import { formatDate, label } from './platform';

/** The status as a person would say it: a trial that is being set up is "starting", not "pending payment". */
export function statusWords(status: string, billing: string | undefined): string {
	if (status === 'pending_payment') return billing === 'trial' ? 'starting trial' : 'awaiting payment';
	if (status === 'migrating') return 'moving to a new server';
	return label(status);
}

/**
 * What a status in progress means for the customer, when the badge alone
 * does not say it (a plan change that moves the database pauses Odoo).
 */
export function statusExplanation(status: string): string | undefined {
	if (status === 'migrating')
		return 'Your plan changed, so your Odoo data is moving to the database server that comes with it. This takes a few minutes and nothing you saved is lost. If Odoo was running, it is paused meanwhile and comes back by itself; a stopped or suspended instance stays as it was. If the move does not work, your instance stays where it was.';
	return undefined;
}

const MOVE_STEPS: Record<string, string> = {
	prepare: 'preparing the new server',
	stop: 'pausing Odoo',
	backup: 'taking a backup',
	restore: 'copying your data',
	verify: 'checking the copy',
	switch: 'switching to the new server',
	start: 'starting Odoo',
	drop_old: 'cleaning up the old server',
};

/** A progress step in words (a database move's steps are said for the customer; others by name). */
export function stepWords(operation: string | undefined, step: string | undefined): string {
	if (operation === 'move' && step && MOVE_STEPS[step]) return MOVE_STEPS[step];
	return label(step);
}

/** The billing state in words; `trial` tells whether this instance started as a free trial. */
export function billingWords(billing: string | undefined, trial: boolean | undefined, status?: string): string {
	switch (billing) {
		case 'trial':
			return 'free trial';
		case 'paid':
			return 'paid';
		case 'overdue':
			return 'payment overdue';
		case 'suspended':
			return 'suspended';
		case 'payment_required':
			if (status === 'pending_payment') return 'awaiting payment';
			return trial ? 'trial ended, invoice open' : 'invoice open';
		default:
			return label(billing);
	}
}

/**
 * Health means something only while Odoo should answer: a stopped, suspended
 * or deleted instance is "offline", never "healthy" from its last check.
 */
export function effectiveHealth(status: string, health: string | undefined): string {
	if (status === 'running' || status === 'backing_up') return health ?? 'unknown';
	if (['provisioning', 'starting', 'restarting', 'pending_payment', 'migrating'].includes(status)) return 'not_checked_yet';
	return 'offline';
}

/** Days left until `end` (rounded up; 0 once it passed). */
export function daysLeft(end: string | undefined | null, now = Date.now()): number | undefined {
	if (!end) return undefined;
	const t = new Date(end).getTime();
	if (Number.isNaN(t)) return undefined;
	return Math.max(0, Math.ceil((t - now) / 86_400_000));
}

export type HistoryEntry = { at?: string; from?: string | null; to?: string; status?: string; reason?: string; actor?: string };

/** Who did it: you, the customer (seen by an operator), an operator, billing, or the system. */
export function actorWords(actor: string | undefined, viewerId: string | undefined): string | undefined {
	if (!actor) return undefined;
	if (actor.startsWith('customer:')) return !viewerId || actor === `customer:${viewerId}` ? 'you' : 'the customer';
	if (actor.startsWith('admin:')) return viewerId && actor === `admin:${viewerId}` ? 'you (operator)' : 'an operator';
	if (actor === 'lifecycle') return 'billing';
	return 'the system';
}

const BILLING_REASONS: Record<string, string> = {
	trial_started: 'The free trial started.',
	trial_ended: 'The free trial ended and the first invoice was issued.',
	invoice_created: 'A new invoice was issued.',
	payment_succeeded: 'A payment was received.',
	payment_failed: 'A payment failed.',
	overdue_warning: 'An invoice is overdue; the instance will be suspended if it stays unpaid.',
	suspended: 'The instance was suspended because an invoice is unpaid.',
	resumed: 'The instance was resumed after payment.',
	cancellation_scheduled: 'The subscription was cancelled; it ends at the end of the paid period.',
	cancelled: 'The subscription ended.',
	plan_changed: 'The plan was changed.',
};

const BACKUP_KINDS: Record<string, string> = { manual: 'A backup', daily: 'The daily backup', safety: 'A safety backup', final: 'The final backup' };

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

/** "the backup of 3 Dec 2026, 10:00 UTC" for a backup id, or "a backup" when it is no longer listed. */
function backupWords(id: string, backups: Backup[]): string {
	const b = backups.find((x) => x.id === id);
	return b?.createdAt ? `the backup of ${formatDate(b.createdAt)}` : 'a backup';
}

/**
 * A history entry's reason as a sentence, without internal names or ids
 * (`billing trial → overdue: payment_failed` → "A payment failed.").
 * Reasons not recognised are shown only if they hold nothing internal.
 */
export function reasonWords(h: HistoryEntry, backups: Backup[] = []): string | undefined {
	const r = (h.reason ?? '').trim();
	if (!r) return undefined;
	let m: RegExpMatchArray | null;
	if ((m = r.match(/^billing \S+ → (\S+): (\S+)$/))) return BILLING_REASONS[m[2]] ?? `Billing is now ${billingWords(m[1], false)}.`;
	if ((m = r.match(/^restore of backup (\S+)$/))) return `Restoring ${backupWords(m[1], backups)}.`;
	if ((m = r.match(/^restored backup (\S+)$/))) return `Restored ${backupWords(m[1], backups)}.`;
	if (/^restore failed/.test(r)) return 'The restore failed; the instance was put back as it was.';
	if ((m = r.match(/^(manual|daily|safety|final) backup$/))) return `${BACKUP_KINDS[m[1]]} started.`;
	if (r === 'backup completed') return 'The backup completed.';
	if (/^backup failed/.test(r)) return 'The backup failed; earlier backups are not affected.';
	if (r === 'created') return 'The instance was ordered.';
	if (r === 'staging copy requested') return 'A staging copy was ordered.';
	if (r === 'refresh from production requested') return 'Its data is being replaced with a fresh copy of production.';
	if (r === 'its original instance was terminated') return 'Its original instance was deleted, so this staging copy was deleted with it.';
	if ((m = r.match(/^database moves to (its own|a shared) database server$/)))
		return `The plan changed: your data is moving to ${m[1] === 'its own' ? 'a database server of its own' : 'a shared database server'}. Odoo is paused meanwhile.`;
	if ((m = r.match(/^database moved to (its own|a shared) database server$/)))
		return `Your data moved to ${m[1] === 'its own' ? 'a database server of its own' : 'a shared database server'}; Odoo runs again.`;
	if (/^database move to .* failed/.test(r)) return 'Moving your data to the new server did not work; the instance stays on its previous server, running as before. Our operators are notified.';
	if (r === 'overdue') return 'Suspended because an invoice is unpaid.';
	if (r === 'resumed after payment') return 'Resumed after payment.';
	if (r === 'subscription_cancelled') return 'The subscription ended, so the instance was deleted.';
	if (/^plan \S+ → \S+$/.test(r)) return 'The plan was changed; the new resources apply.';
	if (/^drift: runtime restarted Odoo/.test(r)) return 'Odoo stopped unexpectedly; the system started it again.';
	if ((m = r.match(/^drift: runtime is (\S+)/))) return `The system found the instance ${label(m[1])} and corrected its status.`;
	if ((m = r.match(/^resume failed/))) return 'Resuming after payment failed; our operators are notified.';
	if ((m = r.match(/^(\S+) failed: /))) return `The step “${label(m[1])}” failed.`;
	if (UUID.test(r) || /[_:]|→/.test(r)) return undefined; // internal: better nothing than an id
	return /[.!?]$/.test(r) ? r.replace(/^./, (c) => c.toUpperCase()) : `${r.replace(/^./, (c) => c.toUpperCase())}.`;
}

/** The badge of a staging copy in lists and on its page. */
export const STAGING_BADGE = 'Staging copy';

/**
 * The banner on a staging copy's pages: what it is, from when, and why it is
 * safe (Odoo's neutralisation switched off outgoing mail, scheduled actions
 * and payment providers in the copy).
 */
export function stagingBanner(originalName: string | undefined, copiedAt: string | undefined): string {
	const of = originalName ? `of ${originalName}` : 'of your instance';
	const when = copiedAt ? `, with its data as it was on ${formatDate(copiedAt)}` : '';
	return `This is a staging copy ${of}${when}. Outgoing mail, scheduled actions and payment providers are switched off in it, so it never mails your customers or charges their cards. Try changes here; production is not affected.`;
}

/** Why an instance offers no staging copy, or undefined when it does. */
export function stagingUnavailableWords(planOffersStaging: boolean, status: string, isCopy: boolean, stagingPlans: string[]): string | undefined {
	if (isCopy) return undefined;
	if (!planOffersStaging) return stagingPlans.length ? `Staging copies come with the ${stagingPlans.join(' and ')} plans.` : 'Your plan has no staging copies.';
	if (status !== 'running' && status !== 'stopped') return 'A staging copy can be made while the instance is running or stopped.';
	return undefined;
}

const BACKUP_KIND_LABELS: Record<string, string> = { manual: 'On demand', daily: 'Daily', safety: 'Safety backup', final: 'Final, at deletion' };
/** Why a backup exists, in words (a safety backup is taken before a restore or a staging copy). */
export function backupKindWords(kind: string | undefined): string {
	return BACKUP_KIND_LABELS[kind ?? 'manual'] ?? 'Backup';
}

/** A backup's state as a badge: its words and tone. */
export function backupStatusBadge(status: string | undefined): { text: string; tone: 'good' | 'warn' | 'bad' | 'neutral' } {
	if (!status || status === 'completed') return { text: 'Ready', tone: 'good' };
	if (status === 'running') return { text: 'In progress', tone: 'neutral' };
	if (status === 'failed') return { text: 'Failed', tone: 'bad' };
	if (status === 'expired') return { text: 'Expired', tone: 'neutral' };
	return { text: status.replace(/_/g, ' '), tone: 'neutral' };
}

/** An invoice's state as a badge: Kill Bill's status when given, else what its balance says. */
export function invoiceStatusBadge(inv: { status?: string; balance?: number }): { text: string; tone: 'good' | 'warn' | 'neutral' } {
	const st = (inv.status ?? ((inv.balance ?? 0) > 0 ? 'unpaid' : 'paid')).toLowerCase();
	if (st === 'paid') return { text: 'Paid', tone: 'good' };
	if (st === 'unpaid') return { text: 'Unpaid', tone: 'warn' };
	return { text: label(st), tone: 'neutral' };
}
