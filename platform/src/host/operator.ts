/**
 * The operator listener of the local host (OPERATOR_PORT, loopback only):
 * `GET /status` (functions, ports, pids, services) for `platform status`, and
 * `POST /invoke/<function>` for `platform invoke --cloudevent`, which reaches
 * any function, event-only ones included, as `func invoke` does in-cluster.
 *
 * These once lived under /_platform/ on the gateway, where any customer could
 * forge a CloudEvent (an `instance.create_failed` to lifecycle cancels their
 * own subscription while the instance runs on). Here every request needs the
 * operator token: loopback alone is not enough, since local-runtime tenant
 * processes run on this machine too.
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import http, { type IncomingMessage } from 'node:http';
import { config } from '../config.ts';
import { writeError } from '../errors.ts';
import { log } from '../log.ts';
import { localSecret } from '../secrets.ts';
import { forwardToFunction, sendError, sendJson } from './gateway.ts';
import type { Supervisor } from './supervisor.ts';

/** The operator's Bearer token: OPERATOR_TOKEN, else generated once into DATA_DIR/secrets.json (mode 600). */
export function operatorToken(): string {
  return localSecret('OPERATOR_TOKEN', config().OPERATOR_TOKEN);
}

/** Where the CLI reaches the operator listener. */
export function operatorUrl(): string {
  return `http://127.0.0.1:${config().OPERATOR_PORT}`;
}

/** Constant time whatever the lengths: both sides are hashed to 32 bytes first. */
function authorized(req: IncomingMessage, token: string): boolean {
  const given = /^Bearer (\S+)$/.exec(String(req.headers.authorization ?? ''))?.[1] ?? '';
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(given), digest(token)) && given.length > 0;
}

export type OperatorOptions = {
  port: number;
  supervisor: Supervisor;
  /** The body of GET /status. */
  status: () => unknown;
};

/** Starts the operator listener on 127.0.0.1; resolves to its server once listening. */
export async function startOperator(opts: OperatorOptions): Promise<http.Server> {
  const token = operatorToken();
  // Nothing sent here vouches for an X-Forwarded-For: a token no request carries.
  const noProxyToken = randomBytes(24).toString('base64url');
  const server = http.createServer(async (req, res) => {
    const requestId = randomUUID();
    try {
      // Authenticate before routing, so a caller without the token learns nothing about the routes.
      if (!authorized(req, token)) {
        return sendError(res, 401, 'unauthorized', 'The operator token is required (Authorization: Bearer <OPERATOR_TOKEN>)', { fields: { authorization: 'missing or wrong operator token' } });
      }
      const url = new URL(req.url ?? '/', 'http://operator');
      if (url.pathname === '/status' && req.method === 'GET') return sendJson(res, 200, await opts.status());
      const name = req.method === 'POST' ? /^\/invoke\/([a-z0-9-]+)$/.exec(url.pathname)?.[1] : undefined;
      if (!name || !opts.supervisor.spec(name)) {
        return sendError(res, 404, 'not_found', name ? `No function named ${name}` : `No route for ${req.method} ${url.pathname}`);
      }
      // The function never sees the operator's credential.
      delete req.headers.authorization;
      await forwardToFunction(req, res, opts.supervisor, name, url.search, requestId, noProxyToken);
    } catch (err) {
      log.error({ err, requestId }, 'operator listener error');
      if (!res.headersSent) writeError(res, err, requestId);
      else res.destroy();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, '127.0.0.1', () => resolve());
  });
  return server;
}
