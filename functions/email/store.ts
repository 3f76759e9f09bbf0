/**
 * The email function's memory in the communication database: who a customer
 * is (contacts), what to call an instance, and which mails went out. The
 * `mails` row is the exactly-once guard: its idempotency key is reserved,
 * the mail sent and the row marked sent in one transaction, so a redelivered
 * or concurrent copy of the event waits on the row and then sends nothing.
 * If the database drops after the mail left, the row is written again
 * outside the lost transaction before the event is answered.
 */
import { createHash, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { config } from '@saasodoo/platform/config';
import { db, type Db, type Tx } from '@saasodoo/platform/db/index';
import { HttpError } from '@saasodoo/platform/errors';
import { log } from '@saasodoo/platform/log';
import { sendMail } from '@saasodoo/platform/mail/transport';
import type { RenderedMail } from '@saasodoo/platform/mail/render';
import type { InstanceRef } from '@saasodoo/platform/mail/templates';

export type Contact = { customerId: string; email: string; firstName?: string; lastName?: string; /** The customer proved the address is theirs (user.verified). */ verified?: boolean };

/** Records (or refreshes) a customer's address; names are kept when the event does not carry them, and verified stays verified. */
export async function saveContact(c: Contact): Promise<void> {
  await db('communication').none(
    `INSERT INTO contacts (customer_id, email, first_name, last_name, verified_at) VALUES ($1, $2, $3, $4, CASE WHEN $5 THEN now() END)
     ON CONFLICT (customer_id) DO UPDATE SET email = EXCLUDED.email,
       first_name = COALESCE(EXCLUDED.first_name, contacts.first_name),
       last_name = COALESCE(EXCLUDED.last_name, contacts.last_name),
       verified_at = COALESCE(contacts.verified_at, EXCLUDED.verified_at), updated_at = now()`,
    [c.customerId, c.email, c.firstName ?? null, c.lastName ?? null, c.verified === true],
  );
}

/**
 * The address of a customer. Unknown customers answer 503: the mail is
 * retried (user.registered may simply not have been consumed yet) and, if the
 * contact never appears, dead-lettered where an operator can see it.
 */
export async function contactOf(customerId: string): Promise<Contact> {
  const row = await db('communication').oneOrNone<{ email: string; first_name: string | null; last_name: string | null; verified: boolean }>(
    'SELECT email, first_name, last_name, verified_at IS NOT NULL AS verified FROM contacts WHERE customer_id = $1',
    [customerId],
  );
  if (!row) throw HttpError.unavailable(`The address of customer ${customerId}`, 10);
  return { customerId, email: row.email, firstName: row.first_name ?? undefined, lastName: row.last_name ?? undefined, verified: row.verified };
}

/** Remembers what to call an instance in later mails. */
export async function saveInstanceLabel(i: { instanceId: string; customerId: string; name?: string; subdomain?: string; url?: string }): Promise<void> {
  await db('communication').none(
    `INSERT INTO instance_labels (instance_id, customer_id, name, subdomain, url) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (instance_id) DO UPDATE SET
       name = COALESCE(EXCLUDED.name, instance_labels.name),
       subdomain = COALESCE(EXCLUDED.subdomain, instance_labels.subdomain),
       url = COALESCE(EXCLUDED.url, instance_labels.url), updated_at = now()`,
    [i.instanceId, i.customerId, i.name ?? null, i.subdomain ?? null, i.url ?? null],
  );
}

/** How mails name an instance: its name, else its subdomain, else the start of its id. */
export async function instanceRef(instanceId: string): Promise<InstanceRef> {
  const row = await db('communication').oneOrNone<{ name: string | null; subdomain: string | null; url: string | null }>('SELECT name, subdomain, url FROM instance_labels WHERE instance_id = $1', [
    instanceId,
  ]);
  return { id: instanceId, label: row?.name ?? row?.subdomain ?? instanceId.slice(0, 8), url: row?.url ?? undefined };
}

export type MailRecord = {
  /** Exactly-once key: `<event id>:<template>` unless the template has a more natural one. */
  key: string;
  eventId: string;
  eventType: string;
  template: string;
  customerId?: string;
  to: string;
};

type Sent = { messageId: string; at: Date };

const INSERT_MAIL = `INSERT INTO mails (id, idempotency_key, event_id, event_type, template, customer_id, recipient, subject, status, message_id, sent_at)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (idempotency_key)`;

const mailRow = (r: MailRecord, subject: string, sent?: Sent) => [
  randomUUID(),
  r.key,
  r.eventId,
  r.eventType,
  r.template,
  r.customerId ?? null,
  r.to,
  subject,
  sent ? 'sent' : 'sending',
  sent?.messageId ?? null,
  sent?.at ?? null,
];

/** Marks the key's mail sent, creating its row if the reservation was lost (see sendOnce). */
function markSent(q: Db | Tx, r: MailRecord, subject: string, sent: Sent): Promise<null> {
  return q.none(`${INSERT_MAIL} DO UPDATE SET status = 'sent', sent_at = EXCLUDED.sent_at, message_id = EXCLUDED.message_id`, mailRow(r, subject, sent));
}

/**
 * Sends `mail` once per `r.key`. Returns false when the key was already sent
 * (a redelivery). An SMTP failure throws (503) and rolls the reservation
 * back, so the next delivery tries again.
 */
export async function sendOnce(r: MailRecord, mail: RenderedMail, domain: string): Promise<boolean> {
  let sent = undefined as Sent | undefined;
  try {
    return await db('communication').tx(async (t) => {
      await t.none(`${INSERT_MAIL} DO NOTHING`, mailRow(r, mail.subject));
      // A concurrent copy of the same event blocks here until the first one commits or rolls back.
      const row = await t.one<{ status: string }>('SELECT status FROM mails WHERE idempotency_key = $1 FOR UPDATE', [r.key]);
      if (row.status === 'sent') return false;
      const messageId = `<${createHash('sha256').update(r.key).digest('hex').slice(0, 32)}@${domain}>`;
      sent = { ...(await sendMail({ to: r.to, subject: mail.subject, text: mail.text, html: mail.html, messageId })), at: new Date() };
      await markSent(t, r, mail.subject, sent);
      return true;
    });
  } catch (err) {
    // The mail is out but the database dropped before the commit, taking the
    // reservation with it: answering 5xx now would make the broker redeliver
    // and the mail go out twice. Record it as soon as the database is back.
    if (!sent) throw err;
    await recordSentAfterDrop(r, mail.subject, sent);
    return true;
  }
}

/** Retries markSent on fresh connections for up to MAIL_RECORD_RETRY_MS, then gives up (the mail may be re-sent). */
async function recordSentAfterDrop(r: MailRecord, subject: string, sent: Sent): Promise<void> {
  const deadline = Date.now() + config().MAIL_RECORD_RETRY_MS;
  for (let delay = 250; ; delay = Math.min(delay * 2, 4_000)) {
    try {
      await markSent(db('communication'), r, subject, sent);
      log.info({ key: r.key, messageId: sent.messageId }, 'mail recorded as sent after its transaction was lost');
      return;
    } catch (err) {
      if (Date.now() + delay > deadline) {
        log.warn({ key: r.key, messageId: sent.messageId, reason: (err as Error).message }, 'mail was sent but could not be recorded; a redelivery of the event will send it again');
        throw err;
      }
      await sleep(delay);
    }
  }
}
