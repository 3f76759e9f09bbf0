/**
 * The broker ingress: the URL every function has as K_SINK. It accepts one
 * CloudEvent per POST (binary or structured mode), validates it against the
 * catalogue, publishes it with a publisher confirm and answers 202 only
 * after the confirm. While RabbitMQ is unreachable it answers 503 with
 * Retry-After: an event is never acknowledged unless it is stored.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CloudEvent } from 'cloudevents';
import { answerClientErrorsAsJson, HttpError, toErrorResponse, writeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { traceIdOf, withTraceparent } from './message.ts';
import { BrokerUnavailable, type Publisher } from './publisher.ts';
import { parseIncoming } from './validate.ts';

const MAX_BODY = 1024 * 1024;

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new HttpError(413, 'too_large', 'An event may be at most 1 MiB', { body: 'too large' }));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { ...(text ? { 'content-type': 'application/json; charset=utf-8' } : {}), ...headers });
  res.end(text);
}

export type IngressOptions = {
  port: number;
  host?: string;
  publisher: Publisher;
  log: Logger;
  /** Called after an event was stored (metrics, tests). */
  onAccepted?: (ev: CloudEvent<unknown>) => void;
};

/** Starts the ingress HTTP server; resolves once listening. */
export async function startIngress(o: IngressOptions): Promise<http.Server> {
  const server = http.createServer(async (req, res) => {
    if (req.method === 'GET' && (req.url === '/health' || req.url?.startsWith('/health/'))) {
      send(res, o.publisher.ready ? 200 : 503, { status: o.publisher.ready ? 'ready' : 'rabbitmq unreachable' });
      return;
    }
    if (req.method !== 'POST') {
      writeError(res, new HttpError(405, 'method_not_allowed', 'POST one CloudEvent', undefined, { allow: 'POST' }));
      return;
    }
    let ev: CloudEvent<unknown> | undefined;
    try {
      const body = await readBody(req);
      const parsed = parseIncoming(req.headers, body);
      const own = typeof parsed.traceparent === 'string' ? undefined : req.headers.traceparent;
      ev = withTraceparent(parsed, Array.isArray(own) ? own[0] : own);
      await o.publisher.event(ev);
      o.log.debug({ eventId: ev.id, type: ev.type, traceId: traceIdOf(ev.traceparent) }, 'event accepted');
      o.onAccepted?.(ev);
      send(res, 202, undefined);
    } catch (err) {
      if (err instanceof BrokerUnavailable) {
        o.log.debug({ eventId: ev?.id, type: ev?.type, traceId: traceIdOf(ev?.traceparent), err: err.message }, 'event refused: RabbitMQ unavailable');
        writeError(res, HttpError.unavailable('The event broker', 2));
        return;
      }
      const mapped = toErrorResponse(err);
      if (mapped.status >= 500) o.log.error({ err, eventId: ev?.id, traceId: traceIdOf(ev?.traceparent) }, 'ingress failed');
      else o.log.debug({ status: mapped.status, fields: mapped.body.error.fields }, 'event rejected');
      writeError(res, err);
    }
  });
  server.keepAliveTimeout = 5000;
  answerClientErrorsAsJson(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host ?? '127.0.0.1', () => resolve());
  });
  return server;
}

/** The port a server listens on (tests use port 0). */
export function portOf(server: http.Server): number {
  return (server.address() as AddressInfo).port;
}
