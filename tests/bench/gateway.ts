/**
 * Gateway figure (issue 23): the bare function (answers `{"items":[]}`, its
 * own process) loaded directly and through the local gateway (started here
 * as the host starts it), both with autocannon from a separate process at
 * the same connection count: what forwarding costs. Goal: the gateway keeps
 * ≥ 70% of direct.
 */
import type { AddressInfo } from 'node:net';
import { startGateway } from '@saasodoo/platform/host/gateway';
import type { Supervisor } from '@saasodoo/platform/host/supervisor';
import { perRequest, profiled, withCpu } from './_kit.ts';
import { autocannon, describe } from './_load.ts';
import { spawnFunction, untilOk } from './_shared.ts';

const CONNECTIONS = 50;

export async function bench(opts: { quick: boolean }) {
  const bare = await spawnFunction('bare');
  const supervisor = {
    spec: (n: string) => (n === 'bare' ? { invoke: 'http' } : undefined),
    url: async () => `http://127.0.0.1:${bare.port}`,
    touch: () => {},
  } as unknown as Supervisor;
  const gateway = await startGateway({ port: 0, supervisor, baseDomain: 'localhost' });
  const direct = `http://127.0.0.1:${bare.port}/`;
  const via = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}/api/bare`;
  try {
    await untilOk(direct, performance.now());
    await untilOk(via, performance.now());
    const seconds = opts.quick ? 3 : 10;
    await autocannon(direct, { connections: CONNECTIONS, seconds: 1 }); // warm-up (JIT, sockets)
    await autocannon(via, { connections: CONNECTIONS, seconds: 1 });
    // CPU of the function process and of the gateway (this process) during each load.
    const pids = [bare.child.pid!, process.pid];
    const [d, dCpu] = await withCpu(pids, () => autocannon(direct, { connections: CONNECTIONS, seconds }));
    const [g, gCpu] = await withCpu(pids, () => profiled('gateway-get', () => autocannon(via, { connections: CONNECTIONS, seconds })));
    const body = JSON.stringify({ name: 'x'.repeat(200), items: Array.from({ length: 20 }, (_, i) => ({ i, tag: `t${i}` })) });
    const post = { connections: CONNECTIONS, seconds, method: 'POST' as const, headers: { 'content-type': 'application/json' }, body };
    const dp = await autocannon(direct, post);
    const gp = await autocannon(via, post);
    return [
      { name: `bare fn GET through the gateway vs direct (${CONNECTIONS} connections)`, value: describe(g), baseline: describe(d), ratio: (g.rps / d.rps).toFixed(2) },
      {
        name: 'CPU per GET: gateway process vs the function process it forwards to (direct run)',
        value: perRequest(gCpu[1], g.requests),
        baseline: perRequest(dCpu[0], d.requests),
        ratio: (gCpu[1] / g.requests / (dCpu[0] / d.requests)).toFixed(2),
      },
      { name: `bare fn POST ${body.length} B JSON through the gateway vs direct`, value: describe(gp), baseline: describe(dp), ratio: (gp.rps / dp.rps).toFixed(2) },
    ];
  } finally {
    gateway.closeAllConnections();
    await new Promise((r) => gateway.close(r));
    bare.kill();
  }
}
