/**
 * An HTTP proxy a test controls, for "the work was done but its answer was
 * lost" (a timeout or a dropped connection after the server acted), which a
 * TCP cut (tcp-proxy.ts) cannot time: every request is forwarded; for one
 * that `lose` matches, the upstream answer is read in full (so the upstream
 * has acted and answered), then, once `hold` (if set) resolves, the client's
 * connection is destroyed instead of answered. For one that `slow` matches,
 * the answer (given by the upstream at once) is passed on only once `hold`
 * resolves: a client acting on a state that has changed meanwhile.
 *
 *   const p = await lossyHttpProxy(simulatorUrl);
 *   p.lose = (r) => r.method === 'POST' && r.path === '/1.0/kb/subscriptions';
 *   // ... the client sees a reset connection; Kill Bill did create the subscription
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type ProxiedRequest = { method: string; path: string; body: string };

export type LossyHttpProxy = {
  url: string;
  /** Which requests lose their answer; unset = every answer goes through. */
  lose?: (r: ProxiedRequest) => boolean;
  /** Which requests get their (already given) answer only once `hold` resolves. */
  slow?: (r: ProxiedRequest) => boolean;
  /** Until this resolves, a lost or slow answer keeps the client waiting (a slow server). */
  hold?: Promise<void>;
  /** Slow answers read from the upstream so far. */
  held: ProxiedRequest[];
  /** Answers lost so far, with the status the upstream had given. */
  lost: (ProxiedRequest & { status: number; answer: string })[];
  close(): Promise<void>;
};

export async function lossyHttpProxy(target: string): Promise<LossyHttpProxy> {
  const to = new URL(target);
  const state: LossyHttpProxy = { url: '', lost: [], held: [], close: async () => {} };
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const r: ProxiedRequest = { method: req.method ?? 'GET', path: new URL(req.url ?? '/', 'http://x').pathname, body: body.toString('utf8') };
    const lose = state.lose?.(r) ?? false;
    const slow = !lose && (state.slow?.(r) ?? false);
    const up = http.request({ host: to.hostname, port: to.port, path: req.url, method: req.method, headers: req.headers }, async (answer) => {
      const parts: Buffer[] = [];
      for await (const c of answer) parts.push(c as Buffer);
      if (lose) {
        state.lost.push({ ...r, status: answer.statusCode ?? 0, answer: Buffer.concat(parts).toString('utf8') });
        await state.hold;
        res.socket?.destroy();
        return;
      }
      if (slow) {
        state.held.push(r);
        await state.hold;
      }
      res.writeHead(answer.statusCode ?? 502, answer.headers).end(Buffer.concat(parts));
    });
    up.on('error', () => res.socket?.destroy());
    up.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return state;
}
