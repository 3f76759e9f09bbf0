/**
 * Runs one function under faas-js-runtime: `run-function.ts <name>` with PORT
 * set. Used by the local host for every function process and as the entry of
 * a built bundle.
 */
import { existsSync } from 'node:fs';
import net from 'node:net';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import faas from 'faas-js-runtime';
import { HttpError, writeError } from '../errors.ts';
import { RESERVED_QUERY_KEYS, type FaasFunction } from '../fn.ts';

/**
 * faas-js-runtime copies query keys onto its context, so `?headers=` or
 * `?cloudevent=` would overwrite real request data. Such requests are
 * refused before the runtime sees them.
 */
export function guardReservedQueryKeys(server: Server): void {
  const listeners = server.listeners('request') as ((req: IncomingMessage, res: ServerResponse) => void)[];
  server.removeAllListeners('request');
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const q = new URL(req.url ?? '/', 'http://x').searchParams;
    const bad = RESERVED_QUERY_KEYS.find((k) => q.has(k));
    if (bad) {
      writeError(res, HttpError.badRequest(`Query parameter ${bad} is not allowed`, { [bad]: 'reserved name' }));
      return;
    }
    for (const l of listeners) l(req, res);
  });
}

let crashLogInstalled = false;

/**
 * faas-js-runtime exits on an uncaught exception without saying what it was:
 * log it first, so a crashed function can be diagnosed.
 */
function installCrashLog(): void {
  if (crashLogInstalled) return;
  crashLogInstalled = true;
  process.prependListener('uncaughtException', (err) => {
    process.stderr.write(`uncaught exception in function process: ${err?.stack ?? err}\n`);
  });
}

/** The process events faas-js-runtime (through `death`) listens to on every start. */
const RUNTIME_EVENTS = ['uncaughtException', 'SIGINT', 'SIGTERM', 'SIGQUIT'] as const;

/**
 * faas-js-runtime adds an uncaughtException and three signal listeners per
 * start and never removes them, so a process that starts functions again and
 * again (test harnesses, the soak) piles them up: 11 starts warn of a leak,
 * and every closed server stays reachable from `process`. The listeners a
 * start added go when its server closes.
 */
function releaseRuntimeListenersOnClose(server: Server, before: Map<string, Set<Listener>>): void {
  const added = RUNTIME_EVENTS.flatMap((e) =>
    listenersOf(e)
      .filter((l) => !before.get(e)!.has(l))
      .map((l) => [e, l] as const),
  );
  server.once('close', () => {
    for (const [e, l] of added) process.removeListener(e, l);
  });
}

type Listener = (...args: unknown[]) => void;
/** process.listeners for a signal or an error event alike (the typings take one kind per overload). */
const listenersOf = (e: string): Listener[] => (process as unknown as { listeners(e: string): Listener[] }).listeners(e);

/** Starts a function module on `port` (0: a free one); resolves to its HTTP server. */
export async function startFunction(fn: FaasFunction, port: number): Promise<Server> {
  // faas-js-runtime treats 0 as "use the default 8080", so pick the free port here.
  if (port === 0) port = await freePort();
  // `config` points at a folder without func.yaml: settings come from our env, not the cwd.
  const options = { port, logLevel: 'warn', config: path.dirname(new URL(import.meta.url).pathname) };
  installCrashLog();
  const before = new Map(RUNTIME_EVENTS.map((e) => [e, new Set(listenersOf(e))]));
  const server: Server = await faas.start(fn as Parameters<typeof faas.start>[0], options as unknown as Parameters<typeof faas.start>[1]);
  releaseRuntimeListenersOnClose(server, before);
  guardReservedQueryKeys(server);
  // The gateway keeps upstream connections alive for up to 60 s idle: outlast it, so it is always the one to close them.
  server.keepAliveTimeout = 65_000;
  return server;
}

async function main() {
  const name = process.argv[2];
  const dir = process.argv[3] ?? path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../../functions', name ?? '');
  if (!name) {
    process.stderr.write('usage: run-function <name> [dir]\n');
    process.exit(2);
  }
  process.env.FUNCTION_NAME ??= name;
  const mod = await import(pathToFileURL(path.join(dir, fsIndex(dir))).href);
  await serveFunctionProcess(mod.default as FaasFunction);
}

/**
 * The body of a function process the local host starts (from source here,
 * from a bundle in host/bundles.ts): serve on PORT, and do not outlive the
 * supervisor that started it (a killed host would leave orphans holding
 * ports and connections).
 */
export async function serveFunctionProcess(fn: FaasFunction): Promise<void> {
  await startFunction(fn, Number(process.env.PORT ?? 8080));
  const parent = process.ppid;
  setInterval(() => process.ppid !== parent && process.kill(process.pid, 'SIGTERM'), 2000).unref();
}

function fsIndex(dir: string): string {
  return ['index.ts', 'index.js'].find((f) => existsSync(path.join(dir, f))) ?? 'index.ts';
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((err) => {
    process.stderr.write(`function failed to start: ${err?.stack ?? err}\n`);
    process.exit(1);
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer().once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}
