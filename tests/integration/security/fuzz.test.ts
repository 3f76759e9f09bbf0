/**
 * Fuzzing every HTTP function through the gateway (issue 11, SPEC 11):
 * inputs derived from each route's zod schema with fast-check (valid, one
 * field wrong/missing/extra, garbage), plus raw garbage (invalid JSON, wrong
 * types and content types, a body over 1 MiB, odd unicode, SQL and shell
 * metacharacters, reserved and repeated query keys, odd methods). Every
 * answer must be below 500, and every 4xx the JSON error shape, a 400
 * naming the bad field(s) in `error.fields`.
 *
 * A fresh seed every run, so each CI run explores new inputs; a failure
 * names its seed, and `FUZZ_SEED=<seed>` replays it. FUZZ_RUNS (default 25
 * per route) for a larger run on demand, e.g. `FUZZ_RUNS=1000 npm test --
 * tests/integration/security/fuzz.test.ts`.
 */
import http from 'node:http';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killbillNotification } from '@saasodoo/events';
import { webhookToken } from '@saasodoo/platform/billing/webhook';
import { config } from '@saasodoo/platform/config';
import { RESERVED_QUERY_KEYS, type RouteTable } from '@saasodoo/platform/fn';
import { createTestUser, type TestUser } from '../../helpers/auth.ts';
import { startPlatform, type Platform } from '../../helpers/platform.ts';
import { httpFunctionNames, routeTable } from './http-functions.ts';
import { inputFor, NASTY_STRINGS, queryFor, validSamples } from './schema-arbitrary.ts';
import { gatewayProxyToken } from '@saasodoo/platform/host/gateway';

const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : Math.floor(Math.random() * 2 ** 31);
const REPLAY = `replay with FUZZ_SEED=${SEED}`;
const RUNS = Number(process.env.FUZZ_RUNS ?? 25);

let p: Platform;
let customer: TestUser;
let admin: TestUser;
const tables = new Map<string, RouteTable>();

type Sent = { method: string; fn: string; query?: string; body?: string | Buffer; contentType?: string; auth?: string; mustRefuse?: string };

/** One request on a connection of its own (so one wedged connection cannot spill into the next case). */
function freshRequest(url: string, method: string, headers: Record<string, string>, body?: string | Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: { ...headers, connection: 'close' }, agent: false, timeout: 15_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 15 s')));
    // The server may answer (413) and close before the whole body is written: that answer counts.
    req.on('error', reject);
    req.end(body);
  });
}

/** Sends one request and checks the error contract; returns a description on violation, undefined when fine. */
async function violation(s: Sent, fresh = false): Promise<string | undefined> {
  const headers: Record<string, string> = {};
  if (s.contentType) headers['content-type'] = s.contentType;
  if (s.auth) headers.authorization = `Bearer ${s.auth}`;
  // Fuzz traffic must not trip the per-IP limits of the real clients: each request is its own
  // client, vouched for as the portal does (the gateway ignores X-Forwarded-For otherwise).
  headers['x-forwarded-for'] = `198.51.100.${Math.floor(Math.random() * 250)}`;
  headers['x-saasodoo-proxy-token'] = gatewayProxyToken();
  const url = `${p.gateway}/api/${s.fn}${s.query ? `?${s.query}` : ''}`;
  let status: number;
  let text: string;
  try {
    if (fresh) ({ status, text } = await freshRequest(url, s.method, headers, s.body));
    else {
      const res = await fetch(url, { method: s.method, headers, body: s.body as BodyInit | undefined, signal: AbortSignal.timeout(15_000) });
      status = res.status;
      text = await res.text();
    }
  } catch (err) {
    const e = err as Error;
    throw new Error(`${s.method} /api/${s.fn}: ${e.name === 'TimeoutError' ? 'no answer within 15 s' : ((e.cause as Error)?.message ?? e.message)}`);
  }
  const what = () =>
    `${s.method} /api/${s.fn}${s.query ? `?${s.query.slice(0, 200)}` : ''} body=${String(s.body ?? '').slice(0, 200)} → ${status} ${text.slice(0, 300)}`.replace(/token=[\w-]+/g, 'token=…');
  if (status >= 500) return `5xx: ${what()}`;
  if (status < 400) return s.mustRefuse ? `accepted, but ${s.mustRefuse} breaks the text rule: ${what()}` : undefined;
  let body: { error?: { code?: unknown; message?: unknown; fields?: unknown } };
  try {
    body = JSON.parse(text);
  } catch {
    return `non-JSON ${status}: ${what()}`;
  }
  if (typeof body.error?.code !== 'string' || typeof body.error?.message !== 'string') return `not the error shape: ${what()}`;
  if (status === 400) {
    const f = body.error.fields;
    if (!f || typeof f !== 'object' || Object.keys(f).length === 0) return `400 without error.fields: ${what()}`;
    if (s.mustRefuse && !Object.hasOwn(f, s.mustRefuse)) return `400 not naming ${s.mustRefuse}: ${what()}`;
  }
  return undefined;
}

/** The caller a route needs to get past authentication (so validation and handlers are fuzzed too). */
function tokenFor(fn: string, method: 'GET' | 'POST'): string | undefined {
  const auth = tables.get(fn)?.[method]?.auth;
  return auth === 'admin' ? admin.accessToken : auth === 'customer' || auth === 'optional' ? customer.accessToken : undefined;
}

/** webhook-intake's query: the real tenant and token (so its body parsing is reached). */
const webhookQuery = () => new URLSearchParams({ tenant: config().KILLBILL_API_KEY, token: webhookToken(config().KILLBILL_API_KEY) }).toString();

beforeAll(async () => {
  console.info(`fuzz seed ${SEED} (${REPLAY})`);
  p = await startPlatform({ warm: true });
  customer = await createTestUser();
  admin = await createTestUser({ role: 'admin' });
  for (const fn of httpFunctionNames()) {
    const t = await routeTable(fn);
    // webhook-intake is hand-written (Kill Bill's shape): its input schema is the notification.
    tables.set(fn, t ?? { POST: { auth: 'none', body: killbillNotification } });
  }
}, 300_000); // warming every function takes minutes on a loaded machine

afterAll(async () => {
  await p?.stop();
});

// Whatever failed (a violation, a timeout), the seed that found it is printed.
afterEach((ctx) => {
  if (ctx.task.result?.state === 'fail') console.error(`${ctx.task.name}: ${REPLAY}`);
});

describe('fuzzing every HTTP function (fast-check, from each input schema)', () => {
  for (const fn of httpFunctionNames()) {
    it(`${fn}: no 5xx, every 4xx the JSON error shape`, { timeout: 120_000 }, async () => {
      const table = tables.get(fn)!;
      const found: string[] = [];
      for (const method of ['GET', 'POST'] as const) {
        const r = table[method];
        if (!r) continue;
        const baseQuery = fn === 'webhook-intake' ? webhookQuery() : '';
        const arb =
          method === 'POST' && r.body
            ? fc.record({ body: inputFor(r.body), query: fc.constant(baseQuery) })
            : fc.record({ body: fc.constant(undefined), query: r.query ? queryFor(r.query) : fc.constant('') });
        await fc
          .assert(
            fc.asyncProperty(arb, fc.boolean(), async ({ body, query }, withToken) => {
              const v = await violation({
                method,
                fn,
                query: query || undefined,
                body: method === 'POST' ? JSON.stringify(body ?? {}) : undefined,
                contentType: method === 'POST' ? 'application/json' : undefined,
                auth: withToken ? tokenFor(fn, method) : undefined,
              }).catch((err: Error) => `${err.message} (body ${JSON.stringify(body)?.slice(0, 300)}, query ${query})`);
              if (v) found.push(v);
              return v === undefined;
            }),
            { seed: SEED, numRuns: RUNS, endOnFailure: true },
          )
          .catch(() => {});
      }
      expect(found, `${REPLAY}\n${found.join('\n')}`).toEqual([]);
    });
  }
});

describe('hostile characters in each string field of an otherwise valid input', () => {
  // Refused by the text rule (events/text.ts): a 4xx (a 400 names the field), never 2xx or 5xx.
  const REFUSED = ['\u0000', '\u0001', '\u001b', '\u007f', '\u0085', '\ud800', '\udfff'];
  // Text a field may accept (or refuse by its own rules), never with a 5xx.
  const OTHERS = ['\u202e', '\u200f', 'e\u0301', '\u00e9'.repeat(20_000)];
  const LONE_SURROGATE = /[\ud800-\udfff]/;

  for (const fn of httpFunctionNames()) {
    it(`${fn}: a NUL, control, lone surrogate, bidi mark or very long text in each field`, { timeout: 180_000 }, async () => {
      const found: string[] = [];
      for (const method of ['GET', 'POST'] as const) {
        const r = tables.get(fn)![method];
        const schema = method === 'POST' ? r?.body : r?.query;
        if (!r || !schema) continue;
        for (const sample of await validSamples(schema, SEED)) {
          for (const [field, value] of Object.entries(sample)) {
            if (typeof value !== 'string') continue;
            for (const probe of [...REFUSED, ...OTHERS]) {
              const input = { ...sample, [field]: value.slice(0, 1) + probe + value.slice(1) };
              // A query string cannot carry a lone surrogate (URL encoding turns it into U+FFFD).
              const refused = REFUSED.includes(probe) && !(method === 'GET' && LONE_SURROGATE.test(probe));
              const query = method === 'GET' ? new URLSearchParams(input as Record<string, string>).toString() : '';
              const v = await violation({
                method,
                fn,
                query: [fn === 'webhook-intake' ? webhookQuery() : '', query].filter(Boolean).join('&') || undefined,
                body: method === 'POST' ? JSON.stringify(input) : undefined,
                contentType: method === 'POST' ? 'application/json' : undefined,
                auth: tokenFor(fn, method),
                mustRefuse: refused ? field : undefined,
              }).catch((err: Error) => `${err.message} (${field} with ${JSON.stringify(probe.slice(0, 8))})`);
              if (v) found.push(v);
            }
          }
        }
      }
      expect(found, `${REPLAY}\n${found.join('\n')}`).toEqual([]);
    });
  }
});

describe('raw garbage against every HTTP function', () => {
  const deep = '['.repeat(50_000) + ']'.repeat(50_000);
  const garbage: { label: string; body?: string | Buffer; contentType?: string; query?: string; method?: string }[] = [
    { label: 'invalid JSON', body: '{"email": "a@b.c", ', contentType: 'application/json' },
    { label: 'JSON with a BOM and trailing junk', body: '\ufeff{"a":1} x', contentType: 'application/json' },
    { label: 'JSON null', body: 'null', contentType: 'application/json' },
    { label: 'JSON array', body: '[1,2,3]', contentType: 'application/json' },
    { label: 'JSON string', body: '"hello"', contentType: 'application/json' },
    { label: 'JSON number', body: '42', contentType: 'application/json' },
    { label: 'empty body with JSON type', body: '', contentType: 'application/json' },
    { label: 'deeply nested JSON', body: deep, contentType: 'application/json' },
    { label: 'text/plain body', body: 'email=a@b.c', contentType: 'text/plain' },
    { label: 'form body', body: 'email=a%40b.c&password=x', contentType: 'application/x-www-form-urlencoded' },
    { label: 'no content type', body: '{"a":1}' },
    { label: 'binary junk as JSON', body: Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x80, 0x7b]), contentType: 'application/json' },
    { label: 'body over 1 MiB', body: JSON.stringify({ email: 'x'.repeat(1.5 * 1024 * 1024) }), contentType: 'application/json' },
    {
      label: 'every nasty string in every common field',
      body: JSON.stringify(
        Object.fromEntries(
          ['email', 'password', 'token', 'refreshToken', 'id', 'action', 'name', 'subdomain', 'plan', 'trigger', 'firstName', 'eventType'].map((k, i) => [k, NASTY_STRINGS[i % NASTY_STRINGS.length]]),
        ),
      ),
      contentType: 'application/json',
    },
    {
      label: 'NUL and lone surrogates in strings',
      body: '{"email":"a\\u0000@b.co","password":"\\ud800\\ud800\\ud800\\ud800\\ud800\\ud800","firstName":"\\u0000","name":"\\udfff","id":"\\u0000"}',
      contentType: 'application/json',
    },
    { label: '__proto__ pollution', body: '{"__proto__":{"role":"admin","isAdmin":true},"constructor":{"prototype":{"x":1}}}', contentType: 'application/json' },
    { label: 'wrong types everywhere', body: JSON.stringify({ email: 1, password: [], token: {}, id: true, action: null, acceptTerms: 'true', refreshToken: 1e308 }), contentType: 'application/json' },
    ...RESERVED_QUERY_KEYS.map((k) => ({ label: `reserved query key ${k}`, method: 'GET', query: `${k}=x` })),
    { label: 'reserved query key on POST', method: 'POST', query: 'headers=x&body=y', body: '{}', contentType: 'application/json' },
    { label: 'repeated query keys', method: 'GET', query: 'id=1&id=2&token=a&token=b&trigger=a&trigger=b' },
    { label: 'SQL and shell in the query', method: 'GET', query: new URLSearchParams({ id: "1' OR '1'='1", token: '$(reboot)', available: '; rm -rf /', trigger: '../../etc/passwd' }).toString() },
    { label: 'odd unicode in the query', method: 'GET', query: 'available=%E2%80%AE%F0%9F%A7%A8&token=%00%00&id=%ED%A0%80' },
    { label: 'malformed percent-encoding', method: 'GET', query: 'token=%E0%A4%A&id=%' },
    { label: 'URL over 16 KiB (431 from the HTTP parser)', method: 'GET', query: `id=${'%C3%A9'.repeat(4000)}` },
    { label: 'PUT', method: 'PUT', body: '{}', contentType: 'application/json' },
    { label: 'DELETE', method: 'DELETE' },
    { label: 'PATCH', method: 'PATCH', body: '{}', contentType: 'application/json' },
  ];

  for (const fn of httpFunctionNames()) {
    it(`${fn}: garbage answers 4xx JSON errors, never 5xx`, { timeout: 120_000 }, async () => {
      const found: string[] = [];
      for (const g of garbage) {
        const method = g.method ?? 'POST';
        // Anonymous for the public routes, the route's caller for the protected ones (so validation is reached).
        const token = tokenFor(fn, method === 'GET' ? 'GET' : 'POST');
        const query = [fn === 'webhook-intake' && !g.query?.includes('headers') ? webhookQuery() : '', g.query ?? ''].filter(Boolean).join('&');
        const v = await violation(
          {
            method,
            fn,
            query: query || undefined,
            body: method === 'GET' || method === 'DELETE' ? undefined : g.body,
            contentType: g.contentType,
            auth: token,
          },
          true,
        ).catch((err: Error) => `network error (${err.message}) instead of an answer`);
        if (v) found.push(`[${g.label}] ${v}`);
      }
      expect(found, found.join('\n')).toEqual([]);
    });
  }

  it('a refused oversized body (413) leaves the keep-alive connection usable', async () => {
    const url = `${p.gateway}/api/plans`;
    const answers: string[] = [];
    for (const body of [undefined, JSON.stringify({ x: 'x'.repeat(1.5 * 1024 * 1024) }), undefined, undefined, undefined]) {
      const r = await fetch(url, { method: body ? 'POST' : 'GET', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(5000) }).then(
        (res) => String(res.status),
        (err: Error) => (err.name === 'TimeoutError' ? 'no answer in 5 s' : err.message),
      );
      answers.push(r);
    }
    expect(answers).toEqual(['200', '413', '200', '200', '200']);
  });
});
