/** GET /api/trial-eligibility: may the caller start a trial (platform/src/billing/README.md 2)? Any error answers not eligible. */
import { z } from 'zod';
import { httpFunction, route } from '@saasodoo/platform/fn';
import { trialEligibility } from '@saasodoo/platform/billing/service';

export default httpFunction({
  name: 'trial-eligibility',
  GET: route<Record<string, never>, undefined, 'customer'>({
    auth: 'customer',
    query: z.object({}).strict(),
    handle: async ({ caller }) => {
      const e = await trialEligibility(caller.userId);
      return { body: { eligible: e.eligible, reason: e.reason, trialDays: e.eligible ? e.trialDays : null } };
    },
  }),
});
