/**
 * The fence on billing's startSubscription: a subscription opens only for an
 * instance of the caller that is waiting for one (status `pending_payment`,
 * with the same plan and trial). Without it any customer could open
 * subscriptions for ids that are no instance, and learn from the answer
 * whether an id belonged to someone else.
 *
 * Billing never reads the instance service's tables, so it asks the instances
 * function over HTTP with the caller's own Authorization, the same hop
 * instances takes to billing (instances/billing-client.ts). The instances
 * function writes the row before it calls billing, so a genuine create
 * always passes; an instance the caller cannot see answers 404, whoever owns it.
 */
import { config } from '../config.ts';
import { HttpError } from '../errors.ts';

type InstanceView = { id: string; customerId: string; plan: string; trial: boolean; status: string };

/** The caller's instances as the instances function lists them; 503 when it cannot answer. */
async function instancesOf(authorization: string): Promise<InstanceView[]> {
  let res: Response;
  let body: { items?: InstanceView[] } | undefined;
  try {
    // The list, not `?id=`: reading one running instance hands out its one-time admin password.
    res = await fetch(`${config().GATEWAY_URL}/api/instances`, {
      headers: { authorization, accept: 'application/json' },
      signal: AbortSignal.timeout(10_000),
    });
    body = (await res.json().catch(() => undefined)) as typeof body;
  } catch {
    throw HttpError.unavailable('Instances');
  }
  if (res.status === 401) throw HttpError.unauthorized();
  if (res.status !== 200 || !Array.isArray(body?.items)) throw HttpError.unavailable('Instances');
  return body.items;
}

/**
 * Throws unless `instanceId` is an instance of `customerId` still waiting for
 * its subscription with this plan and trial: 404 (no such instance of the
 * caller), 409 `instance_state` (no longer waiting), 409 `instance_mismatch`
 * (another plan or trial than the instance was created with).
 */
export async function requirePendingInstance(authorization: string, customerId: string, o: { instanceId: string; plan: string; trial: boolean }): Promise<void> {
  const found = (await instancesOf(authorization)).find((i) => i.id === o.instanceId && i.customerId === customerId);
  if (!found) throw new HttpError(404, 'not_found', 'No such instance', { instanceId: 'no instance of yours has this id' });
  if (found.status !== 'pending_payment') {
    throw new HttpError(409, 'instance_state', 'This instance is not waiting for a subscription', { instanceId: `is ${found.status}` });
  }
  const fields: Record<string, string> = {};
  if (found.plan !== o.plan) fields.plan = 'differs from the plan the instance was created with';
  if (found.trial !== o.trial) fields.trial = 'differs from the instance';
  if (Object.keys(fields).length) throw new HttpError(409, 'instance_mismatch', 'The subscription must match its instance', fields);
}
