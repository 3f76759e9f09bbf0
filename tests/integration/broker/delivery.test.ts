/**
 * The local broker end to end against the real RabbitMQ: receipt in both
 * modes, validation, retry with backoff, dead-lettering, reply, ordering and
 * dead-letter replay. Subscribers are in-process fake servers.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { config } from '@saasodoo/platform/config';
import { createLogger } from '@saasodoo/platform/log';
import { startBroker, type Broker } from '@saasodoo/platform/broker/broker';
import { listDeadLetters, replayDeadLetters, withAmqp } from '@saasodoo/platform/broker/dlq';
import { buildEvent } from '@saasodoo/platform/emit';
import { eventFunction } from '@saasodoo/platform/fn';
import { startFunction } from '@saasodoo/platform/host/run-function';
import { freePort } from '../../helpers/ports.ts';
import { fakeSubscriber, type Answer, type FakeSubscriber } from '../../helpers/fake-subscriber.ts';
import { eventually, postBinary, postStructured, removeBroker, testTrigger, TICK } from '../../helpers/broker-test-kit.ts';

const c = config();
const subs: Record<string, FakeSubscriber> = {};
const answers: Record<string, (i: number) => Answer> = {};
const logLines: string[] = [];
let broker: Broker;

const triggers = [
  testTrigger('basic', 'basic', 'basic'),
  testTrigger('retry', 'retry', 'retry', { retry: 2, backoffDelay: 'PT0.1S', backoffPolicy: 'linear' }),
  testTrigger('reject', 'reject', 'reject'),
  testTrigger('replier', 'replier', 'replier'),
  testTrigger('reply-target', 'replied', 'reply-target', { type: 'com.saasodoo.schedule.daily' }),
  testTrigger('ordered', 'ordered', 'ordered', { backoffDelay: 'PT0.05S' }),
];

beforeAll(async () => {
  for (const t of triggers) {
    answers[t.subscriber] = () => ({ status: 204 });
    subs[t.subscriber] = await fakeSubscriber((_d, i) => answers[t.subscriber](i));
  }
  const sink = new Writable({ write: (chunk, _e, cb) => (logLines.push(String(chunk)), cb()) });
  broker = await startBroker({
    rabbitUrl: c.RABBITMQ_URL,
    name: c.BROKER_NAME,
    port: 0,
    triggers,
    resolve: async (fn) => subs[fn].url,
    log: createLogger(sink),
  });
});

afterAll(async () => {
  await broker?.stop();
  await Promise.all(Object.values(subs).map((s) => s.close()));
  await removeBroker(
    c.RABBITMQ_URL,
    c.BROKER_NAME,
    triggers.map((t) => t.name),
  );
});

const dead = (trigger: string) => withAmqp(c.RABBITMQ_URL, (conn) => listDeadLetters(conn, c.BROKER_NAME, trigger));

describe('ingress', () => {
  it('accepts a binary-mode event and delivers it in binary mode with a traceparent', async () => {
    const res = await postBinary(broker.url, { id: 'bin-1', testcase: 'basic', data: { at: '2026-11-26T10:00:00Z' } });
    expect(res.status).toBe(202);
    const [d] = await subs.basic.waitFor(1);
    expect(d.headers['ce-id']).toBe('bin-1');
    expect(d.headers['ce-type']).toBe(TICK);
    expect(d.headers['ce-testcase']).toBe('basic');
    expect(d.headers['ce-traceparent']).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    expect(JSON.parse(d.body)).toEqual({ at: '2026-11-26T10:00:00Z' });
  });

  it('accepts a structured-mode event and keeps the trace of the request', async () => {
    const traceId = 'ab'.repeat(16);
    const res = await fetch(broker.url, {
      method: 'POST',
      headers: { 'content-type': 'application/cloudevents+json', traceparent: `00-${traceId}-${'cd'.repeat(8)}-01` },
      body: JSON.stringify({ specversion: '1.0', id: 'str-1', type: TICK, source: '/tests', testcase: 'basic', data: { at: '2026-11-26T11:00:00Z' } }),
    });
    expect(res.status).toBe(202);
    const all = await subs.basic.waitFor(2);
    const d = all.find((x) => x.headers['ce-id'] === 'str-1')!;
    expect(d.headers['content-type']).toMatch(/^application\/json/);
    expect(d.headers['ce-traceparent']).toContain(traceId);
    expect(JSON.parse(d.body)).toEqual({ at: '2026-11-26T11:00:00Z' });
    expect((await postStructured(broker.url, { testcase: 'basic' })).status).toBe(202);
    await subs.basic.waitFor(3);
  });

  it('answers 400 naming the field for invalid events, and stores nothing', async () => {
    const before = subs.basic.received.length;
    const missingType = await fetch(broker.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'ce-specversion': '1.0', 'ce-id': 'x', 'ce-source': '/t', 'ce-testcase': 'basic' },
      body: '{}',
    });
    expect(missingType.status).toBe(400);
    expect((await missingType.json()).error.fields).toHaveProperty('type');

    const unknown = await postBinary(broker.url, { type: 'com.saasodoo.nope', testcase: 'basic' });
    expect(unknown.status).toBe(400);
    expect((await unknown.json()).error.fields).toEqual({ type: 'not in the event catalogue' });

    const badData = await postBinary(broker.url, { testcase: 'basic', data: { at: 'yesterday' } });
    expect(badData.status).toBe(400);
    expect((await badData.json()).error.fields).toHaveProperty(['data.at']);

    const notEvent = await fetch(broker.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(notEvent.status).toBe(400);
    expect((await notEvent.json()).error.fields).toHaveProperty('event');

    const badJson = await fetch(broker.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'ce-specversion': '1.0', 'ce-id': 'y', 'ce-source': '/t', 'ce-type': TICK },
      body: '{nope',
    });
    expect(badJson.status).toBe(400);
    expect((await badJson.json()).error.fields).toHaveProperty('data');

    const huge = await postBinary(broker.url, { testcase: 'basic', extra: { 'ce-note': 'x'.repeat(5000) } });
    expect(huge.status).toBe(400);
    expect((await huge.json()).error.fields).toHaveProperty('note');

    await postBinary(broker.url, { testcase: 'basic', id: 'marker' });
    await eventually(() => subs.basic.received.some((d) => d.headers['ce-id'] === 'marker'));
    expect(subs.basic.received.length).toBe(before + 1);
  });
});

describe('dispatcher', () => {
  it('retries 5xx with backoff, then dead-letters with the status and body', async () => {
    answers.retry = () => ({ status: 503, body: 'busy' });
    expect((await postBinary(broker.url, { id: 'retry-1', testcase: 'retry' })).status).toBe(202);
    const got = await subs.retry.waitFor(3);
    const gaps = [got[1].at - got[0].at, got[2].at - got[1].at];
    // linear PT0.1S: retry n waits 100 ms * n (lower bounds: RabbitMQ holds the message that long)
    expect(gaps[0]).toBeGreaterThanOrEqual(90);
    expect(gaps[1]).toBeGreaterThanOrEqual(190);
    const letters = await eventually(async () => ((await dead('retry')).length === 1 ? dead('retry') : undefined));
    expect(letters[0]).toMatchObject({ id: 'retry-1', status: 503, body: 'busy', attempts: 3, trigger: 'retry' });
    expect(letters[0].reason).toMatch(/retries exhausted/);
    expect(subs.retry.received.length).toBe(3);
  });

  it('dead-letters other 4xx at once, records why, and the log line carries the trace id', async () => {
    answers.reject = () => ({ status: 422, headers: { 'content-type': 'application/json' }, body: '{"error":"never"}' });
    const traceId = 'ef'.repeat(16);
    await postBinary(broker.url, { id: 'reject-1', testcase: 'reject', extra: { 'ce-traceparent': `00-${traceId}-${'01'.repeat(8)}-01` } });
    const letters = await eventually(async () => ((await dead('reject')).length === 1 ? dead('reject') : undefined));
    expect(letters[0]).toMatchObject({ id: 'reject-1', status: 422, body: '{"error":"never"}', attempts: 1 });
    expect(subs.reject.received.length).toBe(1);
    expect(logLines.some((l) => l.includes('dead-lettered') && l.includes(traceId))).toBe(true);
  });

  it('dlq replay redelivers the dead letter to its subscriber only', async () => {
    answers.reject = () => ({ status: 204 });
    const ids = await withAmqp(c.RABBITMQ_URL, (conn) => replayDeadLetters(conn, c.BROKER_NAME, 'reject', 'reject-1'));
    expect(ids).toEqual(['reject-1']);
    const got = await subs.reject.waitFor(2);
    expect(got[1].headers['ce-id']).toBe('reject-1');
    expect(await dead('reject')).toEqual([]);
  });

  it('publishes a CloudEvent returned by the subscriber (reply), in the same trace', async () => {
    answers.replier = () => ({
      status: 200,
      headers: { 'content-type': 'application/json', 'ce-specversion': '1.0', 'ce-id': 'reply-1', 'ce-type': 'com.saasodoo.schedule.daily', 'ce-source': '/replier', 'ce-testcase': 'replied' },
      body: JSON.stringify({ at: '2026-11-26T12:00:00Z' }),
    });
    const traceId = '12'.repeat(16);
    await postBinary(broker.url, { id: 'cause-1', testcase: 'replier', extra: { 'ce-traceparent': `00-${traceId}-${'34'.repeat(8)}-01` } });
    const [d] = await subs['reply-target'].waitFor(1);
    expect(d.headers['ce-id']).toBe('reply-1');
    expect(d.headers['ce-traceparent']).toContain(traceId);
  });

  it('keeps order at parallelism 1, even across a retry', async () => {
    answers.ordered = (i) => (i === 3 ? { status: 500 } : { status: 204 });
    for (let i = 0; i < 15; i++) expect((await postBinary(broker.url, { testcase: 'ordered', subject: String(i) })).status).toBe(202);
    const got = await subs.ordered.waitFor(16);
    const ok = got.filter((_d, i) => i !== 3).map((d) => Number(d.headers['ce-subject']));
    expect(ok).toEqual([...Array(15).keys()]);
    expect(got[3].headers['ce-subject']).toBe('3');
  });
});

describe('real event function', () => {
  it('delivers to an eventFunction served by faas-js-runtime and publishes the CloudEvent it returns', async () => {
    const port = await freePort();
    const server = await startFunction(
      eventFunction({
        name: 'echo',
        on: { [TICK]: (e) => buildEvent('com.saasodoo.schedule.daily', { at: (e.data as { at: string }).at }, { traceparent: e.traceparent, extensions: { testcase: 'fn-replied' } }) },
      }),
      port,
    );
    const target = await fakeSubscriber();
    const t = [testTrigger('fn-echo', 'fn-echo', 'echo'), testTrigger('fn-replied', 'fn-replied', 'target', { type: 'com.saasodoo.schedule.daily' })];
    const b = await startBroker({ rabbitUrl: c.RABBITMQ_URL, name: c.BROKER_NAME, port: 0, triggers: t, resolve: async (fn) => (fn === 'echo' ? `http://127.0.0.1:${port}` : target.url) });
    try {
      const traceId = '9f'.repeat(16);
      await postBinary(b.url, { testcase: 'fn-echo', data: { at: '2026-11-26T09:00:00Z' }, extra: { 'ce-traceparent': `00-${traceId}-${'aa'.repeat(8)}-01` } });
      const [d] = await target.waitFor(1);
      expect(d.headers['ce-type']).toBe('com.saasodoo.schedule.daily');
      expect(d.headers['ce-traceparent']).toContain(traceId);
      expect(JSON.parse(d.body)).toEqual({ at: '2026-11-26T09:00:00Z' });
    } finally {
      await b.stop();
      await target.close();
      await new Promise((r) => server.close(r));
      await removeBroker(
        c.RABBITMQ_URL,
        c.BROKER_NAME,
        t.map((x) => x.name),
      ).catch(() => {});
    }
  });
});

describe('restart', () => {
  it('a message waiting for its retry survives a restart of the broker', async () => {
    const t = testTrigger('restart', 'restart', 'restart', { retry: 3, backoffDelay: 'PT0.4S' });
    let status = 500;
    const sub = await fakeSubscriber(() => ({ status }));
    const start = () => startBroker({ rabbitUrl: c.RABBITMQ_URL, name: c.BROKER_NAME, port: 0, triggers: [t], resolve: async () => sub.url });
    try {
      const first = await start();
      await postBinary(first.url, { id: 'restart-1', testcase: 'restart' });
      await sub.waitFor(1);
      await first.stop(); // the retry now waits in RabbitMQ only
      status = 204;
      const second = await start();
      const got = await sub.waitFor(2);
      expect(got[1].headers['ce-id']).toBe('restart-1');
      await second.stop();
    } finally {
      await sub.close();
      await removeBroker(c.RABBITMQ_URL, c.BROKER_NAME, ['restart']).catch(() => {});
    }
  });
});
