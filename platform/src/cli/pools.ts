/**
 * `platform pools list|add|drain|activate|remove`: the database pools
 * (instances/pools.ts). The admin password of `add` is read from the
 * environment (POOL_ADMIN_PASSWORD) or standard input, never the command
 * line (it would show in the process list and the shell history).
 */
import type { Command } from 'commander';
import { closeDatabases } from '../db/index.ts';
import { HttpError } from '../errors.ts';
import { addPool, listPools, removePool, setPoolState, type PoolKind } from '../instances/pools.ts';

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) return '';
  let s = '';
  for await (const chunk of process.stdin) s += chunk;
  return s.trim();
}

function run(fn: () => Promise<string>) {
  return async () => {
    try {
      process.stdout.write(`${await fn()}\n`);
    } catch (err) {
      const fields =
        err instanceof HttpError && err.fields
          ? ` (${Object.entries(err.fields)
              .map(([k, v]) => `${k}: ${v}`)
              .join('; ')})`
          : '';
      process.stderr.write(`${(err as Error).message}${fields}\n`);
      process.exitCode = 1;
    } finally {
      await closeDatabases();
    }
  };
}

/** `platform pools list`: one aligned line per pool (no credentials). */
export async function poolsTable(): Promise<string> {
  const rows = await listPools();
  const head = ['name', 'kind', 'server', 'instances', 'capacity', 'state', 'failures', 'checked'];
  const lines = rows.map((p) => [
    p.name,
    p.kind,
    `${p.host}:${p.port}`,
    String(p.instances),
    String(p.capacity),
    p.state,
    String(p.health_failures),
    p.checked_at ? p.checked_at.toISOString() : 'never',
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  return [head, ...lines]
    .map((l) =>
      l
        .map((c, i) => c.padEnd(w[i]))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function registerPools(program: Command): void {
  const pools = program.command('pools').description('the PostgreSQL servers instance databases are placed on');
  pools
    .command('list')
    .description('each pool with its kind, load, capacity and health')
    .action(() => run(poolsTable)());
  pools
    .command('add <name>')
    .description('register a server (admin password from POOL_ADMIN_PASSWORD or standard input)')
    .requiredOption('--host <host>', 'server address')
    .option('--port <port>', 'server port', '5432')
    .option('--user <user>', 'admin user (superuser, or CREATEDB and CREATEROLE)', 'postgres')
    .option('--kind <kind>', 'shared or dedicated', 'shared')
    .requiredOption('--capacity <n>', 'instances it may hold')
    .action((name: string, o: { host: string; port: string; user: string; kind: string; capacity: string }) =>
      run(async () => {
        const password = process.env.POOL_ADMIN_PASSWORD ?? (await readStdin());
        const p = await addPool({ name, kind: o.kind as PoolKind, host: o.host, port: Number(o.port), adminUser: o.user, adminPassword: password, capacity: Number(o.capacity) });
        return `pool ${p.name} added (${p.kind}, ${p.host}:${p.port}, capacity ${p.capacity})`;
      })(),
    );
  pools
    .command('drain <name>')
    .description('no new databases on this pool')
    .action((name: string) =>
      run(async () => {
        await setPoolState(name, 'draining');
        return `pool ${name} is draining: no new databases are placed on it`;
      })(),
    );
  pools
    .command('activate <name>')
    .description('place new databases on this pool again')
    .action((name: string) =>
      run(async () => {
        await setPoolState(name, 'active');
        return `pool ${name} is active`;
      })(),
    );
  pools
    .command('remove <name>')
    .description('forget a pool that holds no instance')
    .action((name: string) =>
      run(async () => {
        await removePool(name);
        return `pool ${name} removed`;
      })(),
    );
}
