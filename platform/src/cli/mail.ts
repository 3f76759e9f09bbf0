/** `platform mail list | show <id>`: the mails the local SMTP catcher kept in DATA_DIR/mail/. */
import type { Command } from 'commander';
import { formatTable } from '../host/up.ts';
import { listCaughtMails, mailDir, readCaughtMail } from '../mail/catcher.ts';

export function registerMail(program: Command): void {
  const mail = program.command('mail').description('mails caught by the local SMTP catcher (when SMTP_URL is unset)');

  mail
    .command('list')
    .description('list caught mails, oldest first')
    .option('--to <address>', 'only mails to this address')
    .action(async (o: { to?: string }) => {
      const mails = await listCaughtMails({ to: o.to });
      if (!mails.length) {
        process.stdout.write(`No mail in ${mailDir()}\n`);
        return;
      }
      process.stdout.write(`${formatTable(mails.map((m) => [m.id, `${m.to.padEnd(32)}  ${m.subject}`]))}\n`);
    });

  mail
    .command('show <id>')
    .description('print one caught mail (headers and text part); `last` is the newest')
    .option('--html', 'print the HTML part instead of the text part')
    .option('--raw', 'print the whole .eml file')
    .action(async (id: string, o: { html?: boolean; raw?: boolean }) => {
      const m = await readCaughtMail(id);
      if (!m) {
        process.stderr.write(`No mail ${id} in ${mailDir()} (see: platform mail list)\n`);
        process.exitCode = 1;
        return;
      }
      if (o.raw) {
        process.stdout.write(m.raw);
        return;
      }
      const p = m.parsed;
      const to = p.to ? (Array.isArray(p.to) ? p.to.map((a) => a.text).join(', ') : p.to.text) : '';
      const headers = [
        ['Id', m.id],
        ['Date', p.date?.toISOString() ?? ''],
        ['From', p.from?.text ?? ''],
        ['To', to],
        ['Subject', p.subject ?? ''],
      ];
      const body = o.html ? (typeof p.html === 'string' ? p.html : '(no HTML part)') : (p.text ?? '(no text part)');
      process.stdout.write(`${headers.map(([k, v]) => `${k}: ${v}`).join('\n')}\n\n${body.trimEnd()}\n`);
    });
}
