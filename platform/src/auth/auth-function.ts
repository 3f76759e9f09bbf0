/**
 * `httpFunction` for the auth functions (signup ... account): they own the
 * auth database, so they may check session liveness there when Redis is down
 * (verify.ts), and they publish its outbox (the kit's `outbox` option).
 */
import { db } from '../db/index.ts';
import { httpFunction, type FaasFunction, type HttpFunctionDef } from '../fn.ts';
import { useSessionDatabaseFallback } from './sessions.ts';

export function authFunction(def: HttpFunctionDef): FaasFunction {
  useSessionDatabaseFallback();
  return httpFunction({
    checks: [
      function authDatabase() {
        return db('auth').one('SELECT 1');
      },
    ],
    outbox: 'auth',
    ...def,
  });
}
