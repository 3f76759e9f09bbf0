/**
 * Event backbone figures: raw amqplib publishing with confirms vs the broker
 * ingress accepting the same events over HTTP (202 after the confirm), at
 * the same concurrency, the HTTP load from autocannon in a separate process
 * (each event its own ce-id); and emit → consumer latency through ingress,
 * RabbitMQ and dispatcher at a fixed rate.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import amqp from 'amqplib';
import { config } from '@saasodoo/platform/config';
import { startBroker } from '@saasodoo/platform/broker/broker';
import { exchangeName, queueNames } from '@saasodoo/platform/broker/topology';
import type { Trigger } from '@saasodoo/events/triggers';
import { perRequest, pool, pct, profiled, withCpu } from './_kit.ts';
import { autocannonShots } from './_load.ts';

const TYPE = 'com.saasodoo.health.tick';
const CONCURRENCY = 64;

export async function bench(opts: { quick: boolean }) {
  const c = config();
  const name = `bench-${randomBytes(4).toString('hex')}`;
  const n = opts.quick ? 1000 : 10_000;
  const body = JSON.stringify({ at: new Date().toISOString() });
  const conn = await amqp.connect(c.RABBITMQ_URL, { noDelay: true });
  const ch = await conn.createConfirmChannel();
  const rawQueue = `${name}.raw`;
  const sinkQueue = `${name}.sink`;
  const rows = [];
  const httpAgent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  try {
    // 1. Raw amqplib: persistent publish to a durable queue, awaiting each confirm, CONCURRENCY in flight.
    await ch.assertQueue(rawQueue, { durable: true });
    const [rawSecs, [rawCpu]] = await withCpu([process.pid], () =>
      pool(
        n,
        CONCURRENCY,
        (i) =>
          new Promise<void>((resolve, reject) => ch.sendToQueue(rawQueue, Buffer.from(body), { persistent: true, headers: { type: TYPE, id: String(i) } }, (err) => (err ? reject(err) : resolve()))),
      ),
    );

    // 2. The ingress: same count and concurrency, one HTTP POST (binary mode) per event, 202 after the confirm.
    const broker = await startBroker({ rabbitUrl: c.RABBITMQ_URL, name, port: 0, triggers: [], resolve: async () => '' });
    await ch.assertQueue(sinkQueue, { durable: true });
    await ch.bindQueue(sinkQueue, exchangeName(name), '', { 'x-match': 'all', type: TYPE });
    const post = (url: string, id: string) =>
      new Promise<void>((resolve, reject) => {
        const req = http.request(
          url,
          { method: 'POST', agent: httpAgent, headers: { 'content-type': 'application/json', 'ce-specversion': '1.0', 'ce-id': id, 'ce-type': TYPE, 'ce-source': '/bench' } },
          (res) => {
            res.resume();
            res.on('end', () => (res.statusCode === 202 ? resolve() : reject(new Error(`ingress answered ${res.statusCode}`))));
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    // The broker runs in this process: its CPU during the load is the ingress's (autocannon is another process).
    const [ingress, [ingressCpu]] = await withCpu([process.pid], () =>
      profiled('broker-ingress', () =>
        autocannonShots(broker.url, {
          connections: CONCURRENCY,
          headers: { 'content-type': 'application/json', 'ce-specversion': '1.0', 'ce-type': TYPE, 'ce-source': '/bench' },
          shots: Array.from({ length: n }, (_, i) => ({ body, headers: { 'ce-id': `${name}-e${i}` } })),
        }),
      ),
    );
    await broker.stop();
    const rawRate = n / rawSecs;
    const ingressRate = ingress.rps;
    const refused = ingress.errors + ingress.non2xx ? `; ${ingress.errors} errors, ${ingress.non2xx} not 202` : '';
    rows.push({
      name: `broker ingress publish vs raw amqplib confirms (${n} events, ${CONCURRENCY} in flight, HTTP load from autocannon${refused})`,
      value: `${ingressRate.toFixed(0)} ev/s`,
      baseline: `${rawRate.toFixed(0)} ev/s`,
      ratio: `${(ingressRate / rawRate).toFixed(2)}x`,
    });
    rows.push({
      name: 'broker ingress CPU per event (HTTP, validation, publish+confirm) vs raw amqplib client CPU per event',
      value: perRequest(ingressCpu, n),
      baseline: perRequest(rawCpu, n),
      ratio: `${(ingressCpu / rawCpu).toFixed(2)}x`,
    });

    // 3. emit -> consumer latency at a fixed rate, through ingress, RabbitMQ and dispatcher.
    const rate = opts.quick ? 200 : 500;
    const seconds = opts.quick ? 2 : 10;
    const sent = new Map<string, number>();
    const latencies: number[] = [];
    const total = rate * seconds;
    let done!: () => void;
    const allIn = new Promise<void>((r) => (done = r));
    const consumer = http.createServer((req, res) => {
      const id = req.headers['ce-id'] as string;
      req.resume();
      req.on('end', () => {
        const t = sent.get(id);
        if (t !== undefined) {
          latencies.push(performance.now() - t);
          sent.delete(id);
        }
        res.writeHead(204).end();
        if (latencies.length >= total) done();
      });
    });
    await new Promise<void>((r) => consumer.listen(0, '127.0.0.1', () => r()));
    const consumerUrl = `http://127.0.0.1:${(consumer.address() as AddressInfo).port}`;
    const trigger: Trigger = {
      name: 'latency',
      filter: { attributes: { type: TYPE } },
      subscriber: 'consumer',
      delivery: { retry: 0, backoffPolicy: 'linear', backoffDelay: 'PT0.1S', timeout: 'PT5S' },
      parallelism: 10,
    };
    const b2 = await startBroker({ rabbitUrl: c.RABBITMQ_URL, name, port: 0, triggers: [trigger], resolve: async () => consumerUrl });
    const t0 = performance.now();
    const inflight: Promise<void>[] = [];
    for (let i = 0; i < total; i++) {
      const due = t0 + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      const id = randomUUID();
      sent.set(id, performance.now());
      inflight.push(post(b2.url, id));
    }
    await Promise.all(inflight);
    await Promise.race([allIn, new Promise((r) => setTimeout(r, 30_000))]);
    await b2.stop();
    await new Promise((r) => consumer.close(r));
    latencies.sort((a, b) => a - b);
    rows.push({ name: `emit -> consumer latency p50 at ${rate} ev/s (parallelism 10, ${latencies.length}/${total} received)`, value: `${pct(latencies, 50).toFixed(1)} ms` });
    rows.push({ name: `emit -> consumer latency p99 at ${rate} ev/s`, value: `${pct(latencies, 99).toFixed(1)} ms` });
  } finally {
    httpAgent.destroy();
    const q = queueNames(name, 'latency');
    for (const x of [rawQueue, sinkQueue, q.main, q.wait, q.due, q.dlq]) await ch.deleteQueue(x).catch(() => {});
    await ch.deleteExchange(exchangeName(name)).catch(() => {});
    await conn.close().catch(() => {});
  }
  return rows;
}
