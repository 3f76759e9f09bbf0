/**
 * Reading and replaying dead letters, shared by the `platform dlq` CLI and
 * the admin `dead-letters` function. Both talk to RabbitMQ directly: listing
 * takes messages without acking them and closes the channel, which puts them
 * back in order; replay sends the chosen ones to the trigger's own queue
 * (only that subscriber sees them again) with a fresh attempt count, and acks
 * them only once the copy is confirmed.
 */
import amqp, { type ChannelModel, type GetMessage } from 'amqplib';
import { redact, scrubString } from '../log.ts';
import { brokerHeaders, eventHeaders, fromAmqp } from './message.ts';
import { queueNames } from './topology.ts';

export type DeadLetter = {
  id: string;
  type: string;
  source: string;
  subject?: string;
  time?: string;
  trigger: string;
  /** HTTP status of the last attempt (0 = no answer). */
  status: number;
  reason: string;
  /** The subscriber's answer body (truncated, secrets scrubbed). */
  body: string;
  attempts: number;
  deadAt?: string;
  /** Event data with secret-looking fields redacted. */
  data: unknown;
};

/** Opens a short-lived connection for one operation. */
export async function withAmqp<T>(url: string, fn: (conn: ChannelModel) => Promise<T>): Promise<T> {
  const conn = await amqp.connect(url, { timeout: 5000, clientProperties: { connection_name: 'dlq-tool' } });
  conn.on('error', () => {});
  try {
    return await fn(conn);
  } finally {
    await conn.close().catch(() => {});
  }
}

function describe(trigger: string, m: GetMessage): DeadLetter {
  const attrs = eventHeaders(m);
  const x = brokerHeaders(m);
  const ev = fromAmqp(m);
  return {
    id: attrs.id ?? m.properties.messageId ?? '',
    type: attrs.type ?? '',
    source: attrs.source ?? '',
    subject: attrs.subject,
    time: attrs.time,
    trigger,
    status: Number(x['x-dead-status'] ?? 0),
    reason: scrubString(String(x['x-dead-reason'] ?? '')),
    body: scrubString(String(x['x-dead-body'] ?? '')),
    attempts: Number(x['x-attempt'] ?? 0),
    deadAt: x['x-dead-at'] === undefined ? undefined : String(x['x-dead-at']),
    data: redact(ev.data),
  };
}

/**
 * Takes every message of `queue` without acking (they go back when the
 * channel closes). A queue that does not exist yet (trigger never started)
 * holds nothing.
 */
async function takeAll(conn: ChannelModel, queue: string, limit: number) {
  const probe = await conn.createChannel();
  probe.on('error', () => {});
  const exists = await probe.checkQueue(queue).then(
    () => true,
    () => false,
  );
  if (exists) await probe.close().catch(() => {});
  const ch = await conn.createConfirmChannel();
  ch.on('error', () => {});
  if (!exists) return { ch, msgs: [] as GetMessage[] };
  const msgs: GetMessage[] = [];
  while (msgs.length < limit) {
    const m = await ch.get(queue, { noAck: false });
    if (!m) break;
    msgs.push(m);
  }
  return { ch, msgs };
}

/** Dead letters of one trigger, oldest first (nothing is removed). */
export async function listDeadLetters(conn: ChannelModel, broker: string, trigger: string, limit = 500): Promise<DeadLetter[]> {
  const { ch, msgs } = await takeAll(conn, queueNames(broker, trigger).dlq, limit);
  const out = msgs.map((m) => describe(trigger, m));
  await ch.close().catch(() => {});
  return out;
}

/**
 * Sends dead letters of `trigger` back to its subscriber: all of them, or
 * only the one with event id `id`. Returns the ids replayed.
 */
export async function replayDeadLetters(conn: ChannelModel, broker: string, trigger: string, id?: string): Promise<string[]> {
  const q = queueNames(broker, trigger);
  const { ch, msgs } = await takeAll(conn, q.dlq, 10_000);
  const chosen = msgs.filter((m) => id === undefined || eventHeaders(m).id === id);
  try {
    for (const m of chosen) {
      ch.sendToQueue(q.main, m.content, {
        persistent: true,
        contentType: m.properties.contentType,
        messageId: m.properties.messageId,
        headers: { ...eventHeaders(m), 'x-replayed-at': new Date().toISOString() },
      });
    }
    await ch.waitForConfirms();
    for (const m of chosen) ch.ack(m);
    return chosen.map((m) => eventHeaders(m).id ?? '');
  } finally {
    await ch.close().catch(() => {});
  }
}
