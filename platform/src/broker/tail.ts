/**
 * A live view of broker traffic for operators (`platform events tail`): a
 * temporary exclusive queue bound to the broker exchange (optionally on one
 * type) receives a copy of every event published from now on. Data passes
 * through the log redactor, so passwords and tokens never reach a terminal.
 */
import type { ChannelModel } from 'amqplib';
import { redact } from '../log.ts';
import { eventHeaders, fromAmqp } from './message.ts';
import { declareExchange, exchangeName } from './topology.ts';

export type TailedEvent = { id: string; type: string; source: string; subject?: string; time?: string; traceparent?: string; extensions: Record<string, string>; data: unknown };

const CORE = new Set(['id', 'type', 'source', 'subject', 'time', 'specversion', 'traceparent', 'dataschema']);

/** Calls `onEvent` for every event published to the broker until the returned stop() is called. */
export async function tailEvents(conn: ChannelModel, broker: string, onEvent: (e: TailedEvent) => void, o: { type?: string } = {}): Promise<() => Promise<void>> {
  const ch = await conn.createChannel();
  await declareExchange(ch, broker);
  const { queue } = await ch.assertQueue('', { exclusive: true, autoDelete: true, durable: false });
  await ch.bindQueue(queue, exchangeName(broker), '', { 'x-match': 'all', ...(o.type ? { type: o.type } : {}) });
  await ch.consume(
    queue,
    (m) => {
      if (!m) return;
      const attrs = eventHeaders(m);
      const extensions = Object.fromEntries(Object.entries(attrs).filter(([k]) => !CORE.has(k)));
      onEvent({
        id: attrs.id,
        type: attrs.type,
        source: attrs.source,
        subject: attrs.subject,
        time: attrs.time,
        traceparent: attrs.traceparent,
        extensions: redact(extensions) as Record<string, string>,
        data: redact(fromAmqp(m).data),
      });
    },
    { noAck: true },
  );
  return async () => {
    await ch.close().catch(() => {});
  };
}
