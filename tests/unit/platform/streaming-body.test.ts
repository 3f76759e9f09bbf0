/**
 * A function answering with a Node Readable body streams under
 * faas-js-runtime 3 (platform/src/fn.ts streamingBody): every byte arrives
 * (without the fix 0 bytes did), and backpressure holds: a client that stops
 * reading stops the producer after a few buffers, so memory does not grow
 * with the size of the body.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Server } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { httpFunction } from '@saasodoo/platform/fn';
import { startFunction } from '@saasodoo/platform/host/run-function';

const MiB = 1024 * 1024;
const CHUNKS = 64;

/** A lazily produced body of CHUNKS MiB (chunk i filled with byte i), counting what was produced. */
function producer() {
  const state = { produced: 0 };
  let i = 0;
  const stream = new Readable({
    read() {
      if (i === CHUNKS) return void this.push(null);
      state.produced += MiB;
      this.push(Buffer.alloc(MiB, i++));
    },
  });
  return { stream, state };
}

let last: ReturnType<typeof producer> | undefined;
let server: Server;
let url: string;

beforeAll(async () => {
  const fn = httpFunction({
    name: 'stream-test',
    GET: {
      auth: 'none',
      query: z.object({}).strict(),
      handle: () => {
        last = producer();
        return { status: 200, body: last.stream, headers: { 'content-type': 'application/octet-stream' } };
      },
    },
  });
  server = await startFunction(fn, 0);
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});
afterAll(async () => {
  await new Promise((r) => server?.close(r));
});

function expectedSha256(): string {
  const h = createHash('sha256');
  for (let i = 0; i < CHUNKS; i++) h.update(Buffer.alloc(MiB, i));
  return h.digest('hex');
}

describe('streamed function bodies', () => {
  it('a Readable body arrives whole, with the status and headers the handler set', async () => {
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    const h = createHash('sha256');
    let bytes = 0;
    for await (const c of res.body as unknown as AsyncIterable<Uint8Array>) {
      bytes += c.length;
      h.update(c);
    }
    expect(bytes).toBe(CHUNKS * MiB);
    expect(h.digest('hex')).toBe(expectedSha256());
  });

  it('backpressure: a client that stops reading stops the producer (memory stays bounded)', async () => {
    const res = await new Promise<http.IncomingMessage>((resolve) => http.get(url, resolve));
    await new Promise<void>((resolve) => res.once('data', () => resolve()));
    res.pause();
    // Let the pipe fill every buffer between the producer and the paused socket, then look.
    let before = -1;
    while (before !== last!.state.produced) {
      before = last!.state.produced;
      await new Promise((r) => setTimeout(r, 200));
    }
    console.log(`produced ${(last!.state.produced / MiB).toFixed(0)} MiB of ${CHUNKS} MiB while the client paused`);
    expect(last!.state.produced).toBeLessThan((CHUNKS * MiB) / 4);
    res.destroy();
  });
});
