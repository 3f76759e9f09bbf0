/**
 * `health-probe` (CloudEvent health.tick): one sweep over every running
 * instance (SPEC 8), a check of every database pool (instances/pool-health.ts), then the storage usage of the instances not measured
 * for STORAGE_USAGE_MINUTES (bounded batch and concurrency), kept on the
 * instance row for the API and reported as instance.quota_exceeded on a crossing.
 */
import { config } from '@saasodoo/platform/config';
import { eventFunction, type ReceivedEvent } from '@saasodoo/platform/fn';
import { sweep } from '@saasodoo/platform/instances/health';
import { checkPools } from '@saasodoo/platform/instances/pool-health';
import { refreshUsage } from '@saasodoo/platform/instances/quota';
import { stopOutbox } from '@saasodoo/platform/instances/relay';

export default eventFunction({
  name: 'health-probe',
  on: {
    'com.saasodoo.health.tick': async (e: ReceivedEvent<{ at: string }>) => {
      const cmd = { eventId: e.id, eventType: e.type, data: e.data, traceparent: e.traceparent, log: e.log };
      const s = await sweep(cmd);
      e.log.info(s, 'health sweep');
      const pools = await checkPools(cmd);
      if (pools.unhealthy) e.log.warn(pools, 'database pools unhealthy');
      const u = await refreshUsage(cmd, { everyMinutes: config().STORAGE_USAGE_MINUTES });
      if (u.measured || u.failed) e.log.info(u, 'storage usage refreshed');
    },
  },
  shutdown: stopOutbox,
});
