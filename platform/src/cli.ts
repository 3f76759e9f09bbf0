/**
 * The `platform` command. Each group of subcommands lives in cli/<group>.ts
 * and registers itself here.
 */
import { Command } from 'commander';
import { registerAdmin } from './cli/admin.ts';
import { registerCore } from './cli/core.ts';
import { registerDeploy } from './cli/deploy.ts';
import { registerEvents } from './cli/events.ts';
import { registerKillbill } from './cli/killbill.ts';
import { registerMail } from './cli/mail.ts';
import { registerPools } from './cli/pools.ts';

export const program = new Command('platform').description('SaaSOdoo platform: run, inspect and operate it').showHelpAfterError();

for (const register of [registerCore, registerMail, registerAdmin, registerEvents, registerDeploy, registerKillbill, registerPools]) register(program);

program.parseAsync(process.argv).catch((err) => {
  process.stderr.write(`${err?.message ?? err}\n`);
  process.exit(1);
});
