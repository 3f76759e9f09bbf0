/**
 * The broker ingress decodes every encoding of the CloudEvents HTTP binding
 * before validation (issue 16): the official SDK's structured encoding of
 * binary data (`data_base64`) used to be refused (`data.at: expected string,
 * received function`); now it is accepted and delivered with the decoded
 * data. Control characters in event data are refused at the door (400
 * naming the field) and nothing is stored; newlines in a multi-line field
 * are kept. Real RabbitMQ, in-process fake subscribers.
 */
import { randomUUID } from 'node:crypto';
import { CloudEvent, HTTP } from 'cloudevents';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { config } from '@saasodoo/platform/config';
import { log } from '@saasodoo/platform/log';
import { startBroker, type Broker } from '@saasodoo/platform/broker/broker';
import { fakeSubscriber, type FakeSubscriber } from '../../helpers/fake-subscriber.ts';
import { eventually, postBinary, removeBroker, testTrigger, TICK } from '../../helpers/broker-test-kit.ts';

const c = config();
const FAILED = 'com.saasodoo.instance.failed';
const triggers = [testTrigger('encodings', 'encodings', 'encodings'), testTrigger('multiline', 'multiline', 'multiline', { type: FAILED })];
const subs: Record<string, FakeSubscriber> = {};
let broker: Broker;

beforeAll(async () => {
  for (const t of triggers) subs[t.subscriber] = await fakeSubscriber();
  broker = await startBroker({ rabbitUrl: c.RABBITMQ_URL, name: c.BROKER_NAME, port: 0, triggers, resolve: async (fn) => subs[fn].url, log });
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

/** POSTs what the SDK's HTTP binding makes of `ev` in `mode`. */
function sendSdk(ev: CloudEvent<unknown>, mode: 'structured' | 'binary'): Promise<Response> {
  const m = mode === 'structured' ? HTTP.structured(ev) : HTTP.binary(ev);
  return fetch(broker.url, { method: 'POST', headers: m.headers as Record<string, string>, body: m.body as BodyInit });
}

describe('ingress decoding', () => {
  it('accepts the SDK structured encoding of binary data (data_base64) and delivers the decoded JSON data', async () => {
    const ev = new CloudEvent({
      id: 'b64-1',
      type: TICK,
      source: '/tests',
      testcase: 'encodings',
      datacontenttype: 'application/json',
      data: Buffer.from(JSON.stringify({ at: '2026-12-06T10:00:00.000Z' })),
    });
    const m = HTTP.structured(ev);
    expect(JSON.parse(m.body as string)).toMatchObject({ data_base64: expect.any(String) }); // what the SDK sends: no `data`
    expect(JSON.parse(m.body as string)).not.toHaveProperty('data');
    const res = await sendSdk(ev, 'structured');
    expect(res.status, await res.clone().text()).toBe(202);
    const d = await eventually(() => subs.encodings.received.find((x) => x.headers['ce-id'] === 'b64-1'));
    expect(d.headers['content-type']).toMatch(/^application\/json/);
    expect(JSON.parse(d.body)).toEqual({ at: '2026-12-06T10:00:00.000Z' });
    expect(d.headers).not.toHaveProperty('ce-data_base64');
  });

  it('accepts the same data in the SDK binary encoding and as structured JSON data', async () => {
    const data = { at: '2026-12-06T11:00:00.000Z' };
    expect(
      (await sendSdk(new CloudEvent({ id: 'bin-2', type: TICK, source: '/tests', testcase: 'encodings', datacontenttype: 'application/json', data: Buffer.from(JSON.stringify(data)) }), 'binary'))
        .status,
    ).toBe(202);
    expect((await sendSdk(new CloudEvent({ id: 'str-2', type: TICK, source: '/tests', testcase: 'encodings', datacontenttype: 'application/json', data }), 'structured')).status).toBe(202);
    for (const id of ['bin-2', 'str-2']) {
      const d = await eventually(() => subs.encodings.received.find((x) => x.headers['ce-id'] === id));
      expect(JSON.parse(d.body), id).toEqual(data);
    }
  });
});

describe('the text rule at the ingress', () => {
  const ids = { instanceId: randomUUID(), customerId: randomUUID() };

  it('refuses control characters in event data with 400 naming the field, in every encoding, and stores nothing', async () => {
    const before = subs.multiline.received.length;
    const data = { ...ids, step: 'database', reason: 'failed\u0000here' };
    const binary = await postBinary(broker.url, { type: FAILED, testcase: 'multiline', data });
    expect(binary.status).toBe(400);
    expect((await binary.json()).error.fields).toEqual({ 'data.reason': 'must not contain control characters (found U+0000)' });
    const b64 = await sendSdk(
      new CloudEvent({
        type: FAILED,
        source: '/tests',
        testcase: 'multiline',
        datacontenttype: 'application/json',
        data: Buffer.from(JSON.stringify({ ...data, reason: 'ok', step: 'data\u001bbase' })),
      }),
      'structured',
    );
    expect(b64.status).toBe(400);
    expect((await b64.json()).error.fields).toEqual({ 'data.step': 'must not contain control characters (found U+001B)' });
    const surrogate = await fetch(broker.url, {
      method: 'POST',
      headers: { 'content-type': 'application/cloudevents+json' },
      body: `{"specversion":"1.0","id":"s-1","type":"${FAILED}","source":"/tests","testcase":"multiline","data":{"instanceId":"${ids.instanceId}","customerId":"${ids.customerId}","step":"x","reason":"\\ud800"}}`,
    });
    expect(surrogate.status).toBe(400);
    expect((await surrogate.json()).error.fields).toEqual({ 'data.reason': 'must be valid Unicode text (it holds an unpaired surrogate)' });

    await postBinary(broker.url, { type: FAILED, testcase: 'multiline', id: 'marker', data: { ...ids, step: 'x', reason: 'marker' } });
    await eventually(() => subs.multiline.received.some((d) => d.headers['ce-id'] === 'marker'));
    expect(subs.multiline.received.length).toBe(before + 1);
  });

  it('keeps newlines and tabs in a multi-line field (a failure reason)', async () => {
    const reason = 'pg_restore failed:\n\terror: relation exists\r\nline 3';
    expect((await postBinary(broker.url, { type: FAILED, testcase: 'multiline', id: 'nl-1', data: { ...ids, step: 'restore', reason } })).status).toBe(202);
    const d = await eventually(() => subs.multiline.received.find((x) => x.headers['ce-id'] === 'nl-1'));
    expect(JSON.parse(d.body).reason).toBe(reason);
  });
});
