/**
 * `email`: every lifecycle event a customer should hear about becomes one
 * mail, exactly once (platform/src/mail/README.md). Each handler picks the template, the
 * recipient and the exactly-once key; store.ts does reserve → send → mark.
 * An SMTP failure answers 503 so the broker retries, then dead-letters.
 */
import { PREFIX, type EventData, type ShortType } from '@saasodoo/events';
import { config } from '@saasodoo/platform/config';
import { db } from '@saasodoo/platform/db/index';
import { eventFunction, type ReceivedEvent } from '@saasodoo/platform/fn';
import { renderTemplate, type TemplateName, type TemplateVars } from '@saasodoo/platform/mail/templates';
import { closeMailTransport } from '@saasodoo/platform/mail/transport';
import { contactOf, instanceRef, saveContact, saveInstanceLabel, sendOnce, type Contact } from './store.ts';

type Ev<T extends ShortType> = ReceivedEvent<EventData<T>>;

type Delivery<T extends TemplateName> = {
  to: string;
  customerId?: string;
  vars: TemplateVars[T];
  /** Exactly-once key; default `<event id>:<template>` (platform/src/mail/README.md). */
  key?: string;
};

/** Renders `template` and sends it once per key. */
async function deliver<T extends TemplateName>(e: ReceivedEvent, template: T, d: Delivery<T>): Promise<void> {
  const c = config();
  const mail = renderTemplate(template, d.vars, {
    publicUrl: c.PUBLIC_URL,
    operator: { name: c.OPERATOR_NAME, postalAddress: c.OPERATOR_POSTAL_ADDRESS, support: c.SUPPORT_CONTACT },
  });
  const key = d.key ?? `${e.id}:${template}`;
  const sent = await sendOnce({ key, eventId: e.id, eventType: e.type, template, customerId: d.customerId, to: d.to }, mail, new URL(c.PUBLIC_URL).hostname);
  e.log.info({ template, key, sent }, sent ? 'mail sent' : 'mail already sent for this key');
}

/** Sends `template` to a customer known only by id (address from the contacts table). */
async function deliverToCustomer<T extends TemplateName>(e: ReceivedEvent, template: T, customerId: string, vars: Omit<TemplateVars[T], 'firstName'>, key?: string): Promise<void> {
  const contact = await contactOf(customerId);
  await deliver(e, template, { to: contact.email, customerId, key, vars: { ...vars, firstName: shownName(contact) } as TemplateVars[T] });
}

/** Sends an operator alert; without an operator address it is logged and dropped (nothing to retry). */
async function deliverToOperator<T extends 'pool-unhealthy' | 'pool-recovered'>(e: ReceivedEvent, template: T, vars: TemplateVars[T]): Promise<void> {
  const c = config();
  const to = c.OPERATOR_EMAIL ?? (/^[^\s@]+@[^\s@]+$/.test(c.SUPPORT_CONTACT) ? c.SUPPORT_CONTACT : undefined);
  if (!to) {
    e.log.warn({ template }, 'operator alert not mailed: set OPERATOR_EMAIL');
    return;
  }
  await deliver(e, template, { to, vars });
}

/**
 * The first name a mail may print: only once the customer verified the
 * address. Before that the name is whatever the person who signed up typed,
 * and the address may be someone else's: "Hello <a phishing line>," would
 * reach a stranger under our name.
 */
const shownName = (c: Contact): string | undefined => (c.verified ? c.firstName : undefined);

/** First name for mails to events that carry the address but not the name (see shownName). */
async function firstNameOf(customerId: string): Promise<string | undefined> {
  return contactOf(customerId).then(shownName, () => undefined);
}

/** billing.status_changed `reason` → template; reasons not listed send no mail. */
export const BILLING_REASON_TEMPLATES = {
  trial_ended: 'trial-ended',
  invoice_created: 'invoice-created',
  payment_succeeded: 'payment-succeeded',
  payment_failed: 'payment-failed',
  overdue_warning: 'overdue-warning',
  suspended: 'instance-suspended',
  resumed: 'instance-resumed',
  cancellation_scheduled: 'cancellation-scheduled',
} as const satisfies Record<string, TemplateName>;

/** `{ 'com.saasodoo.<type>': handle }`, typed so the spread keeps each key (the triggers test reads them). */
const on = <T extends ShortType>(type: T, handle: (e: Ev<T>) => Promise<void>) => ({ [`${PREFIX}${type}`]: handle }) as { [K in `${typeof PREFIX}${T}`]: (e: Ev<T>) => Promise<void> };

export default eventFunction({
  name: 'email',
  on: {
    ...on('user.registered', (e) => saveContact({ customerId: e.data.customerId, email: e.data.email, firstName: e.data.firstName, lastName: e.data.lastName })),
    ...on('user.signup_attempted', (e) => deliver(e, 'signup-attempt', { to: e.data.email, vars: {} })),
    ...on('user.verification_requested', async (e) => {
      await saveContact({ customerId: e.data.customerId, email: e.data.email, firstName: e.data.firstName });
      // Not verified yet by definition: no name (see shownName).
      await deliver(e, 'verify-email', { to: e.data.email, customerId: e.data.customerId, vars: { verifyUrl: e.data.verifyUrl } });
    }),
    ...on('user.verified', async (e) => {
      await saveContact({ customerId: e.data.customerId, email: e.data.email, firstName: e.data.firstName, verified: true });
      // One welcome per customer, whatever the number of verified events.
      await deliver(e, 'welcome', { to: e.data.email, customerId: e.data.customerId, vars: { firstName: e.data.firstName }, key: `welcome:${e.data.customerId}` });
    }),
    ...on('user.password_reset_requested', async (e) =>
      deliver(e, 'password-reset', {
        to: e.data.email,
        customerId: e.data.customerId,
        vars: { firstName: await firstNameOf(e.data.customerId), resetUrl: e.data.resetUrl },
      }),
    ),
    ...on('user.password_changed', async (e) => deliver(e, 'password-changed', { to: e.data.email, customerId: e.data.customerId, vars: { firstName: await firstNameOf(e.data.customerId) } })),

    ...on('instance.requested', (e) => saveInstanceLabel({ instanceId: e.data.instanceId, customerId: e.data.customerId, name: e.data.name, subdomain: e.data.subdomain })),
    ...on('instance.ready', async (e) => {
      const { instanceId, customerId } = e.data;
      await saveInstanceLabel({ instanceId, customerId, name: e.data.name, url: e.data.url });
      const vars = { instance: await instanceRef(instanceId) };
      // A staging copy is announced as one, once per copy of the data (its creation and each refresh).
      if (e.data.stagingOf)
        return deliverToCustomer(
          e,
          'staging-ready',
          customerId,
          { ...vars, original: e.data.stagingOf.name, copiedAt: e.data.stagingOf.copiedAt },
          `staging-ready:${instanceId}:${e.data.stagingOf.copiedAt}`,
        );
      const key = `instance-ready:${instanceId}`; // "ready for the first time": once per instance
      if (e.data.email) await deliver(e, 'instance-ready', { to: e.data.email, customerId, key, vars: { ...vars, firstName: await firstNameOf(customerId) } });
      else await deliverToCustomer(e, 'instance-ready', customerId, vars, key);
    }),
    ...on('instance.failed', async (e) => deliverToCustomer(e, 'instance-failed', e.data.customerId, { instance: await instanceRef(e.data.instanceId), step: e.data.step })),
    ...on('instance.status_changed', async (e) => {
      if (e.data.to !== 'terminated') return;
      await deliverToCustomer(e, 'instance-terminated', e.data.customerId, { instance: await instanceRef(e.data.instanceId) }, `instance-terminated:${e.data.instanceId}`);
    }),
    ...on('instance.backup_completed', async (e) => {
      // Routine backups (daily, before a restore, before termination) are covered by other mails or none.
      if (e.data.kind && e.data.kind !== 'manual') return;
      await deliverToCustomer(e, 'backup-completed', e.data.customerId, { instance: await instanceRef(e.data.instanceId), sizeBytes: e.data.sizeBytes });
    }),
    ...on('instance.backup_failed', async (e) => {
      if (e.data.kind === 'safety' || e.data.kind === 'final') return; // the restore / termination mail tells the story
      await deliverToCustomer(e, 'backup-failed', e.data.customerId, { instance: await instanceRef(e.data.instanceId) });
    }),
    ...on('instance.restore_completed', async (e) => deliverToCustomer(e, 'restore-completed', e.data.customerId, { instance: await instanceRef(e.data.instanceId), status: e.data.status })),
    ...on('instance.restore_failed', async (e) => deliverToCustomer(e, 'restore-failed', e.data.customerId, { instance: await instanceRef(e.data.instanceId) })),

    // Operator alerts: to OPERATOR_EMAIL (else SUPPORT_CONTACT when it is an address), once per event.
    ...on('pool.unhealthy', (e) => deliverToOperator(e, 'pool-unhealthy', { pool: e.data.pool, failures: e.data.failures, reason: e.data.reason })),
    ...on('pool.recovered', (e) => deliverToOperator(e, 'pool-recovered', { pool: e.data.pool })),

    ...on('billing.trial_ending', (e) =>
      // Once per (subscription, daysLeft), even if two different events announce the same day.
      deliverToCustomer(e, 'trial-ending', e.data.customerId, { daysLeft: e.data.daysLeft, trialEndsAt: e.data.trialEndsAt }, `trial-ending:${e.data.subscriptionId}:${e.data.daysLeft}`),
    ),
    ...on('billing.status_changed', async (e) => {
      const template = BILLING_REASON_TEMPLATES[e.data.reason as keyof typeof BILLING_REASON_TEMPLATES];
      if (!template) {
        e.log.debug({ reason: e.data.reason }, 'billing status change without a mail');
        return;
      }
      const instance = e.data.instanceId ? await instanceRef(e.data.instanceId) : undefined;
      // Every billing template takes {instance?, status, invoice?}; cancellation-scheduled also prints effectiveDate.
      await deliverToCustomer(e, template as 'cancellation-scheduled', e.data.customerId, { instance, status: e.data.status, effectiveDate: e.data.effectiveDate, invoice: e.data.invoice });
    }),
  },
  checks: [
    function communicationDatabase() {
      return db('communication').one('SELECT 1 AS ok');
    },
  ],
  shutdown: () => closeMailTransport(),
});
