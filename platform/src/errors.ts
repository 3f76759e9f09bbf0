/**
 * One error type for every HTTP answer that is not a success. Code anywhere
 * throws HttpError; only the edge (platform/fn, the gateway) turns it into a
 * response, so the JSON shape `{"error":{"code","message","fields"}}` is the
 * same everywhere.
 */
import { randomUUID } from 'node:crypto';
import type { Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { ZodError } from 'zod';

export type ErrorBody = {
  error: { code: string; message: string; fields?: Record<string, string>; requestId?: string };
};

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly fields?: Record<string, string>,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }

  static badRequest(message: string, fields?: Record<string, string>) {
    return new HttpError(400, 'bad_request', message, fields);
  }
  static unauthorized(message = 'Authentication required') {
    return new HttpError(401, 'unauthorized', message, undefined, { 'www-authenticate': 'Bearer' });
  }
  static forbidden(message = 'Not allowed') {
    return new HttpError(403, 'forbidden', message);
  }
  static notFound(message = 'Not found') {
    return new HttpError(404, 'not_found', message);
  }
  static conflict(message: string, fields?: Record<string, string>) {
    return new HttpError(409, 'conflict', message, fields);
  }
  static tooMany(retryAfterSeconds: number, message = 'Too many requests') {
    return new HttpError(429, 'rate_limited', message, undefined, {
      'retry-after': String(Math.max(1, Math.ceil(retryAfterSeconds))),
    });
  }
  static unavailable(what: string, retryAfterSeconds = 5) {
    return new HttpError(503, 'unavailable', `${what} is unavailable, try again shortly`, undefined, {
      'retry-after': String(retryAfterSeconds),
    });
  }
}

/**
 * Field path → message, from a zod error (`a.b.0` for nested fields). An
 * unknown key is named itself; an issue with no path is named `fallback`.
 */
export function zodFields(err: ZodError, fallback = 'body'): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const issue of err.issues) {
    const base = issue.path.map(String);
    if (issue.code === 'unrecognized_keys') {
      for (const k of issue.keys) fields[[...base, k].join('.')] ??= 'unknown field';
      continue;
    }
    fields[base.length ? base.join('.') : fallback] ??= issue.message;
  }
  return fields;
}

export type ErrorResponse = { status: number; headers: Record<string, string>; body: ErrorBody };

/**
 * Maps any thrown value to a response. Unknown errors become a 500 that
 * carries only a request id: internals stay in the log.
 */
export function toErrorResponse(err: unknown, requestId: string = randomUUID()): ErrorResponse {
  if (err instanceof HttpError) {
    const body: ErrorBody = { error: { code: err.code, message: err.message } };
    if (err.fields) body.error.fields = err.fields;
    return { status: err.status, headers: err.headers, body };
  }
  if (err instanceof ZodError) {
    const fields = zodFields(err);
    return {
      status: 400,
      headers: {},
      body: { error: { code: 'validation_failed', message: `Invalid ${Object.keys(fields).join(', ')}`, fields } },
    };
  }
  if (err instanceof RangeError && /call stack/i.test(err.message)) {
    // Pathologically nested input overflows validators: the input is wrong, not the server.
    return { status: 400, headers: {}, body: { error: { code: 'bad_request', message: 'Input nested too deeply', fields: { body: 'nested too deeply' } } } };
  }
  if (isUnavailable(err)) {
    return {
      status: 503,
      headers: { 'retry-after': '5' },
      body: { error: { code: 'unavailable', message: 'A dependency is unavailable, try again shortly', requestId } },
    };
  }
  return {
    status: 500,
    headers: {},
    body: { error: { code: 'internal', message: 'Internal error', requestId } },
  };
}

/**
 * Writes any thrown value as the JSON error answer on a plain Node response
 * (the gateway, the broker ingress, the function runner): the same mapping
 * and shape as the function kit's, with a content-length.
 */
export function writeError(res: ServerResponse, err: unknown, requestId?: string): void {
  if (res.headersSent) return;
  const mapped = toErrorResponse(err, requestId);
  const data = JSON.stringify(mapped.body);
  res.writeHead(mapped.status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(data), ...mapped.headers });
  res.end(data);
}

const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENOTFOUND',
  '53300', // PostgreSQL out of connection slots: busy now, not broken
  '57P01',
  '57P02',
  '57P03',
  '08000',
  '08001',
  '08003',
  '08006', // PostgreSQL shutdown / connection
]);

/** True for errors that mean a dependency (database, cache, broker) is down, not that the request is wrong. */
export function isUnavailable(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  const e = err as { code?: unknown; name?: string; message?: string; errors?: unknown[] };
  if (typeof e.code === 'string' && UNAVAILABLE_CODES.has(e.code)) return true;
  if (Array.isArray(e.errors) && e.errors.some(isUnavailable)) return true; // AggregateError
  if (e.name === 'MaxRetriesPerRequestError') return true; // ioredis
  return /Connection is closed|connection terminated|Stream isn't writeable|not queryable|timeout exceeded when trying to connect|terminating connection due to administrator command|too many clients already|remaining connection slots are reserved|the database system is (starting up|shutting down)/i.test(
    e.message ?? '',
  );
}

/**
 * Answers requests Node's HTTP parser refuses (headers or URL over its
 * 16 KiB limit, a malformed request line) with the JSON error shape instead
 * of Node's empty default answer, so every 4xx a client gets is the same
 * shape, whatever part of the request was wrong.
 */
export function answerClientErrorsAsJson(server: Server): void {
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const [status, reason, code, message, field] =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'Request Header Fields Too Large', 'headers_too_large', 'The URL and headers may be at most 16 KiB', 'headers']
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [408, 'Request Timeout', 'timeout', 'The request took too long to arrive', 'request']
          : [400, 'Bad Request', 'bad_request', 'Malformed HTTP request', 'request'];
    const body = JSON.stringify({ error: { code, message, fields: { [field]: message } } });
    socket.end(`HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  });
}
