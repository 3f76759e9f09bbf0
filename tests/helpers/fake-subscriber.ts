/**
 * An in-process HTTP server standing in for a CloudEvent function in broker
 * tests: it records every delivery (binary-mode headers and body) and
 * answers with whatever the test's handler returns.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type Delivery = { headers: Record<string, string>; body: string; at: number };
export type Answer = { status: number; headers?: Record<string, string>; body?: string };

export type FakeSubscriber = {
  url: string;
  received: Delivery[];
  /** Resolves once `n` deliveries arrived (rejects after `ms`). */
  waitFor(n: number, ms?: number): Promise<Delivery[]>;
  close(): Promise<void>;
};

export async function fakeSubscriber(answer: (d: Delivery, index: number) => Answer | Promise<Answer> = () => ({ status: 204 })): Promise<FakeSubscriber> {
  const received: Delivery[] = [];
  let waiters: { n: number; resolve: () => void }[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
      const d: Delivery = { headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() };
      const index = received.length;
      received.push(d);
      const a = await answer(d, index);
      res.writeHead(a.status, a.headers ?? {});
      res.end(a.body ?? '');
      waiters = waiters.filter((w) => (received.length >= w.n ? (w.resolve(), false) : true));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    received,
    waitFor(n, ms = 20_000) {
      if (received.length >= n) return Promise.resolve(received);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only ${received.length} of ${n} deliveries arrived`)), ms);
        waiters.push({ n, resolve: () => (clearTimeout(timer), resolve(received)) });
      });
    },
    close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
  };
}
