/**
 * `domain-routes`: applies an instance's verified custom domains
 * (`instance.routes`: runtime routing and Odoo's address), and once a day
 * checks the DNS of claims still pending (a customer who created the records
 * and never pressed "Check now" is verified all the same) and of verified
 * domains (released a week after their records went away).
 */
import { db } from '@saasodoo/platform/db/index';
import { eventFunction } from '@saasodoo/platform/fn';
import { checkDomain, claimsToCheck } from '@saasodoo/platform/instances/domains';
import { getInstance } from '@saasodoo/platform/instances/repository';
import { applyRoutes } from '@saasodoo/platform/instances/routes';

export default eventFunction({
  name: 'domain-routes',
  on: {
    'com.saasodoo.instance.routes': async (e) => {
      await applyRoutes({ eventId: e.id, eventType: e.type, data: e.data, traceparent: e.traceparent, log: e.log });
    },
    'com.saasodoo.schedule.daily': async (e) => {
      let verified = 0;
      for (const c of await claimsToCheck()) {
        const row = await getInstance(db('instance'), c.instance_id);
        if (!row) continue;
        // One claim's DNS outage must not stop the others' checks.
        const claim = await checkDomain(row, c.domain).catch((err: Error) => {
          e.log.warn({ instanceId: row.id, reason: err.message }, 'domain check failed');
          return undefined;
        });
        if (claim?.verified_at) verified++;
      }
      e.log.info({ verified }, 'custom domains checked');
    },
  },
  outbox: 'instance',
});
