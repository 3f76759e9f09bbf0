/**
 * `platform up` (what `npm start` runs): checks dependencies, migrates, then
 * runs the broker, the simulators, every function, the gateway and the
 * portal on this machine, and stops them all on Ctrl-C or SIGTERM.
 */
import { localJwtEnv } from '../auth/signing.ts';
import { config } from '../config.ts';
import { migrate } from '../db/migrate.ts';
import { log } from '../log.ts';
import { startGateway, type InstanceRouter } from './gateway.ts';
import { startOperator } from './operator.ts';
import { missingDependencies } from './preflight.ts';
import { hostServices, type HostContext, type RunningService } from './services.ts';
import { Supervisor } from './supervisor.ts';

export type Host = { stop(): Promise<void>; supervisor: Supervisor; table: string[][] };

/**
 * `only` limits the functions (tests); `skip` leaves out host services by
 * name (integration suites skip the portal: building and serving it costs
 * seconds they do not need).
 */
export async function up(opts: { only?: string[]; quiet?: boolean; skip?: string[] } = {}): Promise<Host> {
  const c = config();
  const missing = await missingDependencies(c);
  if (missing.length) throw new HostStartError(missing.join('\n'));
  await migrate();

  // Every function verifies tokens with the public keys; only the signers (login, refresh) get the private key.
  const jwt = await localJwtEnv();
  const functionEnv: Record<string, string> = { K_SINK: c.K_SINK ?? `http://127.0.0.1:${c.BROKER_PORT}`, ...jwt.all };
  const supervisor = new Supervisor({ portBase: c.FUNCTION_PORT_BASE, env: functionEnv, only: opts.only, secretEnv: jwt.signers });
  let instanceRouter: InstanceRouter | undefined;
  const ctx: HostContext = { config: c, supervisor, functionEnv, setInstanceRouter: (r) => (instanceRouter = r) };

  const running: { name: string; svc: RunningService }[] = [];
  const table: string[][] = [];
  const stopAll = async () => {
    for (const { name, svc } of running.reverse()) {
      await svc.stop().catch((err) => log.warn({ err, service: name }, 'stop failed'));
    }
  };
  try {
    for (const phase of ['before', 'after'] as const) {
      if (phase === 'after') {
        await supervisor.start();
        running.push({ name: 'functions', svc: { stop: () => supervisor.stop() } });
        const gateway = await startGateway({
          port: c.GATEWAY_PORT,
          supervisor,
          baseDomain: c.BASE_DOMAIN,
          instanceRouter: (sub) => (instanceRouter ? instanceRouter(sub) : Promise.resolve(undefined)),
          customDomain: customDomainLookup(),
        });
        running.push({ name: 'gateway', svc: { stop: () => new Promise((r) => gateway.close(() => r())) } });
        table.push(['gateway', `http://localhost:${c.GATEWAY_PORT}`]);
        const operator = await startOperator({
          port: c.OPERATOR_PORT,
          supervisor,
          status: () => ({ runtimeDriver: c.RUNTIME_DRIVER, functions: supervisor.status(), services: table.map(([name, endpoint]) => ({ name, endpoint })) }),
        });
        running.push({
          name: 'operator',
          svc: {
            stop: () =>
              new Promise((r) => {
                operator.close(() => r());
                operator.closeAllConnections();
              }),
          },
        });
        table.push(['operator', `http://127.0.0.1:${c.OPERATOR_PORT}  (platform status / invoke; OPERATOR_TOKEN or .data/secrets.json)`]);
      }
      for (const s of hostServices.filter((h) => h.phase === phase && !opts.skip?.includes(h.name) && (h.enabled?.(c) ?? true))) {
        const svc = await s.start(ctx);
        running.push({ name: s.name, svc });
        table.push([s.name, svc.endpoint ?? '']);
      }
    }
  } catch (err) {
    await stopAll();
    throw err;
  }
  for (const f of supervisor.status()) {
    table.push([`fn ${f.name}`, `http://127.0.0.1:${f.port}  (${f.invoke}${f.minScale === 0 ? ', scales to zero' : ''})`]);
  }
  return { stop: stopAll, supervisor, table };
}

export class HostStartError extends Error {}

/** Formats rows as an aligned two-column table. */
export function formatTable(rows: string[][]): string {
  const w = Math.max(...rows.map((r) => r[0].length));
  return rows.map(([a, b]) => `  ${a.padEnd(w)}  ${b}`).join('\n');
}

/**
 * The gateway's view of verified custom domains, read from the instance
 * database and kept 5 s (hits and misses alike), so a request to a custom
 * domain costs no query on the hot path and a new verification routes within seconds.
 */
function customDomainLookup(): (host: string) => Promise<string | undefined> {
  const cache = new Map<string, { sub: string | undefined; at: number }>();
  return async (host) => {
    const hit = cache.get(host);
    if (hit && Date.now() - hit.at < 5000) return hit.sub;
    const { subdomainForDomain } = await import('../instances/domains.ts');
    const sub = await subdomainForDomain(host).catch(() => undefined);
    if (cache.size > 10_000) cache.clear();
    cache.set(host, { sub, at: Date.now() });
    return sub;
  };
}
