/**
 * POST /api/webhook-intake?tenant=&token=: Kill Bill's push notifications in
 * (SPEC 12, issue 6). The per-tenant token is checked in constant time before
 * anything else (401, nothing stored, body never logged); then JSON only
 * (415), 64 KiB at most (413), Kill Bill's notification shape and the text
 * rule of events/text.ts (400 naming the field). The notification and its
 * CloudEvent `org.killbill.<type>` are written in one transaction (inbox +
 * outbox) and 200 is answered only after the commit; a database outage
 * answers 503 so Kill Bill retries. The event id is the dedupe key, so a
 * repeat is recognisable end to end.
 */
import { createHash, randomUUID } from 'node:crypto';
import { killbillNotification, killbillType, textProblemField, textProblemIn, type KillbillNotification } from '@saasodoo/events';
import { db } from '@saasodoo/platform/db/index';
import { HttpError, zodFields } from '@saasodoo/platform/errors';
import { errorResult, type FaasContext, type FaasFunction } from '@saasodoo/platform/fn';
import { log as rootLog } from '@saasodoo/platform/log';
import { enqueueRaw } from '@saasodoo/platform/outbox';
import { tokenMatches } from '@saasodoo/platform/billing/webhook';
import { kickBillingOutbox, stopBillingOutbox } from '@saasodoo/platform/billing/service';

const MAX_BYTES = 64 * 1024;

/** A UUID derived from the tenant and the exact notification: the same delivery always gets the same id. */
export function dedupeKey(tenant: string, n: KillbillNotification): string {
  const h = createHash('sha256').update(JSON.stringify([tenant, n.eventType, n.accountId, n.objectType, n.objectId, n.metaData])).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${((parseInt(h[16], 16) & 0x3) | 0x8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

const first = (v: unknown) => (Array.isArray(v) ? v[0] : v) as string | undefined;

async function handle(context: FaasContext) {
  const headers = context.headers ?? {};
  const requestId = first(headers['x-request-id']) ?? randomUUID();
  const log = rootLog.child({ fn: 'webhook-intake', requestId });
  try {
    if (String(context.method ?? '').toUpperCase() !== 'POST') throw new HttpError(405, 'method_not_allowed', 'Use POST', undefined, { allow: 'POST' });
    const q = (context.query ?? {}) as Record<string, unknown>;
    const tenant = typeof q.tenant === 'string' ? q.tenant : undefined;
    if (!tokenMatches(tenant, typeof q.token === 'string' ? q.token : undefined)) {
      throw new HttpError(401, 'unauthorized', 'Unknown tenant or wrong token');
    }
    if (!/^application\/json\b/i.test(first(headers['content-type']) ?? '')) {
      throw new HttpError(415, 'unsupported_media_type', 'Send the notification as application/json', { body: 'expected application/json' });
    }
    const length = Number(first(headers['content-length']) ?? 0);
    const raw = typeof context.body === 'string' ? context.body : JSON.stringify(context.body ?? null);
    if (length > MAX_BYTES || Buffer.byteLength(raw) > MAX_BYTES) throw new HttpError(413, 'payload_too_large', 'Notification over 64 KiB', { body: 'at most 64 KiB' });
    let body: unknown = context.body;
    if (typeof body === 'string') {
      try {
        body = JSON.parse(body);
      } catch {
        throw HttpError.badRequest('The body is not valid JSON', { body: 'invalid JSON' });
      }
    }
    const parsed = killbillNotification.safeParse(body);
    if (!parsed.success) throw HttpError.badRequest('Not a Kill Bill notification', zodFields(parsed.error, 'body'));
    // The schema holds its text fields to the text rule; the net covers any field added without it.
    const bad = textProblemIn(parsed.data);
    if (bad) throw HttpError.badRequest('Not a Kill Bill notification', textProblemField(bad, 'body'));
    const n = parsed.data;
    const id = dedupeKey(tenant!, n);
    const type = killbillType(n.eventType);
    const fresh = await db('billing').tx(async (t) => {
      const inserted = await t.oneOrNone(
        `INSERT INTO kb_inbox (dedupe_key, tenant, event_type, account_id, object_type, object_id, body) VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (dedupe_key) DO UPDATE SET deliveries = kb_inbox.deliveries + 1 RETURNING (xmax = 0) AS fresh`,
        [id, tenant, n.eventType, n.accountId, n.objectType, n.objectId, JSON.stringify(n)],
      );
      if (!inserted?.fresh) return false;
      await enqueueRaw(t, type, n, {
        id, subject: n.objectId ?? n.accountId ?? undefined, source: '/saasodoo/webhook-intake',
        extensions: { kbaccountid: n.accountId ?? '', kbobjecttype: n.objectType ?? '', kbobjectid: n.objectId ?? '' },
      });
      return true;
    });
    if (fresh) kickBillingOutbox();
    return { statusCode: 200, headers: { 'content-type': 'application/json; charset=utf-8' }, body: { id, duplicate: !fresh } };
  } catch (err) {
    return errorResult(err, requestId, log);
  }
}

const fn: FaasFunction = { handle, init: kickBillingOutbox, shutdown: stopBillingOutbox };
export default fn;
