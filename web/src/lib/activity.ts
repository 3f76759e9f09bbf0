/**
 * Audit log entries in a person's words: who did what, and how it ended.
 * The log stores action names (`instance-action.stop`); people read "You
 * stopped Acme". Unknown actions fall back to a neutral sentence rather than
 * showing the internal name.
 */
export type ActivityEntry = {
	id: string;
	at: string;
	actor: 'customer' | 'operator' | 'anonymous' | 'billing' | 'system';
	actorId: string | null;
	customerId: string | null;
	instanceId: string | null;
	action: string;
	outcome: 'succeeded' | 'refused' | 'denied' | 'failed';
	detail: string | null;
};

/** [what was done, what was tried] for a person's action; `{i}` is the instance's name. */
const PERSON: Record<string, [string, string]> = {
	login: ['signed in', 'sign in'],
	logout: ['signed out', 'sign out'],
	signup: ['created the account', 'create the account'],
	'verify-email': ['confirmed the email address', 'confirm the email address'],
	'password-reset': ['set a new password from an emailed link', 'set a new password from an emailed link'],
	'account.updateprofile': ['updated the profile', 'update the profile'],
	'account.changepassword': ['changed the password', 'change the password'],
	'account.revokesession': ['signed out another device', 'sign out another device'],
	instances: ['asked for a new instance, {i}', 'ask for a new instance'],
	'instance-action.start': ['started {i}', 'start {i}'],
	'instance-action.stop': ['stopped {i}', 'stop {i}'],
	'instance-action.restart': ['restarted {i}', 'restart {i}'],
	'instance-action.backup': ['asked for a backup of {i}', 'back up {i}'],
	'instance-action.restore': ['asked to restore a backup of {i}', 'restore a backup of {i}'],
	'instance-action.delete': ['deleted {i}', 'delete {i}'],
	'instance-action.retry': ['retried setting up {i}', 'retry setting up {i}'],
	'instance-action.reset_odoo_password': ['set a new Odoo password for {i}', 'set a new Odoo password for {i}'],
	'billing.startsubscription': ['started a subscription', 'start a subscription'],
	'billing.changeplan': ['changed plan', 'change plan'],
	'billing.cancel': ['cancelled a subscription', 'cancel a subscription'],
	'billing.addcard': ['started adding a card', 'start adding a card'],
	'billing.cardadded': ['added a card', 'add a card'],
	'billing.removecard': ['removed the card', 'remove the card'],
	'billing.paynow': ['asked to pay the open invoices now', 'pay the open invoices now'],
	'domains.add': ['added a custom domain to {i}', 'add a custom domain to {i}'],
	'domains.verify': ['checked the DNS records of a custom domain of {i}', 'check a custom domain of {i}'],
	'domains.remove': ['removed a custom domain from {i}', 'remove a custom domain from {i}'],
	'dead-letters': ['sent undelivered events again', 'send undelivered events again'],
	'staging.create': ['made a staging copy of {i}', 'make a staging copy of {i}'],
	'staging.refresh': ['refreshed the staging copy {i} from production', 'refresh the staging copy {i}'],
	'billing.startstagingaddon': ['started the staging copy’s subscription', 'start the staging copy’s subscription'],
	// Command-line operator actions (platform admin, platform dlq).
	'admin.grant': ['gave this account the operator role', 'give this account the operator role'],
	'admin.revoke': ['took the operator role from this account', 'take the operator role from this account'],
	'dlq.replay': ['sent undelivered events again', 'send undelivered events again'],
};

/** Decisions made by billing or the platform itself, as sentences. */
const DECISION: Record<string, [string, string?]> = {
	// Kill Bill's push notifications come in through webhook-intake, signed by the billing system, not a person.
	'webhook-intake': ['Billing sent a notification', 'A billing notification was refused'],
	'billing.trial': ['The free trial started'],
	'billing.paid': ['The subscription is paid'],
	'billing.payment_required': ['A payment is needed to continue'],
	'billing.overdue': ['A payment is overdue'],
	'billing.suspended': ['The subscription was suspended for non-payment'],
	'instance.provisioned': ['{i} was set up and is running'],
	'instance.provisioning': ['{i} was set up', 'Setting up {i} failed'],
	'instance.suspend': ['{i} was suspended for non-payment'],
	'instance.resume': ['{i} was resumed'],
	'instance.terminate': ['{i} is being removed'],
	'instance.backup.daily': ['The daily backup of {i} was taken', 'The daily backup of {i} failed'],
	'instance.backup.safety': ['A safety backup of {i} was taken', 'A safety backup of {i} failed'],
	'instance.backup.final': ['A final backup of {i} was taken', 'The final backup of {i} failed'],
};

const WHO = { operator: 'An operator', anonymous: 'Someone', billing: 'Billing', system: 'The platform' } as const;

/**
 * One sentence for an entry. `self` is the reader's own id (their actions
 * read "You …"); `names` maps instance ids to the names people gave them.
 */
export function describeActivity(e: ActivityEntry, self: string | undefined, names: Record<string, string> = {}): string {
	const name = (e.instanceId && names[e.instanceId]) || 'an instance';
	const fill = (s: string) => s.replaceAll('{i}', name);
	const decision = DECISION[e.action];
	if (decision) {
		const failed = e.outcome !== 'succeeded' && decision[1];
		const sentence = fill(failed ? decision[1]! : decision[0]);
		return sentence.charAt(0).toUpperCase() + sentence.slice(1);
	}
	const who = e.actor === 'customer' && e.actorId === self ? 'You' : e.actor === 'customer' ? 'The account holder' : WHO[e.actor];
	const [done, tried] = PERSON[e.action] ?? ['made a change', 'make a change'];
	if (e.outcome === 'succeeded') return `${who} ${fill(done)}`;
	const why = e.outcome === 'failed' ? 'it failed' : 'it was not allowed';
	return `${who} tried to ${fill(tried)}, but ${why}`;
}
