/**
 * The broker as a host service (phase 'before', so K_SINK answers before any
 * function starts). The routing table is validated first: a bad
 * events/triggers.yaml stops `platform up` with the list of problems.
 * Subscribers are resolved through the supervisor, which starts a
 * scaled-to-zero function on its first event.
 */
import { loadTriggers } from '@saasodoo/events/triggers';
import type { HostService } from '../host/host-service.ts';
import { startBroker } from './broker.ts';

export const brokerService: HostService = {
  name: 'broker',
  phase: 'before',
  async start(ctx) {
    const c = ctx.config;
    const triggers = loadTriggers();
    const broker = await startBroker({
      rabbitUrl: c.RABBITMQ_URL,
      name: c.BROKER_NAME,
      port: c.BROKER_PORT,
      // `platform up --only` runs some functions: triggers of the others wait in their queues.
      triggers: triggers.filter((t) => ctx.supervisor.has(t.subscriber)),
      resolve: (fn) => ctx.supervisor.url(fn),
    });
    return { stop: () => broker.stop(), endpoint: `${broker.url}  (K_SINK, ${triggers.length} triggers)` };
  },
};
