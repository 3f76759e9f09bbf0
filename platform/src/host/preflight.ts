/**
 * Checks that PostgreSQL, Redis and RabbitMQ answer before anything starts,
 * and says exactly what to run when one does not.
 */
import net from 'node:net';
import type { Config } from '../config.ts';
import { scrubString } from '../log.ts';

export type Dependency = { name: string; url: string; hint: string };

export function dependencies(c: Config): Dependency[] {
  return [
    { name: 'PostgreSQL', url: c.DATABASE_ADMIN_URL, hint: 'sudo apt-get install postgresql && sudo pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start' },
    { name: 'Redis', url: c.REDIS_URL, hint: 'sudo apt-get install redis-server && redis-server --daemonize yes' },
    { name: 'RabbitMQ', url: c.RABBITMQ_URL, hint: 'sudo apt-get install rabbitmq-server && sudo rabbitmq-server -detached' },
  ];
}

/** Resolves when host:port accepts a TCP connection within `timeoutMs`. */
export function reachable(url: string, timeoutMs = 2000): Promise<boolean> {
  const u = new URL(url);
  const port = Number(u.port || { 'postgres:': 5432, 'postgresql:': 5432, 'redis:': 6379, 'amqp:': 5672 }[u.protocol] || 80);
  return new Promise((resolve) => {
    const socket = net.connect({ host: u.hostname, port, timeout: timeoutMs });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}

/** The dependencies that do not answer, each with a message saying how to start it. */
export async function missingDependencies(c: Config): Promise<string[]> {
  const deps = dependencies(c);
  const ok = await Promise.all(deps.map((d) => reachable(d.url)));
  return deps.filter((_, i) => !ok[i]).map((d) => `${d.name} is not reachable at ${scrubString(d.url)}.\n    Start it with: ${d.hint}`);
}
