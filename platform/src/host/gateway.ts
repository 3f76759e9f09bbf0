/**
 * The local gateway on :8080, the stand-in for the cluster's ingress:
 * `/api/<function>` goes to that function's `/` (query string kept, request id
 * added); `<subdomain>.localhost` goes to an instance through the runtime's
 * router. Only HTTP functions are exposed: CloudEvent functions are reached
 * by the broker alone, as on the cluster. Operator routes (status, invoking
 * any function) live on the loopback operator listener (operator.ts), never here:
 * whoever reaches this port may be a customer.
 */
import { randomUUID, timingSafeEqual } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { config } from '../config.ts';
import { answerClientErrorsAsJson, HttpError, writeError } from '../errors.ts';
import { log } from '../log.ts';
import { localSecret } from '../secrets.ts';
import type { Supervisor } from './supervisor.ts';

export type InstanceRouter = (subdomain: string) => Promise<{ port: number } | { page: { status: number; html: string } } | undefined>;

export type GatewayOptions = {
  port: number;
  supervisor: Supervisor;
  baseDomain: string;
  instanceRouter?: InstanceRouter;
  /** The instance subdomain a verified custom domain routes to (the Host of a request not under baseDomain). */
  customDomain?: (host: string) => Promise<string | undefined>;
};

const MAX_BODY = 1024 * 1024;
const MAX_JSON_DEPTH = 64;
const PROXY_HEADER = 'x-saasodoo-proxy-token';

/** The token the portal's server side sends to vouch for the X-Forwarded-For it sets. */
export function gatewayProxyToken(): string {
  return localSecret('GATEWAY_PROXY_TOKEN', config().GATEWAY_PROXY_TOKEN);
}

function vouched(req: IncomingMessage, token: string): boolean {
  const header = req.headers[PROXY_HEADER];
  if (typeof header !== 'string' || header.length !== token.length) return false;
  return timingSafeEqual(Buffer.from(header), Buffer.from(token));
}

/**
 * Upstream connections are kept alive and reused (a new TCP connection and
 * a new socket on the function side per request was most of the cost of a
 * forward). No socket cap: each function has as many as the load in flight
 * needs; LIFO reuse keeps the idle set small after a burst, and an idle
 * socket is dropped after 60 s, before the function's own 65 s
 * keep-alive timeout (run-function.ts) could close it under a request.
 */
export const upstreamAgent = new http.Agent({ keepAlive: true, scheduling: 'lifo', timeout: 60_000, maxFreeSockets: 64 });
// Hop-by-hop headers (RFC 9110 7.6.1) and h2c upgrade offers are not forwarded.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'http2-settings', 'host', PROXY_HEADER]);

/** Answers JSON with a content-length. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(data), ...headers });
  res.end(data);
}

/** Answers the platform's JSON error shape (errors.ts writeError, as every edge does). */
export function sendError(res: ServerResponse, status: number, code: string, message: string, extra: { fields?: Record<string, string> } = {}) {
  writeError(res, new HttpError(status, code, message, extra.fields));
}

const EMPTY = Buffer.alloc(0);

function readBody(req: IncomingMessage): Promise<Buffer | 'too_large'> {
  // Neither header: HTTP/1.1 says there is no body (a GET, mostly).
  if (req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined) return Promise.resolve(EMPTY);
  if (Number(req.headers['content-length'] ?? 0) > MAX_BODY) return Promise.resolve('too_large');
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        req.off('data', onData);
        req.pause();
        resolve('too_large');
      } else chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    req.once('error', reject);
  });
}

/**
 * Why a JSON body is refused before it reaches a function, or undefined.
 * The function runtime would answer these in its own shape (empty body,
 * prototype keys) or overflow its stack (absurd nesting).
 */
export function jsonProblem(body: Buffer): string | undefined {
  if (!body.length) return 'empty (send {} for no fields)';
  const text = body.toString('utf8');
  // One scan for nesting depth and object keys (the runtime would overflow on
  // absurd nesting, and __proto__ / constructor.prototype keys pollute
  // prototypes), then JSON.parse without a reviver for validity: a reviver
  // calls back into JS for every value and cost more than the rest together.
  const stack: { object: boolean; key?: string }[] = [];
  let prototypeKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const start = i;
      let escaped = false;
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c /* \ */) {
          escaped = true;
          i++;
        } else if (d === 0x22) break;
      }
      const top = stack[stack.length - 1];
      if (!top?.object) continue;
      let j = i + 1;
      while (j < text.length && (text[j] === ' ' || text[j] === '\n' || text[j] === '\r' || text[j] === '\t')) j++;
      if (text[j] !== ':') continue;
      let key = text.slice(start + 1, i);
      if (escaped) {
        try {
          key = JSON.parse(text.slice(start, i + 1)) as string;
        } catch {
          return 'not valid JSON';
        }
      }
      top.key = key;
      if (key === '__proto__' || (key === 'prototype' && stack.length > 1 && stack[stack.length - 2]!.object && stack[stack.length - 2]!.key === 'constructor')) prototypeKey = true;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      stack.push({ object: c === 0x7b });
      if (stack.length > MAX_JSON_DEPTH) return `nested deeper than ${MAX_JSON_DEPTH} levels`;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) stack.pop();
  }
  try {
    JSON.parse(text);
  } catch {
    return 'not valid JSON';
  }
  return prototypeKey ? 'using a forbidden key (__proto__ or constructor.prototype)' : undefined;
}

/** 413, then close the connection: the rest of the body is never read, so the socket cannot be reused. */
function refuseTooLarge(req: IncomingMessage, res: ServerResponse): void {
  res.setHeader('connection', 'close');
  res.on('finish', () => req.destroy());
  sendError(res, 413, 'payload_too_large', 'Body over 1 MiB', { fields: { body: 'at most 1 MiB' } });
}

function forwardHeaders(req: IncomingMessage, requestId: string, length: number, proxyToken: string): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  const connection = req.headers.connection;
  const connectionListed = connection
    ? connection
        .toLowerCase()
        .split(',')
        .map((s) => s.trim())
    : undefined;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i]!.toLowerCase();
    if (HOP_BY_HOP.has(k) || connectionListed?.includes(k)) continue;
    const prev = out[k];
    out[k] = prev === undefined ? raw[i + 1]! : Array.isArray(prev) ? [...prev, raw[i + 1]!] : [String(prev), raw[i + 1]!];
  }
  out['x-request-id'] = requestId;
  // The functions rate-limit by the first X-Forwarded-For entry: only the
  // portal (vouching with the proxy token) may set it; anyone else's is replaced.
  const peer = req.socket.remoteAddress ?? '';
  const claimed = vouched(req, proxyToken) ? req.headers['x-forwarded-for'] : undefined;
  out['x-forwarded-for'] = claimed ? `${claimed}, ${peer}` : peer;
  out['content-length'] = String(length);
  return out;
}

const RESPONSE_DROPPED = new Set(['connection', 'keep-alive', 'x-request-id']);

/** The upstream's response headers as raw pairs, hop-by-hop ones dropped and our request id added. */
function responseHeaders(up: IncomingMessage, requestId: string): string[] {
  const out: string[] = [];
  const raw = up.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) if (!RESPONSE_DROPPED.has(raw[i]!.toLowerCase())) out.push(raw[i]!, raw[i + 1]!);
  out.push('x-request-id', requestId);
  return out;
}

/**
 * Proxies a buffered request to 127.0.0.1:port and streams the answer back.
 * A GET or HEAD that fails on a reused keep-alive socket before any answer
 * (the function closed it as it was handed out) is sent once more on a new one.
 */
function proxy(req: IncomingMessage, res: ServerResponse, port: number, pathAndQuery: string, body: Buffer, requestId: string, proxyToken: string, retry = true): Promise<void> {
  return new Promise((resolve, reject) => {
    const upstream = http.request({ host: '127.0.0.1', port, method: req.method, path: pathAndQuery, headers: forwardHeaders(req, requestId, body.length, proxyToken), agent: upstreamAgent }, (up) => {
      res.writeHead(up.statusCode ?? 502, responseHeaders(up, requestId));
      up.pipe(res);
      up.on('end', resolve);
      up.on('error', resolve);
    });
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      if (retry && upstream.reusedSocket && (req.method === 'GET' || req.method === 'HEAD') && err.code === 'ECONNRESET' && !res.headersSent) {
        proxy(req, res, port, pathAndQuery, body, requestId, proxyToken, false).then(resolve, reject);
      } else reject(err);
    });
    upstream.end(body);
  });
}

function subdomainOf(hostHeader: string | undefined, baseDomain: string): string | undefined {
  const host = hostOf(hostHeader);
  const suffix = `.${baseDomain}`;
  return host.endsWith(suffix) ? host.slice(0, -suffix.length) : undefined;
}

function hostOf(hostHeader: string | undefined): string {
  return (hostHeader ?? '').replace(/:\d+$/, '').toLowerCase();
}

/** A name that could be a customer's domain: dotted, not an IP address, not the gateway's own loopback names. */
function maybeCustomDomain(host: string): boolean {
  return host.includes('.') && !/^[\d.]+$/.test(host) && !host.startsWith('[') && host !== 'localhost';
}

/**
 * Sends a request to function `name` (started on demand) and streams its
 * answer back: the one forwarding path of the gateway and the operator listener.
 */
export async function forwardToFunction(req: IncomingMessage, res: ServerResponse, supervisor: Supervisor, name: string, search: string, requestId: string, proxyToken: string): Promise<void> {
  const body = await readBody(req);
  if (body === 'too_large') return refuseTooLarge(req, res);
  const ct = String(req.headers['content-type'] ?? '');
  if (req.method === 'POST' && /^application\/json\b/i.test(ct)) {
    const problem = jsonProblem(body);
    if (problem) return sendError(res, 400, 'invalid_json', `The body is ${problem}`, { fields: { body: problem } });
  }
  let port: number;
  try {
    const base = await supervisor.url(name);
    port = Number(base.slice(base.lastIndexOf(':') + 1));
  } catch (err) {
    log.warn({ fn: name, err }, 'function unavailable');
    return sendError(res, 502, 'bad_gateway', `Function ${name} is not running`);
  }
  await proxy(req, res, port, `/${search}`, body, requestId, proxyToken).catch(() => {
    if (!res.headersSent) sendError(res, 502, 'bad_gateway', `Function ${name} is not answering`);
    else res.destroy();
  });
  supervisor.touch(name);
}

/** Starts the gateway; resolves to its server once listening. */
export async function startGateway(opts: GatewayOptions): Promise<http.Server> {
  const proxyToken = gatewayProxyToken();
  const server = http.createServer(async (req, res) => {
    const requestId = String(req.headers['x-request-id'] ?? '') || randomUUID();
    try {
      const url = new URL(req.url ?? '/', 'http://gateway');
      const host = hostOf(req.headers.host);
      const sub = subdomainOf(req.headers.host, opts.baseDomain) ?? (opts.customDomain && maybeCustomDomain(host) ? await opts.customDomain(host) : undefined);
      if (sub && opts.instanceRouter) {
        const target = await opts.instanceRouter(sub);
        if (!target) return sendError(res, 404, 'not_found', `No instance at ${sub}.${opts.baseDomain}`);
        if ('page' in target) {
          res.writeHead(target.page.status, { 'content-type': 'text/html; charset=utf-8' });
          return res.end(target.page.html);
        }
        const body = await readBody(req);
        if (body === 'too_large') return refuseTooLarge(req, res);
        return await proxy(req, res, target.port, url.pathname + url.search, body, requestId, proxyToken).catch(() => sendError(res, 502, 'bad_gateway', 'The instance is not answering'));
      }
      const name = url.pathname.match(/^\/api\/([a-z0-9-]+)\/?$/)?.[1];
      const spec = name ? opts.supervisor.spec(name) : undefined;
      if (!name || !spec || spec.invoke === 'cloudevent') {
        return sendError(res, 404, 'not_found', name ? `No function named ${name}` : `No route for ${url.pathname}`);
      }
      if (req.method !== 'GET' && req.method !== 'POST' && req.method !== 'HEAD') {
        return sendError(res, 405, 'method_not_allowed', 'Use GET or POST');
      }
      await forwardToFunction(req, res, opts.supervisor, name, url.search, requestId, proxyToken);
    } catch (err) {
      log.error({ err, requestId }, 'gateway error');
      if (!res.headersSent) writeError(res, err, requestId);
      else res.destroy();
    }
  });
  server.keepAliveTimeout = 65_000;
  answerClientErrorsAsJson(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, '127.0.0.1', () => resolve());
  });
  return server;
}
