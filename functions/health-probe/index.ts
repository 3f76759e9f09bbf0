/**
 * `health-probe` (CloudEvent health.tick): one sweep over every running
 * instance (platform/src/instances/README.md 5), a check of every database pool (instances/pool-health.ts), then the storage usage of the instances not measured
 * for STORAGE_USAGE_MINUTES (bounded batch and concurrency), kept on the
 * instance row for the API and reported as instance.quota_exceeded on a crossing.
 */
import { config } from '@saasodoo/platform/config';
import { command, eventFunction } from '@saasodoo/platform/fn';
import { checkPools } from '@saasodoo/platform/instances/pool-health';
import { sweep } from './health.ts';
import { refreshUsage } from '@saasodoo/platform/instances/quota';

export default eventFunction({
  name: 'health-probe',
  on: {
    'com.saasodoo.health.tick': command(async (cmd) => {
      const s = await sweep(cmd);
      cmd.log.info(s, 'health sweep');
      const pools = await checkPools(cmd);
      if (pools.unhealthy) cmd.log.warn(pools, 'database pools unhealthy');
      const u = await refreshUsage(cmd, { everyMinutes: config().STORAGE_USAGE_MINUTES });
      if (u.measured || u.failed) cmd.log.info(u, 'storage usage refreshed');
    }),
  },
  outbox: 'instance',
});
