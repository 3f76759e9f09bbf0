/**
 * GET /api/plans: the plans on sale (platform/src/billing/README.md 1), from Kill Bill's catalogue plus
 * the entitlement table. Trial fields appear only for a caller who is
 * eligible (anonymous visitors see them: a new signup is eligible).
 * `odooVersions`: the Odoo versions a new instance may ask for (the list
 * `instances` validates against), so the portal never hard-codes them.
 * `instanceAddress`: where an instance lives, `{subdomain}` standing for its
 * subdomain, so the signup form shows the full address it will get.
 */
import { z } from 'zod';
import { httpFunction } from '@saasodoo/platform/fn';
import { instanceUrl } from '@saasodoo/platform/instances/names';
import { odooVersions } from '@saasodoo/platform/plans';
import { plansOnSale, trialEligibility } from '@saasodoo/platform/billing/service';

export default httpFunction({
  name: 'plans',
  GET: {
    auth: 'optional',
    query: z.object({}).strict(),
    handle: async ({ caller }) => {
      const withTrial = caller ? (await trialEligibility(caller.userId)).eligible : true;
      return { body: { items: await plansOnSale(withTrial), odooVersions: odooVersions(), instanceAddress: instanceUrl('{subdomain}') } };
    },
  },
});
