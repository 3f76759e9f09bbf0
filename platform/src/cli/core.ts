/** `platform up | migrate | status | invoke`. */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import type { Command } from 'commander';
import { config } from '../config.ts';
import { closeDatabases } from '../db/index.ts';
import { migrate } from '../db/migrate.ts';
import { operatorToken, operatorUrl } from '../host/operator.ts';
import { formatTable, HostStartError, up } from '../host/up.ts';

export function registerCore(program: Command): void {
  program
    .command('up')
    .description('run the whole platform on this machine (what npm start does)')
    .action(async () => {
      // Handle Ctrl-C from the first moment: a stop asked for during start-up
      // runs as soon as start-up has finished, so nothing is left behind.
      let stopRequested = false;
      let stopNow: (() => Promise<void>) | undefined;
      const onSignal = () => (stopNow ? stopNow() : (stopRequested = true));
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      let host;
      try {
        host = await up();
      } catch (err) {
        if (err instanceof HostStartError) {
          process.stderr.write(`Cannot start:\n  ${err.message}\n`);
          process.exit(1);
        }
        throw err;
      }
      process.stdout.write(`SaaSOdoo is running:\n${formatTable(host.table)}\nCtrl-C stops everything.\n`);
      let stopping = false;
      stopNow = async () => {
        if (stopping) return;
        stopping = true;
        process.stdout.write('Stopping...\n');
        await host.stop();
        process.exit(0);
      };
      if (stopRequested) await stopNow();
    });

  program
    .command('migrate')
    .description('create missing databases and roles, then apply pending migrations (safe to repeat)')
    .action(async () => {
      const r = await migrate();
      const applied = Object.entries(r.applied).flatMap(([db, names]) => names.map((n) => `${db}: ${n}`));
      process.stdout.write(
        [
          r.createdRoles.length ? `created roles: ${r.createdRoles.join(', ')}` : 'roles: up to date',
          r.createdDatabases.length ? `created databases: ${r.createdDatabases.join(', ')}` : 'databases: up to date',
          applied.length ? `applied:\n  ${applied.join('\n  ')}` : 'migrations: up to date',
        ].join('\n') + '\n',
      );
      await closeDatabases();
    });

  program
    .command('status')
    .description('what the local host runs, and the health of each function')
    .action(async () => {
      const base = operatorUrl();
      let status: { runtimeDriver?: string; functions: { name: string; port: number; state: string; invoke: string; restarts: number }[]; services: { name: string; endpoint: string }[] };
      let res: Response;
      try {
        res = await fetch(`${base}/status`, { headers: operatorHeaders() });
      } catch {
        process.stderr.write(`The platform is not running (nothing answers at ${base}). Start it with: npm start\n`);
        process.exit(1);
      }
      if (!res.ok) {
        process.stderr.write(`${res.status} ${await res.text()}\n${res.status === 401 ? OPERATOR_TOKEN_HINT : ''}`);
        process.exit(1);
      }
      status = (await res.json()) as typeof status;
      const rows = await Promise.all(
        status.functions.map(async (f) => {
          let health = '-';
          if (f.state === 'running') {
            const r = await fetch(`http://127.0.0.1:${f.port}/health/readiness`).catch(() => undefined);
            health = r?.ok ? 'ready' : 'not ready';
          }
          return [f.name, `${f.state.padEnd(8)} ${health.padEnd(9)} ${f.invoke.padEnd(10)} :${f.port} restarts ${f.restarts}`];
        }),
      );
      // Which driver runs the instances (local processes, Docker containers, Kubernetes): the host's, not this shell's setting.
      process.stdout.write(
        `runtime driver: ${status.runtimeDriver ?? 'unknown (a host older than this CLI)'}\nservices:\n${formatTable(status.services.map((s) => [s.name, s.endpoint]))}\nfunctions:\n${formatTable(rows)}\n`,
      );
    });

  program
    .command('invoke <function>')
    .description('call a function: plain HTTP through the gateway, or a CloudEvent in binary mode (through the operator listener, or --broker)')
    .option('--data <json>', 'request body or event data: JSON, or @file')
    .option('--query <qs>', 'query string for HTTP calls, e.g. id=123')
    .option('--method <method>', 'HTTP method (default GET without data, POST with)')
    .option('--token <token>', 'Bearer token for HTTP calls')
    .option('--cloudevent', 'send a CloudEvent in binary mode')
    .option('--type <type>', 'CloudEvent type')
    .option('--source <source>', 'CloudEvent source', '/saasodoo/cli')
    .option('--subject <subject>', 'CloudEvent subject')
    .option('--broker', 'send the CloudEvent through the broker instead of straight to the function')
    .action(async (name: string, o) => {
      const data = o.data === undefined ? undefined : o.data.startsWith('@') ? fs.readFileSync(o.data.slice(1), 'utf8') : o.data;
      const res = await invoke(name, { ...o, data });
      process.stdout.write(`${res.status}\n${res.body}\n`);
      if (res.status === 401 && o.cloudevent && !o.broker) process.stderr.write(OPERATOR_TOKEN_HINT);
      if (res.status >= 400) process.exitCode = 1;
    });
}

const OPERATOR_TOKEN_HINT = 'The operator token was refused: run this where the platform runs (same DATA_DIR), or set OPERATOR_TOKEN to its token.\n';

/** The operator listener's credential (operator.ts): from OPERATOR_TOKEN or this machine's DATA_DIR/secrets.json. */
function operatorHeaders(): Record<string, string> {
  return { authorization: `Bearer ${operatorToken()}` };
}

export type InvokeOptions = {
  data?: string;
  query?: string;
  method?: string;
  token?: string;
  cloudevent?: boolean;
  type?: string;
  source?: string;
  subject?: string;
  broker?: boolean;
};

/** Calls a function the way `platform invoke` does; returns status and body text. */
export async function invoke(name: string, o: InvokeOptions): Promise<{ status: number; body: string }> {
  const c = config();
  if (o.data !== undefined) JSON.parse(o.data); // fail early on bad JSON
  if (o.cloudevent || o.broker) {
    if (!o.type) throw new Error('--type is required for a CloudEvent');
    // Straight to one function through the operator listener (which answers 404 for an unknown one), or to the broker.
    const target = o.broker ? (c.K_SINK ?? `http://127.0.0.1:${c.BROKER_PORT}`) : `${operatorUrl()}/invoke/${name}`;
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'ce-specversion': '1.0',
      'ce-id': randomUUID(),
      'ce-type': o.type,
      'ce-source': o.source ?? '/saasodoo/cli',
    };
    if (o.subject) headers['ce-subject'] = o.subject;
    if (!o.broker) Object.assign(headers, operatorHeaders());
    const res = await fetch(target, { method: 'POST', headers, body: o.data ?? '{}' }).catch(() => {
      throw new Error(`Nothing answers at ${new URL(target).origin}: is the platform running (npm start)?`);
    });
    return { status: res.status, body: await res.text() };
  }
  const method = (o.method ?? (o.data !== undefined ? 'POST' : 'GET')).toUpperCase();
  const headers: Record<string, string> = {};
  if (o.data !== undefined) headers['content-type'] = 'application/json';
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  const res = await fetch(`${c.GATEWAY_URL}/api/${name}${o.query ? `?${o.query}` : ''}`, { method, headers, body: o.data });
  return { status: res.status, body: await res.text() };
}
