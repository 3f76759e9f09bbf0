/**
 * Liveness under a busy event loop: an HTTP function answers /health/liveness
 * with 200 OK even right after its event loop was blocked. faas-js-runtime's
 * default probe (overload-protection) answers 503 then, and fails on a
 * Fastify reply ("res.setHeader is not a function"), which would make Knative
 * restart a function for being busy. HTTP functions used that default until
 * the kit gave them its own liveness, as event functions already had.
 */
import net, { type AddressInfo, type Server } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { z } from 'zod';
import { eventFunction, httpFunction } from '@saasodoo/platform/fn';
import { startFunction } from '@saasodoo/platform/host/run-function';

let servers: Server[] = [];

beforeAll(async () => {
  const http = httpFunction({ name: 'busy-http', GET: { auth: 'none', query: z.object({}).strict(), handle: () => ({ status: 200, body: {} }) } });
  const events = eventFunction({ name: 'busy-events', on: {} });
  servers = [await startFunction(http, 0), await startFunction(events, 0)];
});

afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
});

/** Sends a probe, then blocks the event loop, so the server reads the probe only after the block (as a busy process would). */
async function probeAfterBlock(port: number): Promise<string> {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise((r) => socket.once('connect', r));
  let answer = '';
  socket.on('data', (d) => (answer += d));
  const done = new Promise((r) => socket.once('end', r));
  socket.write('GET /health/liveness HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  const until = Date.now() + 300;
  while (Date.now() < until); // a CPU-heavy request, or a loaded machine, as the probe sees it
  await done;
  return answer;
}

it('answers 200 OK on liveness right after the event loop was blocked, for HTTP and event functions', async () => {
  for (const s of servers) {
    const answer = await probeAfterBlock((s.address() as AddressInfo).port);
    expect(answer.split('\r\n')[0]).toBe('HTTP/1.1 200 OK');
    expect(answer.endsWith('OK')).toBe(true);
  }
});
