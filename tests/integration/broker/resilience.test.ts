/**
 * The broker when RabbitMQ goes away. RabbitMQ is reached through a TCP proxy
 * the test cuts (the machine's RabbitMQ is shared and never stopped): the
 * ingress answers 503 + Retry-After while it is cut, reconnects when it
 * returns, and nothing accepted is lost; 1,000 events with a cut in the
 * middle are all consumed with no double effect; the outbox relay sends rows
 * committed before a crash, with their ids and trace.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { config, resetConfig } from '@saasodoo/platform/config';
import { closeDatabases, db } from '@saasodoo/platform/db/index';
import { dropNamespace, migrate } from '@saasodoo/platform/db/migrate';
import { firstDelivery } from '@saasodoo/platform/idempotency';
import { enqueue, relayOnce, transact } from '@saasodoo/platform/outbox';
import { startBroker, type Broker } from '@saasodoo/platform/broker/broker';
import { fakeSubscriber, type FakeSubscriber } from '../../helpers/fake-subscriber.ts';
import { eventually, postBinary, removeBroker, sleep, testTrigger } from '../../helpers/broker-test-kit.ts';
import { tcpProxy, type TcpProxy } from '../../helpers/tcp-proxy.ts';

const c = config();
const triggers = [testTrigger('outage', 'outage', 'outage'), testTrigger('bulk', 'bulk', 'bulk', { parallelism: 10 }), testTrigger('outbox', 'outbox', 'outbox')];
const subs: Record<string, FakeSubscriber> = {};
const effects = new Map<string, number>();
let proxy: TcpProxy;
let broker: Broker;

beforeAll(async () => {
  await migrate({ databases: ['billing'] });
  const rabbit = new URL(c.RABBITMQ_URL);
  proxy = await tcpProxy(rabbit.hostname, Number(rabbit.port || 5672));
  subs.outage = await fakeSubscriber();
  subs.outbox = await fakeSubscriber();
  // The idempotent consumer: the effect happens only on the first delivery of an id.
  subs.bulk = await fakeSubscriber(async (d) => {
    const id = d.headers['ce-id'];
    const first = await db('billing').tx((t) => firstDelivery(t, id, 'broker-test'));
    if (first) effects.set(id, (effects.get(id) ?? 0) + 1);
    return { status: 204 };
  });
  const url = new URL(c.RABBITMQ_URL);
  url.host = `127.0.0.1:${proxy.port}`;
  broker = await startBroker({ rabbitUrl: url.toString(), name: c.BROKER_NAME, port: 0, triggers, resolve: async (fn) => subs[fn].url });
});

afterAll(async () => {
  await broker?.stop();
  await proxy?.close();
  await Promise.all(Object.values(subs).map((s) => s.close()));
  await removeBroker(
    c.RABBITMQ_URL,
    c.BROKER_NAME,
    triggers.map((t) => t.name),
  ).catch(() => {});
  await closeDatabases();
  await dropNamespace();
});

/** Sends one event until the broker stores it, honouring 503 + Retry-After (shortened for the test). */
async function sendUntilStored(testcase: string, id: string): Promise<number> {
  let refusals = 0;
  for (;;) {
    const res = await postBinary(broker.url, { id, testcase }).catch(() => undefined);
    if (res?.status === 202) return refusals;
    expect(res?.status).toBe(503);
    refusals++;
    await sleep(50);
  }
}

describe('RabbitMQ outage', () => {
  it('answers 503 with Retry-After while RabbitMQ is unreachable, and loses nothing once it returns', async () => {
    const ids = Array.from({ length: 10 }, () => randomUUID());
    for (const id of ids.slice(0, 5)) expect(await sendUntilStored('outage', id)).toBe(0);
    proxy.cut();
    await eventually(() => !broker.amqp.connected);
    const refused = await postBinary(broker.url, { testcase: 'outage' });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    expect((await refused.json()).error.code).toBe('unavailable');
    expect((await fetch(`${broker.url}/health`)).status).toBe(503);
    setTimeout(() => proxy.restore(), 300);
    let refusals = 0;
    for (const id of ids.slice(5)) refusals += await sendUntilStored('outage', id);
    expect(refusals).toBeGreaterThan(0);
    await eventually(() => ids.every((id) => subs.outage.received.some((d) => d.headers['ce-id'] === id)));
  });

  it('1,000 events with a connection loss in the middle: all consumed, no double effect', async () => {
    const ids = Array.from({ length: 1000 }, () => randomUUID());
    let next = 0;
    let cutDone = false;
    const worker = async () => {
      while (next < ids.length) {
        const id = ids[next++];
        if (next === 500 && !cutDone) {
          cutDone = true;
          proxy.cut();
          setTimeout(() => proxy.restore(), 400);
        }
        await sendUntilStored('bulk', id);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    await eventually(() => effects.size === ids.length, 45_000, 100);
    expect(ids.every((id) => effects.get(id) === 1)).toBe(true);
    expect(subs.bulk.received.length).toBeGreaterThanOrEqual(ids.length);
  });
});

describe('outbox relay', () => {
  it('after a crash between commit and publish, the relay sends the rows with the same ids and trace', async () => {
    const traceId = '5a'.repeat(16);
    const billing = db('billing');
    // "Crash": the transaction commits its rows, but nothing is relayed in that process (no K_SINK yet).
    delete process.env.K_SINK;
    resetConfig();
    const ids = await transact('billing', async (t) => {
      const out: string[] = [];
      for (let i = 0; i < 3; i++) {
        out.push(await enqueue(t, 'health.tick', { at: new Date().toISOString() }, { traceparent: `00-${traceId}-${'77'.repeat(8)}-01`, extensions: { testcase: 'outbox' } }));
      }
      return out;
    });
    expect(subs.outbox.received).toHaveLength(0);
    process.env.K_SINK = broker.url;
    resetConfig();
    expect(await relayOnce(billing)).toBe(3);
    const got = await subs.outbox.waitFor(3);
    expect(got.map((d) => d.headers['ce-id']).sort()).toEqual([...ids].sort());
    expect(got.every((d) => d.headers['ce-traceparent']?.includes(traceId))).toBe(true);
    expect(await relayOnce(billing)).toBe(0);
    const pending = await billing.one('SELECT count(*)::int AS n FROM outbox WHERE published_at IS NULL');
    expect(pending.n).toBe(0);
  });
});
