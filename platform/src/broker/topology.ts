/**
 * Names and declarations of the broker's RabbitMQ objects. One durable
 * headers exchange per broker (like Knative's RabbitMQ broker); per trigger a
 * durable queue bound by its filter (`x-match: all`, so every listed
 * attribute must match exactly), a wait queue where a message sits until its
 * retry is due (per-message TTL, then dead-lettered to the `due` queue: a
 * retry survives a restart of the host), and a dead-letter queue.
 */
import type { Channel } from 'amqplib';
import type { Trigger } from '@saasodoo/events/triggers';

export type QueueNames = { main: string; wait: string; due: string; dlq: string };

/** The exchange every event is published to. */
export function exchangeName(broker: string): string {
  return `${broker}.events`;
}

/** The queues of one trigger. */
export function queueNames(broker: string, trigger: string): QueueNames {
  const base = `${broker}.t.${trigger}`;
  return { main: base, wait: `${base}.wait`, due: `${base}.due`, dlq: `${base}.dlq` };
}

/** Declares the exchange (idempotent). */
export async function declareExchange(ch: Channel, broker: string): Promise<void> {
  await ch.assertExchange(exchangeName(broker), 'headers', { durable: true });
}

/** Declares a trigger's queues and its filter binding (idempotent). */
export async function declareTrigger(ch: Channel, broker: string, t: Pick<Trigger, 'name' | 'filter'>): Promise<QueueNames> {
  const q = queueNames(broker, t.name);
  await declareExchange(ch, broker);
  await ch.assertQueue(q.main, { durable: true });
  await ch.assertQueue(q.due, { durable: true });
  await ch.assertQueue(q.dlq, { durable: true });
  await ch.assertQueue(q.wait, { durable: true, deadLetterExchange: '', deadLetterRoutingKey: q.due });
  await ch.bindQueue(q.main, exchangeName(broker), '', { 'x-match': 'all', ...t.filter.attributes, 'x-trigger': t.name });
  return q;
}
