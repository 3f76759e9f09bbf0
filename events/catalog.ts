/**
 * The event catalogue (events/README.md): every CloudEvent type the platform sends or
 * receives, declared once with its source, data schema and emitters. `emit`
 * validates against it before sending and every consumer validates on receipt.
 */
import { z } from 'zod';
import { text, textProblemIn } from './text.ts';

export const PREFIX = 'com.saasodoo.';
export const KILLBILL_PREFIX = 'org.killbill.';

const uuid = z.uuid();
// Names as stored: the HTTP door holds them to one line, but rows from before that rule may hold a tab or newline.
const storedText = text({ multiline: true });
const instance = z.object({ instanceId: uuid, customerId: uuid });
const suspensionSeq = z.number().int().positive().optional();
const customer = z.object({ customerId: uuid, email: z.email() });
/** Every status an instance can be in (its rules: platform/src/instances/states.ts). The one list. */
export const instanceStatus = z.enum([
  'pending_payment',
  'provisioning',
  'running',
  'stopping',
  'stopped',
  'starting',
  'restarting',
  'backing_up',
  'restoring',
  'suspended',
  'error',
  'terminating',
  'terminated',
  'migrating',
]);
export const billingStatus = z.enum(['trial', 'payment_required', 'paid', 'overdue', 'suspended']);

/**
 * Kill Bill's push notification body (reference/killbill.md 1.2), carried as the data of org.killbill.* events.
 * Tolerant of every shape Kill Bill 0.22 to 0.24 sends (issue 21, item 11): a field that may be null may also
 * be absent (read as null), unknown keys are dropped, and eventType is an open string (new types are stored
 * and ignored by consumers), because a refused notification is retried by Kill Bill and then lost.
 */
export const killbillNotification = z.object({
  eventType: text().min(1).max(100),
  accountId: uuid.nullable().default(null),
  objectType: text().max(100).nullable().default(null),
  objectId: uuid.nullable().default(null),
  metaData: text({ multiline: true })
    .max(60_000)
    .nullable()
    .superRefine((s, ctx) => {
      if (s === null) return;
      let inner: unknown;
      try {
        inner = JSON.parse(s);
      } catch {
        ctx.addIssue({ code: 'custom', message: 'must be a string holding JSON' });
        return;
      }
      // Escaped (`\u0000`) inside the JSON text, a control character is only found once parsed.
      const p = textProblemIn(inner);
      if (p) ctx.addIssue({ code: 'custom', message: `holds JSON whose ${p.path.join('.') || 'value'} ${p.message}` });
    })
    .default(null),
});
export type KillbillNotification = z.infer<typeof killbillNotification>;

type Entry = { source: string; data: z.ZodType; emitters: string[]; description: string };

/** Keeps each entry's own schema type, so EventData<'x'> is the parsed data of `x` (not `unknown`). */
function def<D extends z.ZodType>(emitters: string[], data: D, description: string): Entry & { data: D } {
  return { source: `/saasodoo/${emitters[0]}`, data, emitters, description };
}

export const catalog = {
  // Commands
  'instance.provision': def(['lifecycle', 'instance-action', 'staging'], instance.extend({ fromStep: z.string().optional() }), 'provision (or resume provisioning of) an instance'),
  'instance.start': def(['instance-action'], instance, 'start a stopped instance'),
  'instance.stop': def(['instance-action'], instance, 'stop a running instance'),
  'instance.restart': def(['instance-action'], instance, 'restart a running instance'),
  // `seq` orders suspend/resume of one subscription: a broker retry can deliver an older one after a newer one.
  'instance.suspend': def(
    ['lifecycle', 'instance-ops'],
    instance.extend({ reason: text({ multiline: true }).max(500), seq: suspensionSeq }),
    'suspend for non-payment: runtime scaled to zero, data kept',
  ),
  'instance.resume': def(['lifecycle', 'instance-ops'], instance.extend({ seq: suspensionSeq }), 'resume a suspended instance'),
  'instance.terminate': def(['lifecycle', 'instance-action', 'instance-ops'], instance.extend({ reason: text({ multiline: true }).max(500) }), 'final backup, then remove everything'),
  'instance.backup': def(['instance-action', 'instance-ops'], instance.extend({ backupId: uuid, kind: z.enum(['manual', 'daily', 'safety', 'final']) }), 'take a backup'),
  'instance.restore': def(['instance-action'], instance.extend({ backupId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$/) }), 'restore a backup (a uuid, or a driver-named safety backup)'),
  'instance.quota': def(['lifecycle'], instance.extend({ plan: z.string() }), 'apply the plan resources and storage quota'),
  'instance.routes': def(['domains'], instance, "apply the instance's verified custom domains (routing, certificate, Odoo's address)"),
  'health.tick': def(['host'], z.object({ at: z.iso.datetime() }), 'schedule: probe running instances'),
  'billing.account.ensure': def(['platform'], customer, 'ensure the Kill Bill account of a customer exists'),
  'schedule.daily': def(['host'], z.object({ at: z.iso.datetime() }), 'daily schedule: backups and trial warnings'),
  // Facts
  'user.registered': def(['signup'], customer.extend({ firstName: storedText, lastName: storedText }), 'a customer signed up'),
  'user.signup_attempted': def(['signup'], z.object({ email: z.email() }), 'someone tried to sign up with a taken address'),
  'user.verification_requested': def(['signup'], customer.extend({ firstName: storedText, verifyUrl: z.url() }), 'send the verification link (never logged)'),
  'user.verified': def(['verify-email'], customer.extend({ firstName: storedText }), 'a customer confirmed their address'),
  'user.password_reset_requested': def(['password-reset'], customer.extend({ resetUrl: z.url() }), 'send the reset link (never logged)'),
  'user.password_changed': def(['password-reset', 'account'], customer, 'a password was changed'),
  'instance.create_failed': def(['instances'], instance, 'a create gave up without a clear answer from billing: no subscription may stay open for this instance'),
  'instance.requested': def(['instances'], instance.extend({ plan: z.string(), trial: z.boolean(), subdomain: z.string(), name: storedText.max(200).optional() }), 'a customer asked for an instance'),
  'instance.progress': def(
    ['provision', 'instance-ops'],
    instance.extend({ operation: z.string(), step: z.string(), index: z.number().int().min(0), total: z.number().int().positive() }),
    'a step of a long operation',
  ),
  'instance.ready': def(
    ['provision'],
    instance.extend({
      url: z.url(),
      email: z.email().optional(),
      name: storedText.max(200).optional(),
      // A staging copy: the original's name and the moment its data was copied (each refresh is a new copy).
      stagingOf: z.object({ name: storedText.max(200), copiedAt: z.iso.datetime({ offset: true }) }).optional(),
    }),
    'an instance is running for the first time, or a staging copy is ready with fresh data',
  ),
  'instance.failed': def(['provision'], instance.extend({ step: z.string(), reason: text({ multiline: true }) }), 'provisioning failed'),
  'instance.status_changed': def(
    ['instances', 'provision', 'instance-ops', 'lifecycle', 'staging'],
    instance.extend({ from: instanceStatus.nullable(), to: instanceStatus, reason: text({ multiline: true }).optional() }),
    'an instance changed status',
  ),
  'instance.unhealthy': def(['health-probe'], instance.extend({ failures: z.number().int() }), 'probe failed 3 times in a row'),
  'instance.recovered': def(['health-probe'], instance, 'probe succeeds again'),
  'instance.drift_detected': def(
    ['health-probe'],
    instance.extend({ runtimeState: z.string().max(50) }),
    'runtime stopped or missing while the status says running (runtimeState `restarted`: the runtime already started it again)',
  ),
  'pool.unhealthy': def(
    ['health-probe'],
    z.object({ pool: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/), failures: z.number().int(), reason: text({ multiline: true }).max(500) }),
    'a database pool failed its check 3 times in a row: no new placements',
  ),
  'pool.recovered': def(['health-probe'], z.object({ pool: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/) }), 'an unhealthy database pool answers again: active'),
  'instance.quota_exceeded': def(['quota-set', 'health-probe'], instance.extend({ usedBytes: z.number(), limitBytes: z.number() }), 'storage usage over the plan quota'),
  'instance.backup_completed': def(
    ['instance-ops'],
    instance.extend({ backupId: uuid, sizeBytes: z.number(), kind: z.enum(['manual', 'daily', 'safety', 'final']).optional() }),
    'a backup succeeded (mailed unless kind is daily, safety or final)',
  ),
  'instance.backup_failed': def(
    ['instance-ops'],
    instance.extend({ backupId: uuid, reason: text({ multiline: true }), kind: z.enum(['manual', 'daily', 'safety', 'final']).optional() }),
    'a backup failed (mailed unless kind is safety or final)',
  ),
  'instance.restore_completed': def(
    ['instance-ops'],
    instance.extend({ backupId: z.string().max(100), status: z.enum(['running', 'stopped']).optional() }),
    'a restore succeeded (status: where the instance is left)',
  ),
  'instance.restore_failed': def(['instance-ops'], instance.extend({ backupId: z.string().max(100), reason: text({ multiline: true }) }), 'a restore failed'),
  'billing.trial_ending': def(
    ['lifecycle'],
    z.object({ customerId: uuid, subscriptionId: uuid, daysLeft: z.union([z.literal(7), z.literal(3), z.literal(1)]), trialEndsAt: z.iso.datetime() }),
    'a trial ends in 7, 3 or 1 days',
  ),
  'audit.action': def(
    ['platform'],
    z.object({
      actor: z.enum(['customer', 'operator', 'anonymous']),
      actorId: uuid.optional(),
      customerId: uuid.optional(),
      instanceId: uuid.optional(),
      action: z.string().regex(/^[a-z][a-z0-9_.-]{0,99}$/),
      outcome: z.enum(['succeeded', 'refused', 'denied', 'failed']),
      status: z.number().int().min(100).max(599),
      requestId: text().max(200),
      at: z.iso.datetime(),
    }),
    'a person asked the platform to change something (any POST of an HTTP function), and how it ended',
  ),
  'billing.status_changed': def(
    ['lifecycle'],
    z.object({
      customerId: uuid,
      instanceId: uuid.optional(),
      subscriptionId: uuid.optional(),
      status: billingStatus,
      reason: text({ multiline: true }),
      effectiveDate: z.string().optional(),
      // The invoice the change is about (mails state its number, amount and due date); due on issue, as Kill Bill charges at once.
      invoice: z.object({ number: text().max(50), amount: z.number(), balance: z.number(), currency: z.string().regex(/^[A-Z]{3}$/), dueDate: z.string().max(40) }).optional(),
    }),
    'billing status of a subscription changed',
  ),
} satisfies Record<string, Entry>;

export type ShortType = keyof typeof catalog;
export type EventType = `${typeof PREFIX}${ShortType}`;
export type EventData<T extends ShortType> = z.infer<(typeof catalog)[T]['data']>;

/** `com.saasodoo.x` → `x`; undefined for types outside our prefix. */
export function shortType(type: string): ShortType | undefined {
  if (!type.startsWith(PREFIX)) return undefined;
  const s = type.slice(PREFIX.length);
  return s in catalog ? (s as ShortType) : undefined;
}

/** True for every type the catalogue knows, including any `org.killbill.*`. */
export function isKnownType(type: string): boolean {
  return shortType(type) !== undefined || /^org\.killbill\.[a-z0-9_]+$/.test(type);
}

/** The data schema of a full event type. */
export function schemaOf(type: string): z.ZodType | undefined {
  const s = shortType(type);
  if (s) return catalog[s].data;
  if (type.startsWith(KILLBILL_PREFIX)) return killbillNotification;
  return undefined;
}

/** `SUBSCRIPTION_CREATION` → `org.killbill.subscription_creation`. */
export function killbillType(eventType: string): string {
  return `${KILLBILL_PREFIX}${eventType.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`;
}
