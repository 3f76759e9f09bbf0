import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { HttpError, toErrorResponse } from '@saasodoo/platform/errors';

describe('error mapping', () => {
  it('renders HttpError in the one JSON shape', () => {
    const r = toErrorResponse(HttpError.tooMany(7));
    expect(r.status).toBe(429);
    expect(r.headers['retry-after']).toBe('7');
    expect(r.body).toEqual({ error: { code: 'rate_limited', message: 'Too many requests' } });
  });

  it('turns a ZodError into 400 naming each field, unknown keys included', () => {
    const schema = z.object({ email: z.email(), age: z.number() }).strict();
    const err = schema.safeParse({ email: 'x', age: 'y', extra: 1 }).error!;
    const r = toErrorResponse(err);
    expect(r.status).toBe(400);
    expect(Object.keys(r.body.error.fields!).sort()).toEqual(['age', 'email', 'extra']);
  });

  it('hides internals of unexpected errors behind a request id', () => {
    const r = toErrorResponse(new Error('password=hunter2 at db.ts:12'), 'req-1');
    expect(r.status).toBe(500);
    expect(JSON.stringify(r.body)).not.toContain('hunter2');
    expect(r.body.error.requestId).toBe('req-1');
  });

  it('maps a database restart seen by a pooled client to 503', () => {
    for (const message of ['Client has encountered a connection error and is not queryable', 'timeout exceeded when trying to connect']) {
      expect(toErrorResponse(new Error(message)).status).toBe(503);
    }
  });

  it('maps a database out of connection slots (53300) to 503, not 500', () => {
    const err = Object.assign(new Error('remaining connection slots are reserved for non-replication superuser connections'), { code: '53300' });
    expect(toErrorResponse(err).status).toBe(503);
  });

  it('maps a refused connection to 503 with Retry-After', () => {
    const r = toErrorResponse(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
    expect(r.status).toBe(503);
    expect(r.headers['retry-after']).toBeDefined();
  });
});
