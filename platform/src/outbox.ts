/**
 * Transactional outbox: the one way a state change emits events. A function
 * writes its state change and the events it causes in one transaction
 * (`transact(service, t => … enqueue(t, …))`); after the commit the service's
 * relay is woken and publishes the unsent rows to K_SINK. A crash between
 * commit and publish loses nothing: the next relay pass (on start or on its
 * timer) sends the rows, with the same event ids.
 */
import { CloudEvent } from 'cloudevents';
import { PREFIX, type EventData, type ShortType } from '@saasodoo/events';
import { config } from './config.ts';
import { db, type Db, type ServiceDatabase, type Tx } from './db/index.ts';
import { buildEvent, send, type EmitOptions } from './emit.ts';
import { log } from './log.ts';

/** Marks a transaction started by `transact`; `enqueue` sets `enqueued` on it. */
type Mark = { outbox: ServiceDatabase; enqueued: boolean };

function markOf(t: Tx): Mark | undefined {
  let ctx = t.ctx;
  while (ctx.parent) ctx = ctx.parent;
  const tag = ctx.tag as Partial<Mark> | undefined;
  return tag && typeof tag === 'object' && tag.outbox ? (tag as Mark) : undefined;
}

/**
 * Runs `work` in one transaction on the service's database and, once it has
 * committed, wakes that service's relay if `work` enqueued events. Use it for
 * every transaction that enqueues: nothing else wakes the relay, so events
 * leave as soon as their cause is durable and never before.
 */
export async function transact<T>(service: ServiceDatabase, work: (t: Tx) => Promise<T>): Promise<T> {
  const mark: Mark = { outbox: service, enqueued: false };
  const result = await db(service).tx({ tag: mark }, work);
  if (mark.enqueued) wakeRelay(service);
  return result;
}

/** The outbox row of an event: validated against the catalogue (400-mapped error otherwise). */
export function outboxRow(type: string, data: unknown, o: EmitOptions = {}) {
  const ev = buildEvent(type, data, o);
  const { id, source, subject, data: payload, specversion, datacontenttype, time, ...rest } = ev.toJSON() as Record<string, unknown>;
  delete rest.type;
  return { id: id as string, type, source: source as string, subject: (subject as string | undefined) ?? null, data: JSON.stringify(payload), extensions: JSON.stringify(rest) };
}

/** Writes an event into the outbox inside a `transact` transaction; returns its id. */
export async function enqueue<T extends ShortType>(t: Tx, type: T, data: EventData<T>, o: EmitOptions = {}): Promise<string> {
  return enqueueRaw(t, `${PREFIX}${type}`, data, o);
}

/** Same as enqueue for any catalogue type (org.killbill.* included). */
export async function enqueueRaw(t: Tx, type: string, data: unknown, o: EmitOptions = {}): Promise<string> {
  const mark = markOf(t);
  // Outside transact() nothing would wake the relay after the commit: the event would wait for a timer.
  if (!mark) throw new Error(`enqueue(${type}) outside transact(): the relay would not be woken after the commit`);
  const r = outboxRow(type, data, o);
  await t.none(
    `INSERT INTO outbox (id, type, source, subject, data, extensions) VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (id) DO NOTHING`,
    [r.id, r.type, r.source, r.subject, r.data, r.extensions],
  );
  mark.enqueued = true;
  return r.id;
}

type OutboxRow = ReturnType<typeof outboxRow>;
type Appending = { row: OutboxRow; done: () => void; fail: (err: unknown) => void };

/** Rows per statement, and statements in flight per service (one written while the next group gathers). */
const MAX_GROUP = 256;
const MAX_WRITES = 2;
const appending = new Map<ServiceDatabase, { waiting: Appending[]; writes: number }>();

/**
 * Stores one event that shares no transaction with a state change (an audit
 * entry) in the service's outbox, resolving once it is committed. Events
 * arriving while a write is in flight go into the next statement together
 * (group commit): one round trip and one commit for all of them, instead
 * of BEGIN, INSERT and COMMIT each, which on a busy path (every audited
 * POST) cost more than the request's own work. Throws (400-mapped) for data
 * the catalogue refuses, as outboxRow; rejects with the database's error.
 */
export function appendEvent(service: ServiceDatabase, type: string, data: unknown, o: EmitOptions = {}): Promise<string> {
  const row = outboxRow(type, data, o);
  let q = appending.get(service);
  if (!q) appending.set(service, (q = { waiting: [], writes: 0 }));
  const queue = q;
  return new Promise<string>((resolve, reject) => {
    queue.waiting.push({ row, done: () => resolve(row.id), fail: reject });
    if (queue.writes < MAX_WRITES) void appendGroups(service, queue);
  });
}

async function appendGroups(service: ServiceDatabase, q: { waiting: Appending[]; writes: number }): Promise<void> {
  q.writes++;
  try {
    while (q.waiting.length) {
      const group = q.waiting.splice(0, MAX_GROUP);
      try {
        await insertRows(
          service,
          group.map((p) => p.row),
        );
        wakeRelay(service);
        for (const p of group) p.done();
      } catch (err) {
        // One row the database refuses must not fail the others: write them one by one.
        if (group.length === 1) group[0].fail(err);
        else for (const p of group) await insertRows(service, [p.row]).then(() => (wakeRelay(service), p.done()), p.fail);
      }
    }
  } finally {
    q.writes--;
  }
}

/** One INSERT of many rows; data and extensions are already JSON text, spliced as is into the one parameter. */
function insertRows(service: ServiceDatabase, rows: OutboxRow[]): Promise<null> {
  const json = `[${rows.map((r) => `{"id":${JSON.stringify(r.id)},"type":${JSON.stringify(r.type)},"source":${JSON.stringify(r.source)},"subject":${JSON.stringify(r.subject)},"data":${r.data},"extensions":${r.extensions}}`).join(',')}]`;
  return db(service).none(
    `INSERT INTO outbox (id, type, source, subject, data, extensions)
     SELECT id, type, source, subject, data, extensions
     FROM jsonb_to_recordset($1::jsonb) AS x(id uuid, type text, source text, subject text, data jsonb, extensions jsonb)
     ON CONFLICT (id) DO NOTHING`,
    [json],
  );
}

type Row = { id: string; type: string; source: string; subject: string | null; data: unknown; extensions: Record<string, string>; created_at: Date };

/** How many events of one relay pass are in flight to the broker at once. */
const IN_FLIGHT = 32;

/**
 * Publishes pending outbox rows, oldest first. Rows are locked with SKIP
 * LOCKED so several replicas can relay at once without sending twice in
 * parallel. Events of different subjects are sent concurrently (each send
 * returns only once the broker confirmed it); events of one subject keep
 * their order. Every row the broker accepted is marked sent in one
 * statement, also when another send of the pass failed.
 */
export async function relayOnce(database: Db, batch = 100): Promise<number> {
  return database.tx(async (t) => {
    const rows = await t.manyOrNone<Row>(`SELECT * FROM outbox WHERE published_at IS NULL ORDER BY created_at, id LIMIT $1 FOR UPDATE SKIP LOCKED`, [batch]);
    const bySubject = new Map<string, Row[]>();
    for (const r of rows) {
      const key = r.subject ?? `id:${r.id}`;
      bySubject.set(key, [...(bySubject.get(key) ?? []), r]);
    }
    const groups = [...bySubject.values()];
    const sent: string[] = [];
    let failure: unknown;
    await Promise.all(
      Array.from({ length: Math.min(IN_FLIGHT, groups.length) }, async () => {
        for (let g = groups.shift(); g && failure === undefined; g = groups.shift()) {
          for (const r of g) {
            const ev = new CloudEvent({
              specversion: '1.0',
              id: r.id,
              type: r.type,
              source: r.source,
              subject: r.subject ?? undefined,
              time: r.created_at.toISOString(),
              datacontenttype: 'application/json',
              data: r.data,
              ...r.extensions,
            });
            try {
              await send(ev);
            } catch (err) {
              failure ??= err;
              break;
            }
            sent.push(r.id);
          }
        }
      }),
    );
    if (sent.length) await t.none('UPDATE outbox SET published_at = now() WHERE id = ANY($1::uuid[])', [sent]);
    if (failure !== undefined) {
      log.warn({ err: (failure as Error).message, sent: sent.length }, 'outbox relay pass failed; will retry');
      return 0;
    }
    return sent.length;
  });
}

export type Relay = { kick(): void; stop(): Promise<void> };

/**
 * Runs a relay over one database: on every `kick()` and every `intervalMs`
 * as a safety net. Failures are logged and retried next pass.
 */
export function startRelay(database: Db, intervalMs = 1000): Relay {
  let running: Promise<void> | undefined;
  let again = false;
  let stopped = false;
  const pass = () => {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = (async () => {
      try {
        do {
          again = false;
          while ((await relayOnce(database)) > 0 && !stopped) {
            /* drain */
          }
        } while (again && !stopped);
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'outbox relay pass failed; will retry');
      } finally {
        running = undefined;
      }
    })();
  };
  const timer = setInterval(pass, intervalMs);
  timer.unref();
  pass();
  return {
    kick: pass,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}

const relays = new Map<ServiceDatabase, Relay>();

/**
 * Publishes the service's committed outbox rows now, starting its relay (one
 * per service database and process) on first use. Without K_SINK (unit and
 * integration tests, the bench) rows stay in the outbox for a later relay.
 * `transact` calls this after each commit that enqueued; a function that owns
 * an outbox also calls it at start (the kit's `outbox` option) to send rows a
 * previous process left behind.
 */
export function wakeRelay(service: ServiceDatabase): void {
  if (!config().K_SINK) return;
  const r = relays.get(service);
  if (r) r.kick();
  else relays.set(service, startRelay(db(service)));
}

/** Stops every relay of this process after its current pass (function shutdown, tests). */
export async function stopRelays(): Promise<void> {
  const all = [...relays.values()];
  relays.clear();
  await Promise.all(all.map((r) => r.stop()));
}
