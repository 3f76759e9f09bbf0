/**
 * Transactional outbox. A function writes its state change and the events it
 * causes in one transaction (`enqueue` inside `db.tx`); the relay publishes
 * unsent rows to K_SINK afterwards. A crash between commit and publish loses
 * nothing: the next relay pass sends the rows, with the same event ids.
 */
import { CloudEvent } from 'cloudevents';
import { PREFIX, type EventData, type ShortType } from '@saasodoo/events';
import type { Db, Tx } from './db/index.ts';
import { buildEvent, send, type EmitOptions } from './emit.ts';
import { log } from './log.ts';

/** Writes an event into the outbox inside the caller's transaction; returns its id. */
export async function enqueue<T extends ShortType>(t: Tx, type: T, data: EventData<T>, o: EmitOptions = {}): Promise<string> {
  return enqueueRaw(t, `${PREFIX}${type}`, data, o);
}

/** Same as enqueue for any catalogue type (org.killbill.* included). */
export async function enqueueRaw(t: Tx, type: string, data: unknown, o: EmitOptions = {}): Promise<string> {
  const ev = buildEvent(type, data, o);
  const { id, source, subject, data: payload, specversion, datacontenttype, time, ...rest } = ev.toJSON() as Record<string, unknown>;
  delete rest.type;
  await t.none(
    `INSERT INTO outbox (id, type, source, subject, data, extensions) VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (id) DO NOTHING`,
    [id, type, source, subject ?? null, JSON.stringify(payload), JSON.stringify(rest)],
  );
  return id as string;
}

type Row = { id: string; type: string; source: string; subject: string | null; data: unknown; extensions: Record<string, string>; created_at: Date };

/**
 * Publishes pending outbox rows, oldest first. Rows are locked with SKIP
 * LOCKED so several replicas can relay at once without sending twice in
 * parallel; a row is marked sent only after the broker accepted it.
 */
export async function relayOnce(db: Db, batch = 100): Promise<number> {
  return db.tx(async (t) => {
    const rows = await t.manyOrNone<Row>(
      `SELECT * FROM outbox WHERE published_at IS NULL ORDER BY created_at, id LIMIT $1 FOR UPDATE SKIP LOCKED`,
      [batch],
    );
    let sent = 0;
    for (const r of rows) {
      const ev = new CloudEvent({
        specversion: '1.0', id: r.id, type: r.type, source: r.source, subject: r.subject ?? undefined,
        time: r.created_at.toISOString(), datacontenttype: 'application/json', data: r.data, ...r.extensions,
      });
      await send(ev);
      await t.none('UPDATE outbox SET published_at = now() WHERE id = $1', [r.id]);
      sent++;
    }
    return sent;
  });
}

export type Relay = { kick(): void; stop(): Promise<void> };

/**
 * Runs the relay: on every `kick()` (call it after a commit) and every
 * `intervalMs` as a safety net. Failures are logged and retried next pass.
 */
export function startRelay(db: Db, intervalMs = 1000): Relay {
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
          while ((await relayOnce(db)) > 0 && !stopped) {
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
