import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '@saasodoo/platform/log';

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  return { log: createLogger(stream), lines };
}

describe('log redaction', () => {
  it('redacts credential-like fields at any depth', () => {
    const { log, lines } = capture();
    log.info({ body: { email: 'a@b.c', password: 'hunter2hunter2', nested: { refreshToken: 'rt-123' } }, headers: { authorization: 'Bearer abc', cookie: 'sid=1' } }, 'login');
    const out = lines.join('');
    for (const secret of ['hunter2hunter2', 'rt-123', 'Bearer abc', 'sid=1']) expect(out).not.toContain(secret);
    expect(out).toContain('a@b.c');
  });

  it('scrubs secrets embedded in messages', () => {
    const { log, lines } = capture();
    log.warn('failed postgres://svc:s3cretpw@db:5432/x with Bearer eyJhbGciOi.x.y and ?token=abc123');
    const out = lines.join('');
    for (const secret of ['s3cretpw', 'eyJhbGciOi.x.y', 'abc123']) expect(out).not.toContain(secret);
  });
});
