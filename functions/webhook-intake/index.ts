/**
 * POST /api/webhook-intake?tenant=&token=: Kill Bill's push notifications in
 * (functions/README.md, "Kill Bill notification to running instance"). The
 * per-tenant token is checked in constant time before anything else (401,
 * nothing stored, body never logged); then JSON only (415), 64 KiB at most
 * (413), Kill Bill's notification shape and the text rule of events/text.ts
 * (400 naming the field). The notification and its CloudEvent
 * `org.killbill.<type>` are stored together (billing/inbox.ts) and 200 is
 * answered only after the commit; a database outage answers 503 so Kill
 * Bill retries. The event id is the dedupe key, so a repeat is recognisable
 * end to end. Not in the audit trail of people's actions: kb_inbox is its record.
 */
import { z } from 'zod';
import { killbillNotification } from '@saasodoo/events';
import { httpFunction } from '@saasodoo/platform/fn';
import { tokenMatches } from '@saasodoo/platform/billing/webhook';
import { acceptNotification } from '@saasodoo/platform/billing/inbox';

const query = z.object({ tenant: z.string(), token: z.string() }).strict();

export default httpFunction({
  name: 'webhook-intake',
  POST: {
    auth: 'none',
    queryToken: (q) => tokenMatches(typeof q.tenant === 'string' ? q.tenant : undefined, typeof q.token === 'string' ? q.token : undefined),
    maxBodyBytes: 64 * 1024,
    query,
    body: killbillNotification,
    handle: async ({ query: q, body: n }) => ({ status: 200, body: await acceptNotification(q.tenant, n) }),
    // Kill Bill's deliveries are no person's action: each accepted one is kept in kb_inbox (with its delivery
    // count), and an audit entry would be a second commit on the hot path (issue 23: 2 of its ~18 ms).
    audit: false,
  },
  outbox: 'billing',
});
