/**
 * The text rule (events/text.ts, issue 16): control characters and unpaired
 * surrogates refused with a message, tab and newline only in multi-line
 * fields, NFC before length limits; the net that walks any parsed value; the
 * ingress decoding every encoding the cloudevents SDK produces.
 */
import { CloudEvent, HTTP } from 'cloudevents';
import { describe, expect, it } from 'vitest';
import { cleanText, killbillNotification, text, textProblem, textProblemIn } from '@saasodoo/events';
import { HttpError } from '@saasodoo/platform/errors';
import { parseIncoming } from '@saasodoo/platform/broker/validate';

const TICK = 'com.saasodoo.health.tick';

describe('textProblem', () => {
  it('refuses NUL, other C0 controls, DEL and C1 controls, naming the code point', () => {
    for (const [s, cp] of [
      ['a\u0000b', 'U+0000'],
      ['\u0001', 'U+0001'],
      ['x\u001b[31m', 'U+001B'],
      ['\u007f', 'U+007F'],
      ['\u0085', 'U+0085'],
      ['\u009f', 'U+009F'],
    ]) {
      expect(textProblem(s)).toBe(`must not contain control characters (found ${cp})`);
      expect(textProblem(s, { multiline: true })).toBe(`must not contain control characters (found ${cp})`);
    }
  });

  it('refuses unpaired surrogates, high or low, and accepts pairs', () => {
    for (const s of ['\ud800', 'a\udfffb', '\udfff\ud800', '🧨'.slice(0, 1)]) expect(textProblem(s)).toMatch(/unpaired surrogate/);
    expect(textProblem('🧨 ok')).toBeUndefined();
  });

  it('allows tab and line breaks only in multi-line text', () => {
    for (const s of ['a\tb', 'a\nb', 'a\r\nb', 'a\u2028b']) expect(textProblem(s)).toBe('must be a single line (no tabs or line breaks)');
    for (const s of ['a\tb', 'a\nb', 'a\r\nb']) expect(textProblem(s, { multiline: true })).toBeUndefined();
  });

  it('accepts ordinary text in any script, right-to-left marks and combining characters', () => {
    for (const s of ['Zoë', 'Ζωή', '\u200fשלום\u200e', 'مرحبا\u202e', 'e\u0301', '李', ' spaced  out ', '']) expect(textProblem(s)).toBeUndefined();
  });
});

describe('text()', () => {
  const name = text().trim().min(1).max(5);
  it('normalises to NFC before the length limit', () => {
    expect(name.parse('Zoe\u0308')).toBe('Zoë');
    expect(name.parse('e\u0301e\u0301e\u0301e\u0301e\u0301')).toBe('ééééé'); // 10 UTF-16 units before NFC
  });

  it('names the problem as the field message (the first issue wins)', () => {
    const r = name.safeParse('a\u0000');
    expect(r.success).toBe(false);
    expect(r.error!.issues[0].message).toBe('must not contain control characters (found U+0000)');
  });

  it('keeps newlines in a multi-line field', () => {
    expect(text({ multiline: true }).parse('line one\nline two\r\n\tend')).toBe('line one\nline two\r\n\tend');
    expect(text().safeParse('line one\nline two').success).toBe(false);
  });
});

describe('textProblemIn', () => {
  it('finds the first bad string anywhere, with its path', () => {
    expect(textProblemIn({ a: 'fine', b: [{ c: 'ok' }, { c: 'x\u0000' }] })).toEqual({ path: ['b', 1, 'c'], message: 'must not contain control characters (found U+0000)' });
    expect(textProblemIn('\ud800')?.path).toEqual([]);
    expect(textProblemIn({ ok: 'line\nbreak', n: 1, t: true, z: null })).toBeUndefined();
  });

  it('checks object keys too, naming the object', () => {
    expect(textProblemIn({ resources: { 'a\u0000': 1 } })).toEqual({ path: ['resources'], message: 'has a key that must not contain control characters (found U+0000)' });
  });

  it('walks a deeply nested value without overflowing the stack', () => {
    let v: unknown = 'deep\u0001';
    for (let i = 0; i < 100_000; i++) v = [v];
    expect(textProblemIn(v)?.path.length).toBe(100_000);
  });
});

describe('cleanText', () => {
  it('replaces what the rule refuses (for messages the platform writes itself)', () => {
    expect(cleanText('\u001b[31mfailed\u0000 \ud800 e\u0301\n')).toBe('\ufffd[31mfailed\ufffd \ufffd é\n');
    expect(textProblem(cleanText('a\u0000\udfff'), { multiline: true })).toBeUndefined();
  });
});

describe('Kill Bill notification fields', () => {
  const base = { eventType: 'INVOICE_CREATION', accountId: null, objectType: 'INVOICE', objectId: null, metaData: null };
  it('refuses control characters in a field and inside the metaData JSON', () => {
    expect(killbillNotification.safeParse({ ...base, eventType: 'INVOICE\u0000' }).error?.issues[0]).toMatchObject({ path: ['eventType'], message: expect.stringMatching(/control characters/) });
    const inner = killbillNotification.safeParse({ ...base, metaData: '{"reason":"a\\u0000b"}' });
    expect(inner.error?.issues[0]).toMatchObject({ path: ['metaData'], message: 'holds JSON whose reason must not contain control characters (found U+0000)' });
    expect(killbillNotification.safeParse({ ...base, metaData: '{\n\t"a": 1\n}' }).success).toBe(true);
  });
});

describe('broker ingress decoding (parseIncoming)', () => {
  const fields = (f: () => unknown) => {
    try {
      f();
    } catch (err) {
      if (err instanceof HttpError) return { status: err.status, fields: err.fields };
      throw err;
    }
    throw new Error('expected a refusal');
  };

  it('decodes the SDK structured encoding of binary data (data_base64) to the JSON data', () => {
    const sdk = new CloudEvent({ type: TICK, source: '/tests', datacontenttype: 'application/json', data: Buffer.from(JSON.stringify({ at: '2026-12-06T10:00:00.000Z' })) });
    const msg = HTTP.structured(sdk);
    expect(JSON.parse(msg.body as string)).toHaveProperty('data_base64');
    const ev = parseIncoming(msg.headers, msg.body as string);
    expect(ev.data).toEqual({ at: '2026-12-06T10:00:00.000Z' });
    expect(ev.data_base64).toBeUndefined();
  });

  it('accepts the structured content type with any case and parameters', () => {
    const body = JSON.stringify({ specversion: '1.0', id: 'x', type: TICK, source: '/t', data: { at: '2026-12-06T10:00:00Z' } });
    expect(parseIncoming({ 'content-type': 'Application/CloudEvents+JSON;charset=UTF-8' }, body).data).toEqual({ at: '2026-12-06T10:00:00Z' });
  });

  it('refuses data_base64 that is not UTF-8 when the data is JSON', () => {
    const body = JSON.stringify({ specversion: '1.0', id: 'x', type: TICK, source: '/t', datacontenttype: 'application/json', data_base64: Buffer.from([0xff, 0xfe, 0x7b]).toString('base64') });
    expect(fields(() => parseIncoming({ 'content-type': 'application/cloudevents+json' }, body))).toEqual({ status: 400, fields: { data_base64: 'JSON data must be UTF-8' } });
  });

  it('refuses control characters in data (every encoding) and in attributes, naming the field', () => {
    const data = { customerId: '2b1c0f0e-8f43-4c3e-9d1a-3f6c2b7e9a10', email: 'a@example.com', firstName: 'A\u0000' };
    const type = 'com.saasodoo.user.verified';
    const binary = HTTP.binary(new CloudEvent({ type, source: '/t', datacontenttype: 'application/json', data }));
    expect(fields(() => parseIncoming(binary.headers, binary.body as string))).toMatchObject({ status: 400, fields: { 'data.firstName': expect.stringMatching(/U\+0000/) } });
    const b64 = HTTP.structured(new CloudEvent({ type, source: '/t', datacontenttype: 'application/json', data: Buffer.from(JSON.stringify(data)) }));
    expect(fields(() => parseIncoming(b64.headers, b64.body as string))).toMatchObject({ status: 400, fields: { 'data.firstName': expect.stringMatching(/U\+0000/) } });
    // a field the catalogue declares as a plain string is caught by the net
    const net = HTTP.binary(
      new CloudEvent({
        type: 'com.saasodoo.instance.progress',
        source: '/t',
        datacontenttype: 'application/json',
        data: { instanceId: data.customerId, customerId: data.customerId, operation: 'op\u0007', step: 's', index: 0, total: 1 },
      }),
    );
    expect(fields(() => parseIncoming(net.headers, net.body as string))).toEqual({ status: 400, fields: { 'data.operation': 'must not contain control characters (found U+0007)' } });
    const attr = JSON.stringify({ specversion: '1.0', id: 'x', type: TICK, source: '/t', subject: 'a\u0000', data: { at: '2026-12-06T10:00:00Z' } });
    expect(fields(() => parseIncoming({ 'content-type': 'application/cloudevents+json' }, attr))).toEqual({ status: 400, fields: { subject: 'must not contain control characters (found U+0000)' } });
  });
});
