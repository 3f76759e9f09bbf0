/**
 * The broker and the schedules as host services, and `platform invoke
 * --broker` through the ingress.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { config, resetConfig } from '@saasodoo/platform/config';
import { brokerService } from '@saasodoo/platform/broker/service';
import { startSchedules } from '@saasodoo/platform/broker/schedules';
import { startBroker, type Broker } from '@saasodoo/platform/broker/broker';
import { invoke } from '@saasodoo/platform/cli/core';
import { Supervisor } from '@saasodoo/platform/host/supervisor';
import type { HostContext } from '@saasodoo/platform/host/services';
import { fakeSubscriber, type FakeSubscriber } from '../../helpers/fake-subscriber.ts';
import { tailEvents, type TailedEvent } from '@saasodoo/platform/broker/tail';
import { withAmqp } from '@saasodoo/platform/broker/dlq';
import { eventually, postBinary, removeBroker, testTrigger } from '../../helpers/broker-test-kit.ts';
import { freePort, freePortRange } from '../../helpers/ports.ts';

const c = config();
const triggers = [
  { ...testTrigger('ticks', 'x', 'ticks'), filter: { attributes: { type: 'com.saasodoo.health.tick' } } },
  { ...testTrigger('daily', 'x', 'daily'), filter: { attributes: { type: 'com.saasodoo.schedule.daily' } } },
];
const subs: Record<string, FakeSubscriber> = {};
let broker: Broker;

beforeAll(async () => {
  subs.ticks = await fakeSubscriber();
  subs.daily = await fakeSubscriber();
  broker = await startBroker({ rabbitUrl: c.RABBITMQ_URL, name: c.BROKER_NAME, port: 0, triggers, resolve: async (fn) => subs[fn].url });
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

describe('host services', () => {
  it('schedules emit schedule.daily at start and health.tick every interval, through the ingress', async () => {
    const s = startSchedules(broker.url, 1);
    try {
      const [daily] = await subs.daily.waitFor(1);
      expect(daily.headers['ce-type']).toBe('com.saasodoo.schedule.daily');
      const [tick] = await subs.ticks.waitFor(1, 5000);
      expect(tick.headers['ce-source']).toBe('/saasodoo/host/schedule');
      expect(JSON.parse(tick.body).at).toMatch(/^\d{4}-/);
    } finally {
      s.stop();
    }
  });

  it('the broker host service validates triggers.yaml and serves K_SINK', async () => {
    const port = await freePort();
    const supervisor = new Supervisor({ portBase: await freePortRange(1), only: ['dead-letters'] });
    const ctx: HostContext = { config: { ...c, BROKER_PORT: port, BROKER_NAME: `${c.BROKER_NAME}-svc` }, supervisor, functionEnv: {}, setInstanceRouter: () => {} };
    const svc = await brokerService.start(ctx);
    try {
      expect(svc.endpoint).toContain(`127.0.0.1:${port}`);
      expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
    } finally {
      await svc.stop();
      await removeBroker(c.RABBITMQ_URL, `${c.BROKER_NAME}-svc`, []).catch(() => {});
    }
  });

  it('events tail shows live traffic with secrets redacted', async () => {
    const seen: TailedEvent[] = [];
    const stop = await withAmqp(c.RABBITMQ_URL, async (conn) => {
      const stopTail = await tailEvents(conn, c.BROKER_NAME, (e) => seen.push(e), { type: 'com.saasodoo.health.tick' });
      await postBinary(broker.url, { id: 'tailed-1', data: { at: '2026-11-26T00:00:00Z', password: 'hunter2hunter2' } });
      await postBinary(broker.url, { type: 'com.saasodoo.schedule.daily' });
      await eventually(() => seen.some((e) => e.id === 'tailed-1'));
      return stopTail;
    });
    await stop();
    const e = seen.find((x) => x.id === 'tailed-1')!;
    expect(e.type).toBe('com.saasodoo.health.tick');
    expect(e.data).toEqual({ at: '2026-11-26T00:00:00Z', password: '[redacted]' });
    expect(seen.every((x) => x.type === 'com.saasodoo.health.tick')).toBe(true);
  });

  it('platform invoke --broker sends the event through the ingress', async () => {
    const gateway = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"functions":[]}'));
    await new Promise<void>((r) => gateway.listen(0, '127.0.0.1', () => r()));
    process.env.GATEWAY_URL = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}`;
    process.env.K_SINK = broker.url;
    resetConfig();
    try {
      const before = subs.ticks.received.length;
      const res = await invoke('ticks', { broker: true, type: 'com.saasodoo.health.tick', data: JSON.stringify({ at: '2026-11-26T00:00:00Z' }) });
      expect(res.status).toBe(202);
      await eventually(() => subs.ticks.received.slice(before).some((d) => d.body.includes('2026-11-26T00:00:00Z')));
      const bad = await invoke('ticks', { broker: true, type: 'com.saasodoo.health.tick', data: '{"at":"never"}' });
      expect(bad.status).toBe(400);
      expect(JSON.parse(bad.body).error.fields).toHaveProperty(['data.at']);
    } finally {
      await new Promise((r) => gateway.close(r));
    }
  });
});
