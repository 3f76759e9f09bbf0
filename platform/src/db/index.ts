/**
 * pg-promise pools, one per service role. A function asks for the database
 * of its service (`db('auth')`) and gets a pool logged in as that service's
 * role, which can reach nothing else.
 */
import pgPromise, { type IDatabase, type ITask } from 'pg-promise';
import { log } from '../log.ts';
import { connectionFor, databaseName, DATABASE_ROLE, PROVISIONER_ROLE, runtimeRole, type ServiceDatabase } from './services.ts';

export const pgp = pgPromise({ capSQL: true });
// bigint counts come back as numbers; our ids are uuids and counts stay small.
pgp.pg.types.setTypeParser(20, (v: string) => Number(v));

export type Db = IDatabase<Record<string, never>>;
export type Tx = ITask<Record<string, never>>;

const pools = new Map<string, Db>();

function pool(key: string, make: () => Db): Db {
  let p = pools.get(key);
  if (!p) {
    p = make();
    // pg-promise drops its own pool 'error' listener as soon as the pool is
    // ending, but idle connections close later: one cut meanwhile (a database
    // dropped or restarted) would be an uncaught exception and kill the process.
    p.$pool.on('error', (err) => log.warn({ pool: key, reason: err.message }, 'idle database connection lost'));
    pools.set(key, p);
  }
  return p;
}

/** The pool of a service database, connected as its own role. */
export function db(service: ServiceDatabase): Db {
  return pool(service, () => pgp(connectionFor(runtimeRole(service), databaseName(service))));
}

/**
 * A second pool on a service database, for session locks held through a
 * whole operation (instances/locks.ts). The work itself runs on db(): were
 * the locks on that pool too, as many operations as it has connections would
 * each hold one and wait forever for another (seen under load as 503s).
 */
export function lockDb(service: ServiceDatabase): Db {
  // A name of its own: the lock sessions stand out in pg_stat_activity, and pg-promise does not warn of a
  // "duplicate database object" (the same settings as db(service), which is this pool's whole point).
  return pool(`${service}:locks`, () => {
    const c = connectionFor(DATABASE_ROLE[service], databaseName(service));
    return pgp({ ...c, application_name: `${c.application_name}:locks` });
  });
}

/**
 * The provisioner's pool on the maintenance database: it creates and drops
 * per-instance databases and roles (CREATEDB, CREATEROLE, not superuser).
 */
export function provisionerDb(): Db {
  return pool('provisioner', () => pgp(connectionFor(PROVISIONER_ROLE, 'postgres')));
}

/** Ends every pool of this process (shutdown, tests). */
export async function closeDatabases(): Promise<void> {
  const all = [...pools.values()];
  pools.clear();
  await Promise.all(all.map((p) => p.$pool.end()));
}

export { databaseName, roleName, DATABASE_ROLE, type ServiceDatabase } from './services.ts';
