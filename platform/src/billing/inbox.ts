/**
 * Kill Bill's notifications in: each is stored in the billing inbox together
 * with its CloudEvent `org.killbill.<type>` in the outbox, and the promise
 * resolves only once that is committed (webhook-intake answers 200 then, so
 * an acknowledged notification is durable). Notifications arriving while a
 * write is in flight are written together by the next one (group commit):
 * one statement, so one round trip and one commit, for all of them. The
 * event id is the dedupe key, so a repeat is recognisable end to end.
 */
import { createHash } from 'node:crypto';
import { killbillType, type KillbillNotification } from '@saasodoo/events';
import { db } from '../db/index.ts';
import { outboxRow, wakeRelay } from '../outbox.ts';

/** A UUID derived from the tenant and the exact notification: the same delivery always gets the same id. */
export function dedupeKey(tenant: string, n: KillbillNotification): string {
  const h = createHash('sha256')
    .update(JSON.stringify([tenant, n.eventType, n.accountId, n.objectType, n.objectId, n.metaData]))
    .digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${((parseInt(h[16], 16) & 0x3) | 0x8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

type Accepted = { id: string; duplicate: boolean };
type Pending = { tenant: string; n: KillbillNotification; id: string; row: ReturnType<typeof outboxRow>; done: (r: Accepted) => void; fail: (e: unknown) => void };

/** Writes at most this many notifications per statement. */
const MAX_GROUP = 256;
/** Statements in flight at once: one being written while the next group gathers. */
const MAX_WRITES = 2;

let waiting: Pending[] = [];
let writes = 0;

/**
 * Stores a notification and its event durably; resolves with the event id
 * and whether it was already stored (a redelivery: no second event). Rejects
 * with a 400-mapped error for data the catalogue refuses, with the database's
 * error when it is unreachable (webhook-intake answers 503 and Kill Bill retries).
 */
export function acceptNotification(tenant: string, n: KillbillNotification): Promise<Accepted> {
  const id = dedupeKey(tenant, n);
  const row = outboxRow(killbillType(n.eventType), n, {
    id,
    subject: n.objectId ?? n.accountId ?? undefined,
    source: '/saasodoo/webhook-intake',
    extensions: { kbaccountid: n.accountId ?? '', kbobjecttype: n.objectType ?? '', kbobjectid: n.objectId ?? '' },
  });
  return new Promise((done, fail) => {
    waiting.push({ tenant, n, id, row, done, fail });
    if (writes < MAX_WRITES) void write();
  });
}

async function write(): Promise<void> {
  writes++;
  try {
    while (waiting.length) {
      const group = waiting.slice(0, MAX_GROUP);
      waiting = waiting.slice(group.length);
      try {
        settle(group, await store(group));
      } catch (err) {
        // One notification the database refuses must not fail the others: write them one by one.
        if (group.length === 1) group[0].fail(err);
        else for (const p of group) await store([p]).then((r) => settle([p], r), p.fail);
      }
    }
  } finally {
    writes--;
  }
}

function settle(group: Pending[], fresh: Set<string>): void {
  if (fresh.size) wakeRelay('billing');
  // Of several copies of one notification in a group, the first is the delivery that stored it.
  const seen = new Set<string>();
  for (const p of group) {
    const first = !seen.has(p.id);
    seen.add(p.id);
    p.done({ id: p.id, duplicate: !(first && fresh.has(p.id)) });
  }
}

/**
 * One statement: the inbox rows (a repeat only counts a delivery) and, for
 * those stored now, their outbox events. Returns the ids stored now.
 */
async function store(group: Pending[]): Promise<Set<string>> {
  const byId = new Map<string, Pending & { deliveries: number }>();
  for (const p of group) {
    const seen = byId.get(p.id);
    if (seen) seen.deliveries++;
    else byId.set(p.id, { ...p, deliveries: 1 });
  }
  const input = [...byId.values()].map((p) => ({
    dedupe_key: p.id,
    tenant: p.tenant,
    event_type: p.n.eventType,
    account_id: p.n.accountId ?? null,
    object_type: p.n.objectType ?? null,
    object_id: p.n.objectId ?? null,
    body: p.n,
    deliveries: p.deliveries,
    type: p.row.type,
    source: p.row.source,
    subject: p.row.subject,
    data: JSON.parse(p.row.data),
    extensions: JSON.parse(p.row.extensions),
  }));
  const rows = await db('billing').manyOrNone<{ dedupe_key: string }>(
    `WITH input AS (
       SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(dedupe_key uuid, tenant text, event_type text, account_id uuid, object_type text,
         object_id uuid, body jsonb, deliveries int, type text, source text, subject text, data jsonb, extensions jsonb)
     ), inbox AS (
       INSERT INTO kb_inbox (dedupe_key, tenant, event_type, account_id, object_type, object_id, body, deliveries)
       SELECT dedupe_key, tenant, event_type, account_id, object_type, object_id, body, deliveries FROM input
       ON CONFLICT (dedupe_key) DO UPDATE SET deliveries = kb_inbox.deliveries + excluded.deliveries
       RETURNING dedupe_key, (xmax = 0) AS fresh
     ), events AS (
       INSERT INTO outbox (id, type, source, subject, data, extensions)
       SELECT i.dedupe_key, i.type, i.source, i.subject, i.data, i.extensions FROM input i JOIN inbox USING (dedupe_key) WHERE inbox.fresh
       ON CONFLICT (id) DO NOTHING
     )
     SELECT dedupe_key FROM inbox WHERE fresh`,
    [JSON.stringify(input)],
  );
  return new Set(rows.map((r) => r.dedupe_key));
}
