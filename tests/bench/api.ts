/**
 * API figure (issue 11): authenticated `GET /api/instances` (token check,
 * session liveness in Redis, one query) against a bare function, both as
 * their own processes behind the same local gateway, under the same
 * closed-loop load (concurrent clients, keep-alive) from autocannon in a
 * separate process. Requests/s, p50 and p99.
 */
import type { AddressInfo } from 'node:net';
import { startGateway } from '@saasodoo/platform/host/gateway';
import type { Supervisor } from '@saasodoo/platform/host/supervisor';
import { createTestUser } from '../helpers/auth.ts';
import { autocannon, type Load } from './_load.ts';
import { inNamespace, spawnFunction, untilOk } from './_shared.ts';

const CONCURRENCY = 16;

export async function bench(opts: { quick: boolean }) {
  return inNamespace(async () => {
    const user = await createTestUser();
    const fns = { instances: await spawnFunction('instances'), bare: await spawnFunction('bare') };
    // The gateway as the host runs it, routing to the two processes.
    const supervisor = {
      spec: (n: string) => (n in fns ? { invoke: 'http' } : undefined),
      url: async (n: string) => `http://127.0.0.1:${fns[n as keyof typeof fns].port}`,
      touch: () => {},
    } as unknown as Supervisor;
    const gateway = await startGateway({ port: 0, supervisor, baseDomain: 'localhost' });
    const base = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}/api`;
    const auth = { authorization: `Bearer ${user.accessToken}` };
    try {
      await untilOk(`${base}/instances`, performance.now(), auth);
      await untilOk(`${base}/bare`, performance.now());
      const seconds = opts.quick ? 3 : 10;
      const load = (url: string, headers: Record<string, string>, s: number): Promise<Load> => autocannon(url, { connections: CONCURRENCY, seconds: s, headers });
      await load(`${base}/instances`, auth, 1); // warm-up
      await load(`${base}/bare`, {}, 1);
      const real = await load(`${base}/instances`, auth, seconds);
      const bare = await load(`${base}/bare`, {}, seconds);
      const f = (x: number) => `${x} ms`;
      return [
        {
          name: `GET /api/instances (Bearer) via gateway, ${CONCURRENCY} clients: req/s`,
          value: real.rps.toFixed(0),
          baseline: `${bare.rps.toFixed(0)} (bare fn)`,
          ratio: (real.rps / bare.rps).toFixed(2),
        },
        { name: 'GET /api/instances p50', value: f(real.p50), baseline: f(bare.p50), ratio: (real.p50 / bare.p50).toFixed(2) },
        { name: 'GET /api/instances p99', value: f(real.p99), baseline: f(bare.p99), ratio: (real.p99 / bare.p99).toFixed(2) },
        { name: 'GET /api/instances errors + non-2xx', value: String(real.errors + real.non2xx), baseline: String(bare.errors + bare.non2xx) },
      ];
    } finally {
      gateway.closeAllConnections();
      await new Promise((r) => gateway.close(r));
      fns.instances.kill();
      fns.bare.kill();
    }
  });
}
