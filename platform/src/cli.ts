/**
 * The `platform` command. Each group of subcommands lives in cli/<group>.ts
 * and registers itself here.
 */
import { Command } from 'commander';
import { registerCore } from './cli/core.ts';

export const program = new Command('platform').description('SaaSOdoo platform: run, inspect and operate it').showHelpAfterError();

for (const register of [registerCore]) register(program);

program.parseAsync(process.argv).catch((err) => {
  process.stderr.write(`${err?.message ?? err}\n`);
  process.exit(1);
});
