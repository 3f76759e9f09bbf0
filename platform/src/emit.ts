/**
 * Building and sending CloudEvents for the outbox relay (platform/outbox.ts,
 * the one way events leave): `buildEvent` validates the data against the
 * catalogue; `send` POSTs the event in binary mode to K_SINK (the broker
 * ingress), which answers 202 only once RabbitMQ confirmed it.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { CloudEvent, HTTP } from 'cloudevents';
import { PREFIX, catalog, schemaOf, textProblemField, textProblemIn, type ShortType } from '@saasodoo/events';
import { config } from './config.ts';
import { HttpError, zodFields } from './errors.ts';

export type EmitOptions = {
  subject?: string;
  /** Stable id: pass one when the same logical event may be emitted again. */
  id?: string;
  /** W3C trace context of the cause; a new trace starts when absent. */
  traceparent?: string;
  source?: string;
  extensions?: Record<string, string>;
};

/** A child span of `parent` (same trace id), or a new trace. */
export function childTraceparent(parent?: string): string {
  const traceId = parent?.match(/^00-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/)?.[1] ?? randomBytes(16).toString('hex');
  return `00-${traceId}-${randomBytes(8).toString('hex')}-01`;
}

/** Builds a validated CloudEvent; throws 400-mapped HttpError on bad data. */
export function buildEvent(type: string, data: unknown, o: EmitOptions = {}): CloudEvent<unknown> {
  const schema = schemaOf(type);
  if (!schema) throw HttpError.badRequest(`Unknown event type ${type}`, { type: 'not in the catalogue' });
  const parsed = schema.safeParse(data);
  if (!parsed.success) throw HttpError.badRequest(`Invalid data for ${type}`, zodFields(parsed.error, 'data'));
  // The ingress refuses it anyway: failing here keeps such an event out of the outbox, where it would block the relay.
  const bad = textProblemIn(parsed.data);
  if (bad) throw HttpError.badRequest(`Invalid data for ${type}`, textProblemField(bad, 'data'));
  const short = type.startsWith(PREFIX) ? (type.slice(PREFIX.length) as ShortType) : undefined;
  return new CloudEvent({
    specversion: '1.0',
    id: o.id ?? randomUUID(),
    type,
    source: o.source ?? (short ? catalog[short].source : '/saasodoo/platform'),
    subject: o.subject,
    time: new Date().toISOString(),
    datacontenttype: 'application/json',
    data: parsed.data,
    traceparent: childTraceparent(o.traceparent),
    ...(o.extensions ?? {}),
  });
}

/** POSTs a CloudEvent in binary mode to `sink`; throws unless it was accepted (2xx). */
export async function send(event: CloudEvent<unknown>, sink = config().K_SINK): Promise<void> {
  if (!sink) throw new Error('K_SINK is not set: nowhere to send events');
  const message = HTTP.binary(event);
  let res: Response;
  try {
    res = await fetch(sink, {
      method: 'POST',
      headers: message.headers as Record<string, string>,
      body: message.body as string,
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    throw HttpError.unavailable('The event broker');
  }
  if (!res.ok) {
    const text = await res.text().catch(() => '');
    if (res.status >= 500) throw HttpError.unavailable('The event broker');
    throw new Error(`broker refused ${event.type}: ${res.status} ${text.slice(0, 300)}`);
  }
}
