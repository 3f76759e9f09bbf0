/**
 * The fault suite's oracle (issue 25 items 1–3): what must have happened,
 * from the scenario and from Kill Bill's own record, never from the
 * platform's bookkeeping.
 */
import { dedupeKey } from '@saasodoo/platform/billing/inbox';

type DbFn = (typeof import('@saasodoo/platform/db/index'))['db'];

/**
 * Lost notifications: every notification the simulator pushed and got a 2xx
 * for (its delivery log, kb_notifications) whose type lifecycle subscribes
 * to must have been applied by lifecycle (processed_events, consumer
 * lifecycle). A notification the simulator gave up on (dropped) is lost as
 * well: the platform refused it every time Kill Bill tried.
 */
export async function lostFromKillBill(db: DbFn, routed: string[]): Promise<{ problems: string[]; delivered: number; applied: number }> {
  const sent = await db('killbill').manyOrNone<{ id: string; url: string; body: string; last_status: string | null; delivered: boolean; dropped: boolean }>(
    `SELECT id::text, url, body, last_status, delivered_at IS NOT NULL AS delivered, dropped_at IS NOT NULL AS dropped FROM kb_notifications`,
  );
  const applied = new Set((await db('billing').manyOrNone<{ event_id: string }>(`SELECT event_id FROM processed_events WHERE consumer = 'lifecycle'`)).map((r) => r.event_id));
  const problems: string[] = [];
  let delivered = 0;
  let hits = 0;
  for (const s of sent) {
    const n = JSON.parse(s.body) as { eventType: string; accountId?: string; objectType?: string; objectId?: string; metaData?: string };
    const forLifecycle = routed.includes(`org.killbill.${n.eventType.toLowerCase()}`);
    if (s.dropped) {
      problems.push(`Kill Bill gave up on notification ${s.id} (${n.eventType}) after its retries: last answer ${s.last_status}`);
      continue;
    }
    if (!s.delivered) {
      problems.push(`Kill Bill still holds notification ${s.id} (${n.eventType}) undelivered`);
      continue;
    }
    if (!/^2\d\d$/.test(s.last_status ?? '')) continue;
    delivered++;
    if (!forLifecycle) continue;
    const tenant = new URL(s.url).searchParams.get('tenant') ?? '';
    if (applied.has(dedupeKey(tenant, n as Parameters<typeof dedupeKey>[1]))) hits++;
    else problems.push(`notification ${s.id} (${n.eventType} on ${n.objectType} ${n.objectId}) got ${s.last_status} from the platform but lifecycle never applied it`);
  }
  return { problems, delivered, applied: hits };
}

/**
 * A customer's mails as steps: every mail of a step comes after every mail of
 * the step before. Within a step the order is free: Kill Bill pushes the
 * notifications of one moment (an invoice and its payment) concurrently and
 * in no order, so no honest oracle can order their mails.
 */
export type MailSteps = string[][];

/**
 * The mails a customer of `scenario` must get, each once, derived from the
 * scenario and the mail rules (platform/src/mail/README.md, functions/email):
 * `months` is how many extra monthly clock moves the run made (paid plans
 * invoice and pay once each), `manualBackup` a backup they asked for.
 * Kill Bill's clock in the suite: day 0 subscribe, +15 (trials of 14 days
 * end), +16 (day 31), +16 (day 47), then +31 per extra month.
 */
export function expectedMails(scenario: string, o: { months: number; manualBackup?: boolean }): { steps: MailSteps; anywhere: string[] } {
  const monthly = (n: number) => Array.from({ length: n }, () => ['invoice-created', 'payment-succeeded']);
  const anywhere = o.manualBackup ? ['backup-completed'] : [];
  // One Kill Bill moment: the invoice and its payment are pushed together, and the payment starts the provisioning.
  // Instance-ready follows the payment's notification, not the invoice's, so a late invoice delivery (a Kill Bill
  // retry, a broker restart) legitimately mails the invoice after the instance is ready (seen in test:faults:full).
  const paidOnSubscribing = ['invoice-created', 'payment-succeeded', 'instance-ready'];
  switch (scenario) {
    case 'trial-then-pays':
      // Day 14 trial ends and the first invoice is paid (told in one trial-ended mail); day 44 and each month after: invoice and payment.
      return { steps: [['instance-ready'], ['trial-ended'], ...monthly(1 + o.months)], anywhere };
    case 'paid-now':
      // Paid on subscribing (invoice + payment), then day 30, 60, …: day 30 falls in the +16 move to day 31, day 60 in the one to day 78 (with day 90 not reached).
      return { steps: [paidOnSubscribing, ...monthly(1 + o.months)], anywhere };
    case 'suspended-then-pays':
      // Trial ends unpaid (day 14), blocked at 14 days unpaid (day 28: the +16 move jumps past WARNING, which lifecycle
      // only tells while Kill Bill still shows it), resumed when the card works, then paid like trial-then-pays.
      return { steps: [['instance-ready'], ['trial-ended'], ['instance-suspended'], ['instance-resumed'], ...monthly(1 + o.months)], anywhere };
    case 'trial-then-fails':
      // As above, never paid: overdue CANCELLATION (21 days unpaid, day 35) cancels at the end of the term (day 44); the
      // move from day 31 to 47 passes both, so Kill Bill already shows it cancelled: terminated, no "scheduled" mail.
      return { steps: [['instance-ready'], ['trial-ended'], ['instance-suspended'], ['instance-terminated']], anywhere };
    case 'never-pays':
      // The first payment fails on subscribing: nothing to provision (billing still tells the suspension); blocked at 14
      // days, cancelled at the end of the term (day 30), both passed by the move to day 31: no "scheduled" mail.
      return { steps: [['invoice-created', 'payment-failed'], ['instance-suspended'], ['instance-terminated']], anywhere };
    case 'trial-cancelled-now':
      return { steps: [['instance-ready'], ['instance-terminated']], anywhere };
    case 'paid-cancelled-end-of-term':
      return { steps: [paidOnSubscribing, ['cancellation-scheduled'], ['instance-terminated']], anywhere };
    default:
      throw new Error(`no mail oracle for scenario ${scenario}`);
  }
}

/**
 * Compares each customer's mails (the communication database's record of
 * what went out, oldest first) with the expected steps: a mail missing, one
 * too many, or one out of step order is a problem.
 */
export async function mailProblems(db: DbFn, who: { customerId: string; label: string; expected: { steps: MailSteps; anywhere: string[] } }[]): Promise<string[]> {
  const problems: string[] = [];
  for (const w of who) {
    const got = (await db('communication').manyOrNone<{ template: string }>(`SELECT template FROM mails WHERE customer_id = $1 AND status = 'sent' ORDER BY sent_at, created_at`, [w.customerId])).map(
      (m) => m.template,
    );
    const want = [...w.expected.steps.flat(), ...w.expected.anywhere];
    const count = (xs: string[]) => xs.reduce((m, x) => m.set(x, (m.get(x) ?? 0) + 1), new Map<string, number>());
    const [g, e] = [count(got), count(want)];
    const diff: string[] = [];
    for (const t of new Set([...g.keys(), ...e.keys()])) {
      const d = (g.get(t) ?? 0) - (e.get(t) ?? 0);
      if (d > 0) diff.push(`${d} ${t} too many`);
      if (d < 0) diff.push(`${-d} ${t} missing`);
    }
    if (diff.length) {
      problems.push(
        `${w.label}: mails ${diff.join(', ')} (got: ${got.join(' ') || 'none'}; expected: ${w.expected.steps.map((s) => s.join('+')).join(' → ')}${w.expected.anywhere.length ? ` and ${w.expected.anywhere.join(', ')}` : ''})`,
      );
      continue;
    }
    // Step order: walk the mails (without the anywhere ones) and check each belongs to the current step or a later one.
    const stepOf = (t: string, from: number) => w.expected.steps.findIndex((s, i) => i >= from && s.includes(t));
    const pending = w.expected.steps.map((s) => [...s]);
    let step = 0;
    const anywhere = [...w.expected.anywhere];
    for (const t of got) {
      while (step < pending.length && pending[step].length === 0) step++;
      const here = pending[step]?.indexOf(t) ?? -1;
      if (here >= 0) {
        pending[step].splice(here, 1);
        continue;
      }
      const a = anywhere.indexOf(t);
      if (a >= 0) {
        anywhere.splice(a, 1);
        continue;
      }
      problems.push(
        `${w.label}: mail ${t} came out of order (got: ${got.join(' ')}; expected: ${w.expected.steps.map((s) => s.join('+')).join(' → ')}; ${stepOf(t, step) >= 0 ? 'it belongs to a later step' : 'an earlier step'})`,
      );
      break;
    }
  }
  return problems;
}
