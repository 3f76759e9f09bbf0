/**
 * The kit every function is written with, on top of faas-js-runtime's
 * Function object. A function file reads as: schema, handler, export.
 *
 *   export default httpFunction({ name: 'plans', GET: { auth: 'optional', query, handle } });
 *
 * It validates query and body with zod (400 naming each field), authenticates
 * the caller, maps every error to the one JSON error shape, and gives the
 * handler a logger that carries the request and trace ids.
 */
import { randomUUID } from 'node:crypto';
import { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { CloudEvent } from 'cloudevents';
import { z, type ZodType } from 'zod';
import { schemaOf, textProblemField, textProblemIn, type EventData, type EventType, type KillbillNotification, type ShortType } from '@saasodoo/events';
import { recordAction, type AuditNote } from './audit-trail.ts';
import { authenticate, type Caller } from './auth/verify.ts';
import { takeClientIp } from './client-ip.ts';
import { HttpError, toErrorResponse, zodFields } from './errors.ts';
import { log as rootLog, type Logger } from './log.ts';
import { stopRelays, wakeRelay } from './outbox.ts';
import type { ServiceDatabase } from './db/index.ts';

export type { Caller };

/** Who may call: nobody checked, a token if present, any customer, or admins only. */
export type AuthMode = 'none' | 'optional' | 'customer' | 'admin';

/**
 * A handler's answer. `body`: JSON-able, a string or Buffer, or a Node Readable (streamed, see streamingBody).
 * `audit`: what the audit trail cannot know from the request (never sent to the caller).
 */
export type HttpResult = { status?: number; body?: unknown; headers?: Record<string, string>; audit?: AuditNote } | undefined;

export type RequestInfo = {
  method: 'GET' | 'POST';
  headers: Record<string, string | string[] | undefined>;
  requestId: string;
  traceparent?: string;
  ip: string;
  log: Logger;
};

type Handler<Q, B, C> = (req: RequestInfo & { query: Q; body: B; caller: C }) => Promise<HttpResult> | HttpResult;

export type Route<Q, B, A extends AuthMode> = {
  auth: A;
  /**
   * For callers that cannot send an Authorization header (Kill Bill signs
   * nothing and posts to a URL): the secret travels in the query string.
   * Checked before anything else; false answers 401 with nothing read.
   */
  queryToken?: (query: Record<string, unknown>) => boolean;
  /** Largest body accepted, in bytes (413 above it); Fastify's 1 MiB limit otherwise. */
  maxBodyBytes?: number;
  query?: ZodType<Q>;
  body?: ZodType<B>;
  handle: Handler<Q, B, A extends 'customer' | 'admin' ? Caller : Caller | undefined>;
  /** false for a POST that changes nothing a person would look for in an audit log (a token refresh). */
  audit?: false;
};

/** A readiness check: resolves when a dependency answers, throws otherwise. */
export type Check = () => Promise<unknown>;

export type FaasContext = {
  method?: string;
  query?: unknown;
  headers?: Record<string, string | string[] | undefined>;
  body?: unknown;
  cloudevent?: unknown;
  rawBody?: string;
  log?: unknown;
};

export type FaasFunction = {
  handle: (context: FaasContext, payload?: unknown) => Promise<unknown>;
  init?: () => Promise<void> | void;
  shutdown?: () => Promise<void> | void;
  readiness?: (req: FastifyRequest, reply: FastifyReply) => Promise<void>;
  liveness?: (req: FastifyRequest, reply: FastifyReply) => Promise<void>;
  /** An HTTP function's routes (auth mode and input schemas), read by the auth matrix and fuzzing suites. */
  routes?: RouteTable;
  /** An event function's event types, checked against events/triggers.yaml by a unit test. */
  handles?: string[];
};

/** Per method: who may call and the zod schemas of its input. */
export type RouteTable = Partial<Record<'GET' | 'POST', { auth: AuthMode; queryToken?: boolean; query?: ZodType; body?: ZodType }>>;

/** Accepts a route with full type inference (an identity function). */
export function route<Q = undefined, B = undefined, A extends AuthMode = AuthMode>(r: Route<Q, B, A>): Route<Q, B, A> {
  return r;
}

const emptyQuery = z.object({}).strict();

/**
 * Keys faas-js-runtime copies from the query string onto its context object,
 * overwriting the real values (`?headers=x` would replace the headers). The
 * host's runner rejects them before they reach the runtime; this list is
 * shared with it.
 */
export const RESERVED_QUERY_KEYS = ['body', 'query', 'headers', 'method', 'httpVersion', 'httpVersionMajor', 'httpVersionMinor', 'contentType', 'rawBody', 'log', 'cloudevent', 'cloudEventResponse'];

function header(headers: RequestInfo['headers'], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Makes a Readable body survive faas-js-runtime 3. Its route handlers are
 * async functions that call `reply.send(payload)` and return undefined
 * (lib/invocation-handler.js doGet/doPost). For a stream, Fastify only
 * setHeader()s and pipes (headers go out with the first chunk), so when that
 * promise settles neither `reply.sent` (writableEnded) nor `res.headersSent`
 * is true, and Fastify's wrapThenable answers `reply.send(undefined)`: an
 * empty response, ended before the first chunk. Flushing the headers the
 * moment Fastify pipes the stream (synchronously inside reply.send) makes
 * headersSent true first, so the pipe owns the response: the body streams
 * with backpressure (memory bounded by the stream buffers, not the body
 * size) and an error mid-stream aborts the connection. `respond` applies it
 * to every handler that returns a Node Readable as `body`.
 */
export function streamingBody<T extends Readable>(body: T): T {
  const pipe = body.pipe.bind(body);
  body.pipe = (<D extends NodeJS.WritableStream>(dest: D, opts?: { end?: boolean }): D => {
    if (dest instanceof ServerResponse && !dest.headersSent) dest.flushHeaders();
    return pipe(dest, opts);
  }) as T['pipe'];
  return body;
}

/** The size of the request body: the larger of Content-Length and the body received (raw when the runtime kept it). */
function bodyBytes(context: FaasContext, headers: RequestInfo['headers']): number {
  const declared = Number(header(headers, 'content-length') ?? 0) || 0;
  const raw =
    typeof context.rawBody === 'string' ? context.rawBody : typeof context.body === 'string' ? context.body : Buffer.isBuffer(context.body) ? context.body : JSON.stringify(context.body ?? null);
  return Math.max(declared, Buffer.byteLength(raw));
}

/** Turns a handler result or an error into faas-js-runtime's `{statusCode, headers, body}`. */
function respond(result: HttpResult) {
  const status = result?.status ?? (result?.body === undefined ? 204 : 200);
  const body = result?.body;
  return {
    statusCode: status,
    headers: { 'content-type': 'application/json; charset=utf-8', ...(result?.headers ?? {}) },
    body: body === undefined ? '' : body instanceof Readable ? streamingBody(body) : body,
  };
}

export function errorResult(err: unknown, requestId: string, log: Logger) {
  const mapped = toErrorResponse(err, requestId);
  // A 503 is an expected outage (the caller retries): a warning without a stack.
  if (mapped.status === 503) log.warn({ requestId, reason: (err as Error)?.message }, 'dependency unavailable');
  else if (mapped.status >= 500) log.error({ err, requestId }, 'request failed');
  return respond({ status: mapped.status, headers: mapped.headers, body: mapped.body });
}

/**
 * Liveness: the process answers. faas-js-runtime's default (overload-protection)
 * calls a Node response method on a Fastify reply and fails under load, which
 * would make Knative restart a healthy but busy function.
 */
async function liveness(_req: FastifyRequest, reply: FastifyReply): Promise<void> {
  reply.header('content-type', 'text/plain; charset=utf-8').send('OK');
}

/** Runs the readiness checks; used for /health/readiness. */
function readinessHandler(checks: Check[]) {
  return async (_req: FastifyRequest, reply: FastifyReply) => {
    const failed: string[] = [];
    await Promise.all(checks.map((c, i) => c().catch((err: Error) => failed.push(`${c.name || `check${i}`}: ${err.message}`))));
    reply.header('content-type', 'application/json; charset=utf-8');
    if (failed.length) reply.code(503).send({ status: 'unready', failed });
    else reply.code(200).send({ status: 'ready' });
  };
}

export type HttpFunctionDef = {
  name: string;
  GET?: Route<any, any, any>;
  POST?: Route<any, any, any>;
  /** Dependencies that must answer for the function to be ready. */
  checks?: Check[];
  /** The service database whose outbox this function writes: its relay starts with the function, to send rows a previous process left. */
  outbox?: ServiceDatabase;
  init?: () => Promise<void> | void;
  shutdown?: () => Promise<void> | void;
};

/** init/shutdown around the function's own: its outbox relay starts first and every relay stops (after a last pass) on shutdown. */
function lifecycle(def: { outbox?: ServiceDatabase; init?: () => Promise<void> | void; shutdown?: () => Promise<void> | void }) {
  return {
    init: async () => {
      if (def.outbox) wakeRelay(def.outbox);
      await def.init?.();
    },
    shutdown: async () => {
      await stopRelays();
      await def.shutdown?.();
    },
  };
}

/** Builds a faas-js-runtime Function object for an HTTP function. */
export function httpFunction(def: HttpFunctionDef): FaasFunction {
  const handle = async (context: FaasContext) => {
    const headers = (context.headers && typeof context.headers === 'object' ? context.headers : {}) as RequestInfo['headers'];
    const requestId = header(headers, 'x-request-id') ?? randomUUID();
    const traceparent = header(headers, 'traceparent');
    const log = rootLog.child({ fn: def.name, requestId, traceId: traceparent?.split('-')[1] });
    try {
      const method = String(context.method ?? 'GET').toUpperCase();
      const r = method === 'GET' ? def.GET : method === 'POST' ? def.POST : undefined;
      if (!r) {
        const allowed = [def.GET && 'GET', def.POST && 'POST'].filter(Boolean).join(', ');
        throw new HttpError(405, 'method_not_allowed', `Use ${allowed}`, undefined, { allow: allowed });
      }
      // Authenticate before validating, so an anonymous caller learns nothing about the input schema.
      if (r.queryToken && !r.queryToken((context.query ?? {}) as Record<string, unknown>)) {
        throw new HttpError(401, 'unauthorized', 'Unknown tenant or wrong token');
      }
      let caller: Caller | undefined;
      const authorization = header(headers, 'authorization');
      if (r.auth === 'customer' || r.auth === 'admin' || (r.auth === 'optional' && authorization)) {
        caller = await authenticate(authorization);
        if (r.auth === 'admin' && caller.role !== 'admin') throw HttpError.forbidden('Admins only');
      }
      const query = await parse(r.query ?? emptyQuery, context.query ?? {}, 'query');
      let body: unknown;
      if (method === 'POST' && r.body) {
        const ct = header(headers, 'content-type') ?? '';
        if (!/^application\/json\b/i.test(ct)) {
          throw new HttpError(415, 'unsupported_media_type', 'Send the body as application/json', { body: 'expected application/json' });
        }
        if (r.maxBodyBytes !== undefined && bodyBytes(context, headers) > r.maxBodyBytes) {
          throw new HttpError(413, 'payload_too_large', `Body over ${r.maxBodyBytes} bytes`, { body: `at most ${r.maxBodyBytes} bytes` });
        }
        body = await parse(r.body, context.body ?? {}, 'body');
      }
      const ip = takeClientIp(headers);
      const audited = method === 'POST' && r.audit !== false;
      let result: HttpResult;
      try {
        result = await r.handle({
          method: method as 'GET' | 'POST',
          headers,
          requestId,
          traceparent,
          ip,
          log,
          query,
          body,
          caller,
        });
      } catch (err) {
        const answer = errorResult(err, requestId, log);
        if (audited) await recordAction({ fn: def.name, caller, body, status: answer.statusCode, requestId, log, outbox: def.outbox });
        return answer;
      }
      const answer = respond(result);
      if (audited) await recordAction({ fn: def.name, caller, body, status: answer.statusCode, requestId, note: result?.audit, log, outbox: def.outbox });
      return answer;
    } catch (err) {
      return errorResult(err, requestId, log);
    }
  };
  const routes: RouteTable = {};
  for (const m of ['GET', 'POST'] as const) {
    const r = def[m];
    if (r) routes[m] = { auth: r.auth, ...(r.queryToken ? { queryToken: true } : {}), query: r.query ?? emptyQuery, body: r.body };
  }
  return {
    handle,
    ...lifecycle(def),
    readiness: readinessHandler(def.checks ?? []),
    liveness,
    routes,
  };
}

/**
 * Validates `value` with `schema`; a failure is a 400 naming each field under
 * `where`. Every string of the result is also held to the text rule
 * (events/text.ts), whatever its schema says: a NUL in a field declared as a
 * plain z.string() is a 400 naming that field, never a database error.
 */
export async function parse<T>(schema: ZodType<T>, value: unknown, where: 'query' | 'body'): Promise<T> {
  // Async: a refinement may load what it checks against on first use (the password policy's dictionaries).
  const r = await schema.safeParseAsync(value);
  if (!r.success) {
    const fields = zodFields(r.error, where);
    throw HttpError.badRequest(`Invalid ${Object.keys(fields).join(', ')}`, fields);
  }
  const bad = textProblemIn(r.data);
  if (bad) {
    const fields = textProblemField(bad, where);
    throw HttpError.badRequest(`Invalid ${Object.keys(fields).join(', ')}`, fields);
  }
  return r.data;
}

/** A received CloudEvent, its data validated against the catalogue. */
export type ReceivedEvent<D = unknown> = {
  id: string;
  type: string;
  source: string;
  subject?: string;
  time?: string;
  data: D;
  traceparent?: string;
  extensions: Record<string, unknown>;
  log: Logger;
};

/** What an event handler may answer: nothing (done), or an event to publish as the reply. */
export type EventResult = void | undefined | CloudEvent<unknown>;

/** A full event type a function may subscribe to: one of the catalogue's, or any of Kill Bill's. */
export type HandledType = EventType | `org.killbill.${string}`;

/** The data an event of full type `T` carries, as the catalogue validates it. */
export type DataOf<T extends string> = T extends `com.saasodoo.${infer S}` ? (S extends ShortType ? EventData<S> : never) : T extends `org.killbill.${string}` ? KillbillNotification : never;

/** Handlers by full event type, each typed with the data the catalogue gives that type. */
export type EventHandlers = { [T in HandledType]?: (event: ReceivedEvent<DataOf<T>>) => Promise<EventResult> | EventResult };

/**
 * What a command handler receives: the event's data and what to record as
 * its cause (event id and type, trace). The one shape every instance command
 * handler takes, built from a received event by `command`.
 */
export type Command<D> = {
  eventId: string;
  eventType: string;
  data: D;
  traceparent?: string;
  log: Logger;
};

/** Adapts a command handler to an event handler (the one event-to-command adapter). */
export function command<D>(handler: (cmd: Command<D>) => Promise<unknown>): (e: ReceivedEvent<D>) => Promise<void> {
  return async (e) => {
    await handler({ eventId: e.id, eventType: e.type, data: e.data, traceparent: e.traceparent, log: e.log });
  };
}

export type EventFunctionDef = {
  name: string;
  /** Handlers by full event type (`com.saasodoo.instance.provision`, `org.killbill.*` types...). */
  on: EventHandlers;
  checks?: Check[];
  /** As HttpFunctionDef.outbox. */
  outbox?: ServiceDatabase;
  init?: () => Promise<void> | void;
  shutdown?: () => Promise<void> | void;
};

/**
 * Builds a faas-js-runtime Function object for a CloudEvent function. Data
 * that does not match the catalogue answers 400 (the broker dead-letters it
 * at once); a thrown error answers 5xx so the broker retries with backoff.
 */
export function eventFunction(def: EventFunctionDef): FaasFunction {
  const handle = async (context: FaasContext) => {
    const ce = context.cloudevent as CloudEvent<unknown> | undefined;
    const requestId = ce?.id ?? randomUUID();
    const traceparent = typeof ce?.traceparent === 'string' ? ce.traceparent : undefined;
    const log = rootLog.child({ fn: def.name, eventId: ce?.id, eventType: ce?.type, traceId: traceparent?.split('-')[1] });
    try {
      if (!ce || typeof ce.type !== 'string') {
        throw new HttpError(400, 'not_a_cloudevent', 'This function accepts CloudEvents only (binary or structured mode)');
      }
      const handler = (def.on as Record<string, ((e: ReceivedEvent<unknown>) => Promise<EventResult> | EventResult) | undefined>)[ce.type];
      if (!handler) throw new HttpError(400, 'unsupported_type', `${def.name} does not handle ${ce.type}`, { type: 'not handled here' });
      const schema = schemaOf(ce.type);
      let data: unknown = ce.data;
      if (typeof data === 'string' && /json/.test(String(ce.datacontenttype ?? 'application/json'))) {
        try {
          data = JSON.parse(data);
        } catch {
          throw HttpError.badRequest('Event data is not valid JSON', { data: 'invalid JSON' });
        }
      }
      if (schema) {
        const r = schema.safeParse(data);
        if (!r.success) throw HttpError.badRequest(`Invalid data for ${ce.type}`, zodFields(r.error, 'data'));
        data = r.data;
      }
      const bad = textProblemIn(data);
      if (bad) throw HttpError.badRequest(`Invalid data for ${ce.type}`, textProblemField(bad, 'data'));
      const { id, type, source, subject, time, specversion, datacontenttype, dataschema, data: _d, data_base64, ...extensions } = ce as unknown as Record<string, unknown>;
      const result = await handler({
        id: String(id),
        type: String(type),
        source: String(source),
        subject: subject as string | undefined,
        time: time as string | undefined,
        data,
        traceparent,
        extensions,
        log,
      });
      if (result instanceof CloudEvent) return result;
      return { statusCode: 204, headers: {}, body: '' };
    } catch (err) {
      return errorResult(err, requestId, log);
    }
  };
  return { handle, ...lifecycle(def), readiness: readinessHandler(def.checks ?? []), liveness, handles: Object.keys(def.on) };
}
