/**
 * The audit trail of people's actions. Every POST an HTTP function handles is
 * a request to change something (state changes are POST only), so the kit
 * (fn.ts) records each one it hands to a handler as an `audit.action` event:
 * who (the authenticated caller, or anonymous), what (`<function>` or
 * `<function>.<body.action>`), on which customer and instance, and how it
 * ended. The `audit` function stores them (functions/audit). Recording in the
 * kit means no function can forget it; a handler only adds what the kit
 * cannot know (whose account an anonymous login was for, the instance it made).
 */
import type { Caller } from './auth/verify.ts';
import type { ServiceDatabase } from './db/services.ts';
import { buildEvent, send } from './emit.ts';
import type { Logger } from './log.ts';
import { PREFIX } from '@saasodoo/events';
import { appendEvent } from './outbox.ts';

/** What a handler may add to its result about the action (stripped from the response). */
export type AuditNote = { customerId?: string; instanceId?: string };

type Outcome = 'succeeded' | 'refused' | 'denied' | 'failed';

function outcomeOf(status: number): Outcome {
  if (status < 400) return 'succeeded';
  if (status === 401 || status === 403) return 'denied';
  return status < 500 ? 'refused' : 'failed';
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const asUuid = (v: unknown): string | undefined => (typeof v === 'string' && UUID.test(v) ? v.toLowerCase() : undefined);

/** `account` + `{action: 'changePassword'}` → `account.changepassword`: one action name per operation. */
function actionName(fn: string, body: unknown): string {
  const op = body && typeof body === 'object' ? (body as Record<string, unknown>).action : undefined;
  const name = typeof op === 'string' && /^[A-Za-z][A-Za-z0-9_]{0,40}$/.test(op) ? `${fn}.${op}` : fn;
  return name.toLowerCase();
}

/**
 * Emits the audit event of one handled POST. A function with an outbox puts
 * it there (durable: the relay sends it once the broker is back; concurrent
 * requests' entries share one statement and commit); one without
 * sends it straight to the broker. Never throws: the action has happened (or
 * failed) whatever the trail does, so an entry that could go nowhere is
 * logged, without its body, instead of turning a done action into an error.
 */
export async function recordAction(o: { fn: string; caller?: Caller; body: unknown; status: number; requestId: string; note?: AuditNote; log: Logger; outbox?: ServiceDatabase }): Promise<void> {
  const b = (o.body && typeof o.body === 'object' ? o.body : {}) as Record<string, unknown>;
  const outcome = outcomeOf(o.status);
  // A successful anonymous request that names its account (a login, a reset link) was made by that customer.
  const self = !o.caller && outcome === 'succeeded' ? asUuid(o.note?.customerId) : undefined;
  const actor = self ? 'customer' : !o.caller ? 'anonymous' : o.caller.role === 'admin' ? 'operator' : 'customer';
  const data = {
    actor,
    actorId: o.caller?.userId ?? self,
    // An operator acts on someone else's account: only the handler's note names whose.
    customerId: asUuid(o.note?.customerId) ?? (actor === 'customer' ? o.caller?.userId : undefined),
    instanceId: asUuid(o.note?.instanceId) ?? asUuid(b.instanceId) ?? (o.fn === 'instance-action' ? asUuid(b.id) : undefined),
    action: actionName(o.fn, o.body),
    outcome,
    status: o.status,
    requestId: o.requestId,
    at: new Date().toISOString(),
  } as const;
  if (o.outbox) {
    const outbox = o.outbox;
    try {
      await appendEvent(outbox, `${PREFIX}audit.action`, data);
      return;
    } catch (err) {
      o.log.warn({ reason: (err as Error).message }, 'audit entry not queued; sending it straight to the broker');
    }
  }
  try {
    await send(buildEvent('com.saasodoo.audit.action', data));
  } catch (err) {
    o.log.error({ audit: data, reason: (err as Error).message }, 'audit entry not recorded');
  }
}
