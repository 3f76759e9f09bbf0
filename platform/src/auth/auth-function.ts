/**
 * `httpFunction` for the auth functions (signup ... account): they own the
 * auth database, so they may check session liveness there when Redis is down
 * (verify.ts), and they publish their outbox with a relay started at init.
 */
import { config } from '../config.ts';
import { db } from '../db/index.ts';
import { httpFunction, type FaasFunction, type HttpFunctionDef } from '../fn.ts';
import { startRelay, type Relay } from '../outbox.ts';
import { useSessionDatabaseFallback } from './sessions.ts';

let relay: Relay | undefined;

/**
 * Publishes committed outbox rows now (call after a transaction that
 * enqueued events). The relay starts lazily; without K_SINK (unit and
 * integration tests) rows stay in the outbox for a later relay.
 */
export function kickOutbox(): void {
  if (!config().K_SINK) return;
  relay ??= startRelay(db('auth'));
  relay.kick();
}

/** Stops the outbox relay (shutdown). */
export async function stopOutbox(): Promise<void> {
  const r = relay;
  relay = undefined;
  await r?.stop();
}

export function authFunction(def: HttpFunctionDef): FaasFunction {
  useSessionDatabaseFallback();
  return httpFunction({
    checks: [function authDatabase() { return db('auth').one('SELECT 1'); }],
    ...def,
    init: async () => {
      kickOutbox();
      await def.init?.();
    },
    shutdown: async () => {
      await stopOutbox();
      await def.shutdown?.();
    },
  });
}
