/** `platform dlq list|replay` and `platform events tail`: operating the event backbone. */
import type { Command } from 'commander';
import { loadTriggers } from '@saasodoo/events/triggers';
import { config } from '../config.ts';
import { listDeadLetters, replayDeadLetters, withAmqp, type DeadLetter } from '../broker/dlq.ts';
import { tailEvents } from '../broker/tail.ts';
import { scrubString } from '../log.ts';
import { recordOperatorCommand } from '../audit-log.ts';
import { closeDatabases } from '../db/index.ts';

function knownTrigger(name: string): void {
  const names = loadTriggers({ functionExists: () => true }).map((t) => t.name);
  if (!names.includes(name)) throw new Error(`No trigger named ${name}. Triggers: ${names.join(', ') || '(none)'}`);
}

function formatLetter(d: DeadLetter): string {
  return `${d.deadAt ?? '-'}  ${d.trigger}  ${d.id}  ${d.type}  status ${d.status || 'none'}  attempts ${d.attempts}\n    ${d.reason}${d.body ? `\n    answer: ${d.body.slice(0, 300).replace(/\s+/g, ' ')}` : ''}`;
}

export function registerEvents(program: Command): void {
  const dlq = program.command('dlq').description('dead-lettered events: list and replay');

  dlq
    .command('list [trigger]')
    .description('list dead letters of one trigger, or of every trigger')
    .option('--json', 'print JSON')
    .action(async (trigger: string | undefined, o: { json?: boolean }) => {
      const c = config();
      if (trigger) knownTrigger(trigger);
      const names = trigger ? [trigger] : loadTriggers({ functionExists: () => true }).map((t) => t.name);
      const letters = await withAmqp(c.RABBITMQ_URL, async (conn) => {
        const out: DeadLetter[] = [];
        for (const name of names) out.push(...(await listDeadLetters(conn, c.BROKER_NAME, name)));
        return out;
      });
      if (o.json) process.stdout.write(`${JSON.stringify(letters, null, 2)}\n`);
      else process.stdout.write(letters.length ? `${letters.map(formatLetter).join('\n')}\n${letters.length} dead letter(s)\n` : 'No dead letters.\n');
    });

  dlq
    .command('replay <trigger>')
    .description("send a trigger's dead letters (all, or one with --id) back to its subscriber")
    .option('--id <id>', 'only the event with this id')
    .action(async (trigger: string, o: { id?: string }) => {
      const c = config();
      knownTrigger(trigger);
      const ids = await withAmqp(c.RABBITMQ_URL, (conn) => replayDeadLetters(conn, c.BROKER_NAME, trigger, o.id));
      if (o.id && !ids.length) {
        process.stderr.write(`No dead letter with id ${o.id} for ${trigger}\n`);
        process.exitCode = 1;
        return;
      }
      if (ids.length) {
        const unaudited = await recordOperatorCommand('dlq.replay', { detail: `${ids.length} event(s) sent back to ${trigger}` }).finally(closeDatabases);
        if (unaudited) process.stderr.write(`warning: ${unaudited}\n`);
      }
      process.stdout.write(`Replayed ${ids.length} event(s) to ${trigger}${ids.length ? `:\n  ${ids.join('\n  ')}` : ''}\n`);
    });

  program
    .command('events')
    .description('broker traffic')
    .command('tail')
    .description('print every event published to the broker from now on (secrets redacted); Ctrl-C stops')
    .option('--type <type>', 'only this event type')
    .option('--json', 'one JSON object per line')
    .action(async (o: { type?: string; json?: boolean }) => {
      const c = config();
      const { default: amqp } = await import('amqplib');
      const conn = await amqp.connect(c.RABBITMQ_URL);
      const stop = await tailEvents(
        conn,
        c.BROKER_NAME,
        (e) => {
          const line = o.json
            ? JSON.stringify(e)
            : `${e.time ?? new Date().toISOString()}  ${e.type}  ${e.id}${e.subject ? `  subject=${e.subject}` : ''}  trace=${e.traceparent?.split('-')[1] ?? '-'}  ${JSON.stringify(e.data)}`;
          process.stdout.write(`${scrubString(line)}\n`);
        },
        { type: o.type },
      );
      process.stderr.write(`Tailing ${c.BROKER_NAME}${o.type ? ` (type ${o.type})` : ''}; Ctrl-C stops.\n`);
      const quit = async () => {
        await stop();
        await conn.close().catch(() => {});
        process.exit(0);
      };
      process.on('SIGINT', quit);
      process.on('SIGTERM', quit);
    });
}
