/**
 * /api/dead-letters (admins only): the operator portal's view of dead-lettered
 * events. GET lists them (?trigger= for one trigger), POST {trigger, id?}
 * sends them back to their subscriber. Same code as `platform dlq`.
 */
import { z } from 'zod';
import { loadTriggers } from '@saasodoo/events/triggers';
import { config } from '@saasodoo/platform/config';
import { listDeadLetters, replayDeadLetters, withAmqp, type DeadLetter } from '@saasodoo/platform/broker/dlq';
import { HttpError } from '@saasodoo/platform/errors';
import { httpFunction } from '@saasodoo/platform/fn';

/** Trigger names from the routing table (subscribers are not checked here: this is not start-up). */
function triggerNames(): string[] {
  return loadTriggers({ functionExists: () => true }).map((t) => t.name);
}

function checkTrigger(name: string): void {
  if (!triggerNames().includes(name)) throw HttpError.badRequest(`No trigger named ${name}`, { trigger: 'no such trigger' });
}

const triggerName = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[a-z0-9-]+$/, 'lowercase letters, digits and -');

export default httpFunction({
  name: 'dead-letters',
  GET: {
    auth: 'admin',
    query: z.object({ trigger: triggerName.optional() }).strict(),
    handle: async ({ query }) => {
      const c = config();
      if (query.trigger) checkTrigger(query.trigger);
      const names = query.trigger ? [query.trigger] : triggerNames();
      const items = await withAmqp(c.RABBITMQ_URL, async (conn) => {
        const out: DeadLetter[] = [];
        for (const name of names) out.push(...(await listDeadLetters(conn, c.BROKER_NAME, name)));
        return out;
      });
      return { body: { items } };
    },
  },
  POST: {
    auth: 'admin',
    body: z.object({ trigger: triggerName, id: z.string().min(1).max(200).optional() }).strict(),
    handle: async ({ body, log }) => {
      const c = config();
      checkTrigger(body.trigger);
      const replayed = await withAmqp(c.RABBITMQ_URL, (conn) => replayDeadLetters(conn, c.BROKER_NAME, body.trigger, body.id));
      if (body.id && !replayed.length) throw HttpError.notFound(`No dead letter with id ${body.id} for ${body.trigger}`);
      log.info({ trigger: body.trigger, count: replayed.length }, 'dead letters replayed');
      return { body: { replayed } };
    },
  },
});
