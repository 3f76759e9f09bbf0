/**
 * The simulator's store: Kill Bill objects kept as JSON documents shaped like
 * Kill Bill's REST answers, in the simulator's own database. Keys starting
 * with `_` are simulator bookkeeping (trial end, next billing time...) and
 * are stripped from every answer.
 */
import { randomUUID } from 'node:crypto';
import type { Tx } from '../db/index.ts';

export type Kind = 'account' | 'bundle' | 'subscription' | 'invoice' | 'payment' | 'paymentMethod' | 'blocking' | 'checkoutSession';
export type Doc = Record<string, any>;
export type Tenant = { id: string; api_key: string; api_secret: string; callback_url: string | null; catalog_xml: string | null; overdue_xml: string | null };

export async function tenantByKey(t: Tx, apiKey: string): Promise<Tenant | null> {
  return t.oneOrNone<Tenant>('SELECT * FROM kb_tenants WHERE api_key = $1', [apiKey]);
}

export async function createTenant(t: Tx, apiKey: string, apiSecret: string, externalKey?: string): Promise<Tenant> {
  return t.one<Tenant>('INSERT INTO kb_tenants (id, api_key, api_secret, external_key) VALUES ($1, $2, $3, $4) RETURNING *', [randomUUID(), apiKey, apiSecret, externalKey ?? null]);
}

export async function put(t: Tx, kind: Kind, tenantId: string, id: string, doc: Doc, o: { accountId?: string | null; externalKey?: string | null } = {}): Promise<Doc> {
  await t.none(
    `INSERT INTO kb_objects (kind, id, tenant_id, account_id, external_key, doc) VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (kind, id) DO UPDATE SET doc = EXCLUDED.doc, external_key = EXCLUDED.external_key`,
    [kind, id, tenantId, o.accountId ?? null, o.externalKey ?? null, JSON.stringify(doc)],
  );
  return doc;
}

export async function get(t: Tx, kind: Kind, tenantId: string, id: string): Promise<Doc | null> {
  if (!/^[0-9a-f-]{36}$/i.test(id)) return null;
  const row = await t.oneOrNone<{ doc: Doc }>('SELECT doc FROM kb_objects WHERE kind = $1 AND id = $2 AND tenant_id = $3', [kind, id, tenantId]);
  return row?.doc ?? null;
}

export async function find(t: Tx, kind: Kind, tenantId: string, where: { accountId?: string; externalKey?: string } = {}): Promise<Doc[]> {
  const rows = await t.manyOrNone<{ doc: Doc }>(
    `SELECT doc FROM kb_objects WHERE kind = $1 AND tenant_id = $2
       AND ($3::uuid IS NULL OR account_id = $3::uuid) AND ($4::text IS NULL OR external_key = $4)
     ORDER BY seq`,
    [kind, tenantId, where.accountId ?? null, where.externalKey ?? null],
  );
  return rows.map((r) => r.doc);
}

/** Every object of a kind, across tenants, with its tenant (the clock moves them all). */
export async function findAll(t: Tx, kind: Kind): Promise<{ tenantId: string; doc: Doc }[]> {
  const rows = await t.manyOrNone<{ tenant_id: string; doc: Doc }>('SELECT tenant_id, doc FROM kb_objects WHERE kind = $1 ORDER BY seq', [kind]);
  return rows.map((r) => ({ tenantId: r.tenant_id, doc: r.doc }));
}

/** A copy without the simulator's `_` bookkeeping keys (what the REST API answers). */
export function publicView(doc: Doc): Doc {
  const out: Doc = {};
  for (const [k, v] of Object.entries(doc)) if (!k.startsWith('_')) out[k] = v;
  return out;
}

export async function clockNow(t: Tx): Promise<Date> {
  const row = await t.oneOrNone<{ now: Date }>('SELECT now FROM kb_clock WHERE id = 1');
  if (row) return row.now;
  const now = new Date(Math.floor(Date.now() / 1000) * 1000);
  await t.none('INSERT INTO kb_clock (id, now) VALUES (1, $1) ON CONFLICT (id) DO NOTHING', [now]);
  return now;
}

export async function setClock(t: Tx, at: Date): Promise<void> {
  await t.none('INSERT INTO kb_clock (id, now) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET now = EXCLUDED.now', [at]);
}
