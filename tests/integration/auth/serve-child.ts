/**
 * Child process for the log-capture test: serves every auth function in one
 * process and prints `{"ports": {...}}` on its first stdout line. Everything
 * else it writes is what the functions log.
 */
import { startFunction } from '@saasodoo/platform/host/run-function';
import type { FaasFunction } from '@saasodoo/platform/fn';
import { freePort } from '../../helpers/ports.ts';
import { AUTH_FUNCTIONS } from './serve.ts';

const ports: Record<string, number> = {};
for (const name of AUTH_FUNCTIONS) {
  const mod = (await import(`../../../functions/${name}/index.ts`)) as { default: FaasFunction };
  ports[name] = await freePort();
  await startFunction(mod.default, ports[name]);
}
process.stdout.write(`${JSON.stringify({ ports })}\n`);
