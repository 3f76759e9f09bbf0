/**
 * Helpers for broker tests: build triggers in code (a test filters on its own
 * `testcase` extension so triggers of one file never see each other's
 * events), post CloudEvents in binary or structured mode, and remove a test
 * broker's exchange and queues afterwards.
 */
import { randomUUID } from 'node:crypto';
import amqp from 'amqplib';
import type { Trigger } from '@saasodoo/events/triggers';
import { exchangeName, queueNames } from '@saasodoo/platform/broker/topology';

export const TICK = 'com.saasodoo.health.tick';

export function testTrigger(
  name: string,
  testcase: string,
  subscriber: string,
  o: { retry?: number; backoffDelay?: string; backoffPolicy?: 'linear' | 'exponential'; timeout?: string; parallelism?: number; type?: string } = {},
): Trigger {
  return {
    name,
    filter: { attributes: { type: o.type ?? TICK, testcase } },
    subscriber,
    delivery: { retry: o.retry ?? 2, backoffPolicy: o.backoffPolicy ?? 'linear', backoffDelay: o.backoffDelay ?? 'PT0.05S', timeout: o.timeout ?? 'PT5S' },
    parallelism: o.parallelism ?? 1,
  };
}

export type PostOptions = { id?: string; type?: string; testcase?: string; subject?: string; data?: unknown; extra?: Record<string, string> };

/** POSTs one event in binary mode; returns the response. */
export function postBinary(url: string, o: PostOptions = {}): Promise<Response> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'ce-specversion': '1.0',
    'ce-id': o.id ?? randomUUID(),
    'ce-type': o.type ?? TICK,
    'ce-source': '/tests',
    ...(o.testcase ? { 'ce-testcase': o.testcase } : {}),
    ...(o.subject ? { 'ce-subject': o.subject } : {}),
    ...(o.extra ?? {}),
  };
  return fetch(url, { method: 'POST', headers, body: JSON.stringify(o.data ?? { at: new Date().toISOString() }) });
}

/** POSTs one event in structured mode. */
export function postStructured(url: string, o: PostOptions = {}): Promise<Response> {
  const ev = {
    specversion: '1.0',
    id: o.id ?? randomUUID(),
    type: o.type ?? TICK,
    source: '/tests',
    datacontenttype: 'application/json',
    data: o.data ?? { at: new Date().toISOString() },
    ...(o.testcase ? { testcase: o.testcase } : {}),
    ...(o.subject ? { subject: o.subject } : {}),
  };
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/cloudevents+json; charset=utf-8' }, body: JSON.stringify(ev) });
}

/** Deletes the exchange and every queue of `triggers` (test cleanup). */
export async function removeBroker(rabbitUrl: string, broker: string, triggers: string[]): Promise<void> {
  const conn = await amqp.connect(rabbitUrl);
  try {
    const ch = await conn.createChannel();
    for (const t of triggers) {
      const q = queueNames(broker, t);
      for (const name of [q.main, q.wait, q.due, q.dlq]) await ch.deleteQueue(name);
    }
    await ch.deleteExchange(exchangeName(broker));
    await ch.close();
  } finally {
    await conn.close();
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value (or throws after `ms`). */
export async function eventually<T>(fn: () => Promise<T | undefined | null | false> | T | undefined | null | false, ms = 20_000, every = 50): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(every);
  }
}
