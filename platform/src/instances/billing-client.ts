/**
 * The instance service's calls to billing, over HTTP through the gateway
 * (a function never reads another service's tables). The customer's own
 * Authorization header is forwarded, so billing acts as that customer.
 *
 * Contract (billing function, POST /api/billing):
 *   {action:'startSubscription', instanceId, plan, trial} → 201 {subscriptionId} (200: the one already open)
 *                                                         | 409 {error:{code:'trial_unavailable'}}
 *                                                         | 409 {error:{code:'create_failed'}} (settled, see create.ts)
 *   {action:'startStagingAddOn', instanceId, stagingId}   → 201/200 {subscriptionId} | 400 {fields:{plan}} | 409
 *   {action:'cancel', subscriptionId, immediate:true}    → 2xx (entitlement ends now, platform/src/instances/README.md 1-2 delete)
 * GET /api/trial-eligibility → 200 {eligible, reason, trialDays}
 */
import { config } from '../config.ts';
import { HttpError } from '../errors.ts';

type Answer = { status: number; body: any };

async function call(path: string, authorization: string, init: { method: 'GET' | 'POST'; body?: unknown }): Promise<Answer> {
  let res: Response;
  let text: string;
  try {
    res = await fetch(`${config().GATEWAY_URL}${path}`, {
      method: init.method,
      headers: {
        authorization,
        accept: 'application/json',
        ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      body: init.body !== undefined ? JSON.stringify(init.body) : undefined,
      signal: AbortSignal.timeout(15_000),
    });
    // The body is part of the answer: a connection lost while reading it is no answer either.
    text = await res.text();
  } catch {
    throw HttpError.unavailable('Billing');
  }
  let body: any;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  if (res.status >= 500 || res.status === 404 || res.status === 429) throw HttpError.unavailable('Billing');
  return { status: res.status, body };
}

/**
 * True when the customer may start a trial; throws 503 when trial-eligibility
 * cannot be reached or could not read what it decides on (reason
 * `unavailable`: it fails closed for the offer, but a create decides nothing
 * on a failed read).
 */
export async function trialEligible(authorization: string): Promise<boolean> {
  const r = await call('/api/trial-eligibility', authorization, { method: 'GET' });
  if (r.status === 200 && r.body?.reason === 'unavailable') throw HttpError.unavailable('Billing');
  return r.status === 200 && r.body?.eligible === true;
}

export type StartResult = { ok: true; subscriptionId: string } | { ok: false; code: 'trial_unavailable' | 'card_required' | 'refused'; message: string };

/**
 * Opens the Kill Bill subscription of a new instance (billing's startSubscription).
 * Throws 503 when the outcome is unknown (no answer, timeout, 5xx): the subscription may exist.
 */
export async function startSubscription(authorization: string, p: { instanceId: string; plan: string; trial: boolean }): Promise<StartResult> {
  const r = await call('/api/billing', authorization, { method: 'POST', body: { action: 'startSubscription', ...p } });
  if ((r.status === 201 || r.status === 200) && typeof r.body?.subscriptionId === 'string') {
    return { ok: true, subscriptionId: r.body.subscriptionId };
  }
  if (r.status === 409 && r.body?.error?.code === 'trial_unavailable') {
    return { ok: false, code: 'trial_unavailable', message: 'No trial available for this account' };
  }
  if (r.status === 402 && r.body?.error?.code === 'card_required') {
    return { ok: false, code: 'card_required', message: String(r.body.error.message ?? 'Add a card first.').slice(0, 200) };
  }
  return { ok: false, code: 'refused', message: String(r.body?.error?.message ?? `billing answered ${r.status}`).slice(0, 200) };
}

/**
 * Opens the staging add-on of copy `stagingId` in instance `instanceId`'s
 * bundle. A refusal (4xx) is passed on as it is, fields included; no answer is 503.
 */
export async function startStagingAddOn(authorization: string, p: { instanceId: string; stagingId: string }): Promise<string> {
  const r = await call('/api/billing', authorization, { method: 'POST', body: { action: 'startStagingAddOn', ...p } });
  if ((r.status === 201 || r.status === 200) && typeof r.body?.subscriptionId === 'string') return r.body.subscriptionId;
  if (r.status >= 400 && r.status < 500 && r.body?.error) throw new HttpError(r.status, String(r.body.error.code ?? 'refused'), String(r.body.error.message ?? 'Billing refused'), r.body.error.fields);
  throw HttpError.unavailable('Billing');
}

/** Cancels a subscription with the entitlement ending now; throws 503 when billing cannot do it. */
export async function cancelSubscriptionNow(authorization: string, subscriptionId: string): Promise<void> {
  const r = await call('/api/billing', authorization, { method: 'POST', body: { action: 'cancel', subscriptionId, immediate: true } });
  if (r.status >= 200 && r.status < 300) return;
  // Already cancelled counts as done: the delete is idempotent.
  if (r.status === 409 && /already|cancel/i.test(String(r.body?.error?.code ?? r.body?.error?.message ?? ''))) return;
  throw HttpError.unavailable('Billing');
}
