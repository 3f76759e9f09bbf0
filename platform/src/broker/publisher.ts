/**
 * Publishing with publisher confirms. `publish` resolves only once RabbitMQ
 * has taken responsibility for the message (stored on every matching
 * durable queue), so the ingress can answer 202 honestly. While the
 * connection is down it throws BrokerUnavailable at once (the ingress maps
 * it to 503 + Retry-After) instead of queueing in memory.
 */
import type { ChannelModel, ConfirmChannel, Options } from 'amqplib';
import type { CloudEvent } from 'cloudevents';
import type { AmqpConnection } from './connection.ts';
import { toAmqp } from './message.ts';
import { declareExchange, exchangeName } from './topology.ts';

const CONFIRM_TIMEOUT_MS = 8000;

export class BrokerUnavailable extends Error {
  constructor(reason = 'RabbitMQ is unreachable') {
    super(reason);
    this.name = 'BrokerUnavailable';
  }
}

export class Publisher {
  private ch?: ConfirmChannel;

  constructor(
    private readonly amqp: AmqpConnection,
    readonly broker: string,
  ) {}

  /** Opens the confirm channel now and on every reconnect. */
  async start(): Promise<void> {
    await this.amqp.onConnect(async (conn: ChannelModel) => {
      const ch = await conn.createConfirmChannel();
      ch.on('error', () => {});
      ch.on('close', () => {
        if (this.ch === ch) this.ch = undefined;
      });
      await declareExchange(ch, this.broker);
      this.ch = ch;
    });
  }

  get ready(): boolean {
    return this.ch !== undefined && this.amqp.connected;
  }

  /** Publishes raw content to an exchange (or a queue via '') and waits for the confirm. */
  raw(exchange: string, routingKey: string, content: Buffer, options: Options.Publish): Promise<void> {
    const ch = this.ch;
    if (!ch || !this.amqp.connected) return Promise.reject(new BrokerUnavailable());
    return new Promise<void>((resolve, reject) => {
      // A blocked (memory or disk alarm) or wedged RabbitMQ must not hold the caller forever.
      const timer = setTimeout(() => reject(new BrokerUnavailable(`no publisher confirm within ${CONFIRM_TIMEOUT_MS} ms`)), CONFIRM_TIMEOUT_MS);
      try {
        ch.publish(exchange, routingKey, content, options, (err) => {
          clearTimeout(timer);
          if (err) reject(new BrokerUnavailable(`publish not confirmed: ${err.message ?? err}`));
          else resolve();
        });
      } catch (err) {
        clearTimeout(timer);
        reject(new BrokerUnavailable((err as Error).message));
      }
    });
  }

  /** Publishes an event to the broker exchange (routed to every matching trigger). */
  event(ev: CloudEvent<unknown>): Promise<void> {
    const m = toAmqp(ev);
    return this.raw(exchangeName(this.broker), '', m.content, m.options);
  }

  /** Sends a message straight to one queue (retry, dead-letter, replay). */
  toQueue(queue: string, content: Buffer, options: Options.Publish): Promise<void> {
    return this.raw('', queue, content, { persistent: true, ...options });
  }
}
