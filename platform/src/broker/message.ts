/**
 * CloudEvent <-> AMQP message. Like Knative's RabbitMQ broker, every
 * attribute (extensions included) becomes an AMQP header under its own name,
 * so the headers exchange can route on `type` or any other attribute; the
 * data is the message body and `datacontenttype` its content type. Headers
 * starting with `x-` are the broker's own bookkeeping (attempts, why a
 * message was dead-lettered) and never part of the event.
 */
import { types } from 'node:util';
import { CloudEvent } from 'cloudevents';
import type { Options } from 'amqplib';
import { childTraceparent } from '../emit.ts';

export type AmqpMessage = { content: Buffer; options: Options.Publish };

/** A message as received from RabbitMQ (the parts we read). */
export type ReceivedAmqp = { content: Buffer; properties: { headers?: Record<string, unknown>; contentType?: string } };

const DEFAULT_TYPE = 'application/json';

function bodyOf(data: unknown): Buffer {
  if (data === undefined || data === null) return Buffer.alloc(0);
  if (Buffer.isBuffer(data)) return data;
  if (types.isTypedArray(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  return Buffer.from(JSON.stringify(data), 'utf8');
}

/** Attributes of an event (without data) as plain strings. */
export function attributesOf(ev: CloudEvent<unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(ev.toJSON() as Record<string, unknown>)) {
    if (k === 'data' || k === 'data_base64' || k === 'datacontenttype' || v === undefined || v === null) continue;
    out[k] = typeof v === 'string' ? v : JSON.stringify(v);
  }
  return out;
}

/** Encodes an event for publishing (persistent, id as message id). */
export function toAmqp(ev: CloudEvent<unknown>, extraHeaders: Record<string, unknown> = {}): AmqpMessage {
  return {
    content: bodyOf(ev.data),
    options: {
      persistent: true,
      contentType: ev.datacontenttype ?? DEFAULT_TYPE,
      messageId: ev.id,
      timestamp: Math.floor(Date.now() / 1000),
      headers: { ...attributesOf(ev), ...extraHeaders },
    },
  };
}

/** The CloudEvent attributes carried by a received message (bookkeeping headers left out). */
export function eventHeaders(msg: ReceivedAmqp): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(msg.properties.headers ?? {})) {
    if (k.startsWith('x-') || v === undefined || v === null) continue;
    out[k] = Buffer.isBuffer(v) ? v.toString('utf8') : String(v);
  }
  return out;
}

/** The broker's bookkeeping headers of a received message. */
export function brokerHeaders(msg: ReceivedAmqp): Record<string, unknown> {
  return Object.fromEntries(Object.entries(msg.properties.headers ?? {}).filter(([k]) => k.startsWith('x-')));
}

/** Percent-encodes what the HTTP binding says a ce- header value must not carry raw. */
function headerValue(v: string): string {
  return v.replace(/[\s"%]|[^\x20-\x7e]/gu, (c) => encodeURIComponent(c));
}

/** HTTP request headers (binary mode) and body to deliver a received message to a subscriber. */
export function toHttpBinary(msg: ReceivedAmqp): { headers: Record<string, string>; body: Buffer } {
  const headers: Record<string, string> = { 'content-type': msg.properties.contentType ?? DEFAULT_TYPE };
  for (const [k, v] of Object.entries(eventHeaders(msg))) headers[`ce-${k}`] = headerValue(v);
  return { headers, body: msg.content };
}

/** Rebuilds the CloudEvent of a received message (data parsed when JSON). */
export function fromAmqp(msg: ReceivedAmqp): CloudEvent<unknown> {
  const attrs = eventHeaders(msg);
  const contentType = msg.properties.contentType ?? DEFAULT_TYPE;
  let data: unknown = msg.content.length ? msg.content.toString('utf8') : undefined;
  if (typeof data === 'string' && /json/i.test(contentType)) {
    try {
      data = JSON.parse(data);
    } catch {
      /* keep the text */
    }
  }
  return new CloudEvent({ ...attrs, datacontenttype: contentType, data } as never, false);
}

/** W3C trace id of a traceparent, for log lines. */
export function traceIdOf(traceparent: unknown): string | undefined {
  return typeof traceparent === 'string' ? /^00-([0-9a-f]{32})-/.exec(traceparent)?.[1] : undefined;
}

/**
 * Makes sure an event carries a traceparent: kept when present, otherwise a
 * child of `cause` (the HTTP request's or the causing event's), or a new trace.
 */
export function withTraceparent(ev: CloudEvent<unknown>, cause?: string): CloudEvent<unknown> {
  const own = typeof ev.traceparent === 'string' ? ev.traceparent : undefined;
  if (own && traceIdOf(own)) {
    const causeId = traceIdOf(cause);
    if (!causeId || traceIdOf(own) === causeId) return ev;
  }
  return ev.cloneWith({ traceparent: childTraceparent(cause) }, false);
}
