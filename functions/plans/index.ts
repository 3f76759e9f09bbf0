/** GET /api/plans: the plans on sale (SPEC 3). */
import { z } from 'zod';
import { config } from '@saasodoo/platform/config';
import { httpFunction } from '@saasodoo/platform/fn';
import { availablePlans } from '@saasodoo/platform/plans';

export default httpFunction({
  name: 'plans',
  GET: {
    auth: 'optional',
    query: z.object({}).strict(),
    handle: () => ({ body: { items: availablePlans(config().TEST_PLANS).map(({ testOnly, ...p }) => p) } }),
  },
});
