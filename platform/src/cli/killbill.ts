/** `platform killbill clock | status | callback-url | sync-config | payment-outcome`: Kill Bill for operators and demos. */
import type { Command } from 'commander';
import { config } from '../config.ts';
import { killbill, killbillUrl } from '../billing/killbill.ts';
import { callbackUrl } from '../billing/webhook.ts';

/** `14d`, `2w`, `1m`, `36h` → whole days (Kill Bill's clock moves by days). */
export function parseAdvance(s: string): number {
  const m = s.trim().match(/^(\d+)\s*(d|w|m|h)?$/);
  if (!m) throw new Error(`--advance: expected e.g. 14d, 2w, 1m, got ${s}`);
  const n = Number(m[1]);
  return m[2] === 'w' ? n * 7 : m[2] === 'm' ? n * 30 : m[2] === 'h' ? Math.ceil(n / 24) : n;
}

export function registerKillbill(program: Command): void {
  const kb = program.command('killbill').description('Kill Bill (or its local simulator): test clock, status, webhook callback');

  kb.command('clock')
    .description('show the test clock, or move it (everything due fires: trial ends, invoices, payments, overdue)')
    .option('--advance <duration>', 'move forward, e.g. 14d, 2w, 1m')
    .option('--set <iso>', 'move to a date-time, e.g. 2027-01-01T00:00:00Z')
    .action(async (o: { advance?: string; set?: string }) => {
      const k = killbill();
      const at = o.set ? await k.moveClock({ at: new Date(o.set) }) : o.advance ? await k.moveClock({ days: parseAdvance(o.advance) }) : await k.now();
      process.stdout.write(`${at.toISOString()}\n`);
    });

  kb.command('status')
    .description('where Kill Bill is, whether it answers, its clock and registered callback')
    .action(async () => {
      const k = killbill();
      const lines = [`url        ${killbillUrl()}${config().KILLBILL_URL ? '' : ' (simulator)'}`];
      try {
        const [now, callbacks] = await Promise.all([k.now(), k.callbacks()]);
        lines.push(`reachable  yes`, `clock      ${now.toISOString()}`);
        lines.push(`callback   ${callbacks.length ? callbacks.map((u) => u.replace(/([?&]token=)[^&]+/, '$1[redacted]')).join(', ') : 'none registered'}`);
        const sim = await k.http
          .get('/simulator/status')
          .then((r) => r.data)
          .catch(() => undefined);
        if (sim) lines.push(`objects    ${JSON.stringify(sim.objects)}`, `pushes     ${JSON.stringify(sim.notifications)}`);
      } catch {
        lines.push('reachable  no (start the platform with npm start, or check KILLBILL_URL)');
        process.exitCode = 1;
      }
      process.stdout.write(`${lines.join('\n')}\n`);
    });

  kb.command('callback-url')
    .description('print the webhook URL to register in Kill Bill for a tenant (contains its secret token)')
    .option('--tenant <apiKey>', 'tenant api key', config().KILLBILL_API_KEY)
    .option('--register', 'also register it (only if not already registered)')
    .action(async (o: { tenant: string; register?: boolean }) => {
      const url = callbackUrl(o.tenant);
      process.stdout.write(`${url}\n`);
      if (o.register) process.stderr.write((await killbill().registerCallback(url)) ? 'registered\n' : 'already registered\n');
    });

  kb.command('sync-config')
    .description('create the tenant if Kill Bill lacks it, then upload infra/killbill/catalog.xml and overdue.xml where they changed')
    .action(async () => {
      const k = killbill();
      await k.ensureTenant();
      const done = await k.syncConfig();
      process.stdout.write(`catalog    ${done.catalog ? 'uploaded' : 'unchanged'}\noverdue    ${done.overdue ? 'uploaded' : 'unchanged'}\n`);
    });

  kb.command('payment-outcome <accountIdOrCustomerId> <outcome>')
    .description("simulator only: make an account's test payment method SUCCESS or FAILURE from now on")
    .action(async (id: string, outcome: string) => {
      const o = outcome.toUpperCase();
      if (o !== 'SUCCESS' && o !== 'FAILURE') throw new Error('outcome must be SUCCESS or FAILURE');
      const k = killbill();
      const account = (await k.accountByCustomer(id)) ?? (await k.account(id));
      if (!account) throw new Error(`no Kill Bill account ${id}`);
      await k.setPaymentOutcome(account.accountId!, o);
      process.stdout.write(`${account.accountId} ${o}\n`);
    });
}
