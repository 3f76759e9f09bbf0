/**
 * The dispatcher of one trigger: consumes its queue and delivers each event
 * to the subscriber, acking only after the outcome is safe in RabbitMQ.
 *
 * - done: ack (after publishing the reply event, if any);
 * - retryable failure: the message is copied, with its attempt count, to the
 *   trigger's wait queue with a per-message TTL equal to the backoff; when it
 *   expires RabbitMQ moves it to the `due` queue, which this dispatcher also
 *   consumes. Waiting retries therefore live in RabbitMQ, not in memory, and
 *   survive a restart of the host;
 * - retries exhausted or a non-retryable answer: copied to the dead-letter
 *   queue with the status, reason and answer body in `x-dead-*` headers.
 *
 * With parallelism 1 (prefetch 1) order is kept: while a message waits for
 * its retry the main queue is not consumed, like Knative's dispatcher that
 * blocks during backoff.
 */
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { backoffMs, timeoutMs, type Trigger } from '@saasodoo/events/triggers';
import type { Logger } from '../log.ts';
import type { AmqpConnection } from './connection.ts';
import { deliver, type Outcome } from './deliver.ts';
import { brokerHeaders, eventHeaders, traceIdOf, withTraceparent } from './message.ts';
import type { Publisher } from './publisher.ts';
import { declareTrigger, type QueueNames } from './topology.ts';

/** Where a subscriber function answers: the host starts a scaled-to-zero function on demand. */
export type SubscriberResolver = (fn: string) => Promise<string>;

export type DispatcherOptions = {
  trigger: Trigger;
  broker: string;
  amqp: AmqpConnection;
  publisher: Publisher;
  resolve: SubscriberResolver;
  log: Logger;
};

const RESUME_POLL_MS = 500;

export class Dispatcher {
  private ch?: Channel;
  private mainTag?: string;
  private readonly inflight = new Set<Promise<void>>();
  private dueInflight = 0;
  private resumeTimer?: NodeJS.Timeout;
  private resuming = false;
  private stopped = false;
  private readonly q: QueueNames;
  private readonly log: Logger;

  constructor(private readonly o: DispatcherOptions) {
    this.log = o.log.child({ trigger: o.trigger.name });
    this.q = { main: '', wait: '', due: '', dlq: '' };
  }

  get queues(): QueueNames {
    return this.q;
  }

  private get ordered(): boolean {
    return this.o.trigger.parallelism === 1;
  }

  /** Declares the queues and consumes them now and after every reconnect. */
  async start(): Promise<void> {
    await this.o.amqp.onConnect((conn) => this.attach(conn));
  }

  private async attach(conn: ChannelModel): Promise<void> {
    if (this.stopped) return;
    const ch = await conn.createChannel();
    ch.on('error', () => {});
    ch.on('close', () => {
      if (this.ch === ch) {
        this.ch = undefined;
        this.mainTag = undefined;
        this.dueInflight = 0;
      }
    });
    Object.assign(this.q, await declareTrigger(ch, this.o.broker, this.o.trigger));
    await ch.prefetch(this.o.trigger.parallelism, true);
    this.ch = ch;
    this.mainTag = undefined;
    await ch.consume(this.q.due, (m) => m && this.track(ch, m, true), { noAck: false });
    if (!this.ordered || (await this.parkedCount(ch)) === 0) await this.consumeMain(ch);
    else this.scheduleResume();
  }

  private async consumeMain(ch: Channel): Promise<void> {
    if (this.mainTag || this.stopped || this.ch !== ch) return;
    const { consumerTag } = await ch.consume(this.q.main, (m) => m && this.track(ch, m, false), { noAck: false });
    this.mainTag = consumerTag;
  }

  private async pauseMain(ch: Channel): Promise<void> {
    const tag = this.mainTag;
    this.mainTag = undefined;
    if (tag) await ch.cancel(tag).catch(() => {});
  }

  private async parkedCount(ch: Channel): Promise<number> {
    const [w, d] = await Promise.all([ch.checkQueue(this.q.wait), ch.checkQueue(this.q.due)]);
    return w.messageCount + d.messageCount + this.dueInflight;
  }

  /** Resumes the main queue once no message of this trigger waits for a retry (parallelism 1). */
  private async maybeResume(): Promise<void> {
    const ch = this.ch;
    if (!ch || this.mainTag || this.stopped || this.resuming) return;
    this.resuming = true;
    try {
      if ((await this.parkedCount(ch)) === 0) await this.consumeMain(ch);
    } catch {
      /* channel closed: attach() decides again on reconnect */
    } finally {
      this.resuming = false;
    }
    if (!this.mainTag) this.scheduleResume();
  }

  private scheduleResume(): void {
    if (this.resumeTimer || this.stopped) return;
    this.resumeTimer = setTimeout(() => {
      this.resumeTimer = undefined;
      void this.maybeResume();
    }, RESUME_POLL_MS);
    this.resumeTimer.unref();
  }

  private track(ch: Channel, m: ConsumeMessage, fromDue: boolean): void {
    if (fromDue) this.dueInflight++;
    const p = this.handle(ch, m, fromDue)
      .catch((err) => this.log.error({ err }, 'dispatch failed'))
      .finally(() => {
        this.inflight.delete(p);
        if (fromDue && this.ch === ch) this.dueInflight--;
        if (fromDue && this.ordered) void this.maybeResume();
      });
    this.inflight.add(p);
  }

  private async handle(ch: Channel, m: ConsumeMessage, fromDue: boolean): Promise<void> {
    const t = this.o.trigger;
    const attrs = eventHeaders(m);
    const attempt = Number(brokerHeaders(m)['x-attempt'] ?? 0) + 1;
    const log = this.log.child({ eventId: attrs.id, type: attrs.type, traceId: traceIdOf(attrs.traceparent), attempt });
    let outcome: Outcome;
    try {
      const url = await this.o.resolve(t.subscriber);
      outcome = await deliver(url, m, timeoutMs(t));
    } catch (err) {
      outcome = { kind: 'retry', status: 0, reason: `subscriber could not start: ${(err as Error).message}`, body: '' };
    }
    try {
      if (outcome.kind === 'done') {
        if (outcome.reply) {
          const reply = withTraceparent(outcome.reply, attrs.traceparent);
          await this.o.publisher.event(reply);
          log.info({ replyId: reply.id, replyType: reply.type }, 'reply published');
        }
        log.debug({ status: outcome.status }, 'delivered');
        ch.ack(m);
        return;
      }
      if (outcome.kind === 'retry' && attempt <= t.delivery.retry) {
        const delay = backoffMs(t, attempt);
        if (this.ordered && !fromDue) await this.pauseMain(ch);
        await this.o.publisher.toQueue(this.q.wait, m.content, {
          contentType: m.properties.contentType,
          messageId: m.properties.messageId,
          expiration: String(Math.max(1, Math.round(delay))),
          headers: { ...attrs, 'x-attempt': attempt, 'x-last-status': outcome.status, 'x-last-reason': outcome.reason },
        });
        log.warn({ status: outcome.status, reason: outcome.reason, retryInMs: delay }, 'delivery failed; retry scheduled');
        ch.ack(m);
        return;
      }
      const reason = outcome.kind === 'retry' ? `retries exhausted after ${attempt} attempts: ${outcome.reason}` : outcome.reason;
      await this.o.publisher.toQueue(this.q.dlq, m.content, {
        contentType: m.properties.contentType,
        messageId: m.properties.messageId,
        headers: {
          ...attrs,
          'x-attempt': attempt,
          'x-dead-trigger': t.name,
          'x-dead-status': outcome.status,
          'x-dead-reason': reason,
          'x-dead-body': outcome.body,
          'x-dead-at': new Date().toISOString(),
        },
      });
      log.warn({ status: outcome.status, reason }, 'event dead-lettered');
      ch.ack(m);
    } catch (err) {
      // Could not store the outcome (RabbitMQ going away): leave the message unacked so it is redelivered.
      log.warn({ err: (err as Error).message }, 'could not record delivery outcome; message will be redelivered');
      setTimeout(() => {
        try {
          ch.nack(m, false, true);
        } catch {
          /* channel already closed: RabbitMQ requeued it */
        }
      }, 1000).unref();
    }
  }

  /** Stops consuming and waits for deliveries in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.resumeTimer) clearTimeout(this.resumeTimer);
    const ch = this.ch;
    this.ch = undefined;
    if (ch && this.mainTag) await ch.cancel(this.mainTag).catch(() => {});
    await Promise.allSettled([...this.inflight]);
    await ch?.close().catch(() => {});
  }
}
