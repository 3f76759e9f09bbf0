/**
 * API figure (issue 11): authenticated `GET /api/instances` (token check,
 * session liveness in Redis, one query) against a bare function, both as
 * their own processes behind the same local gateway, under the same
 * closed-loop load (concurrent clients, keep-alive). Requests/s, p50 and p99.
 */
import type { AddressInfo } from 'node:net';
import { startGateway } from '../../platform/src/host/gateway.ts';
import type { Supervisor } from '../../platform/src/host/supervisor.ts';
import { createTestUser } from '../helpers/auth.ts';
import { inNamespace, pct, spawnFunction, untilOk } from './_shared.ts';

const CONCURRENCY = 16;

async function load(url: string, headers: Record<string, string>, seconds: number): Promise<{ rps: number; p50: number; p99: number; errors: number }> {
  const lat: number[] = [];
  let errors = 0;
  const end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (performance.now() < end) {
      const t = performance.now();
      try {
        const res = await fetch(url, { headers });
        await res.arrayBuffer();
        if (res.status !== 200) errors++;
      } catch {
        errors++;
      }
      lat.push(performance.now() - t);
    }
  }));
  const took = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  return { rps: lat.length / took, p50: pct(lat, 50), p99: pct(lat, 99), errors };
}

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
      await load(`${base}/instances`, auth, 1); // warm-up
      await load(`${base}/bare`, {}, 1);
      const real = await load(`${base}/instances`, auth, seconds);
      const bare = await load(`${base}/bare`, {}, seconds);
      const f = (x: number) => `${x.toFixed(1)} ms`;
      return [
        { name: `GET /api/instances (Bearer) via gateway, ${CONCURRENCY} clients: req/s`, value: real.rps.toFixed(0), baseline: `${bare.rps.toFixed(0)} (bare fn)`, ratio: (real.rps / bare.rps).toFixed(2) },
        { name: 'GET /api/instances p50', value: f(real.p50), baseline: f(bare.p50), ratio: (real.p50 / bare.p50).toFixed(2) },
        { name: 'GET /api/instances p99', value: f(real.p99), baseline: f(bare.p99), ratio: (real.p99 / bare.p99).toFixed(2) },
        { name: 'GET /api/instances errors', value: String(real.errors), baseline: String(bare.errors) },
      ];
    } finally {
      gateway.closeAllConnections();
      await new Promise((r) => gateway.close(r));
      fns.instances.kill();
      fns.bare.kill();
    }
  });
}
