/** `platform admin grant EMAIL` / `platform admin revoke EMAIL`: the operator role (platform/src/auth/README.md 1). */
import type { Command } from 'commander';
import { recordOperatorCommand } from '../audit-log.ts';
import { closeDatabases } from '../db/index.ts';
import { closeRedis } from '../redis.ts';
import { updateLiveRole } from '../auth/liveness.ts';
import type { Role } from '../auth/tokens.ts';
import { emailSchema, setRoleByEmail } from '../auth/users.ts';

/**
 * Sets the role of the account `email`. The live sessions of the account get
 * the new role in Redis at once, so a revoked admin loses admin calls
 * immediately rather than when their access token expires. The change is
 * written to the audit log. Returns a line for the operator; throws when no
 * account has that address.
 */
export async function setAdminRole(email: string, role: Role): Promise<string> {
  const parsed = emailSchema.safeParse(email);
  if (!parsed.success) throw new Error(`Not an email address: ${email}`);
  const r = await setRoleByEmail(parsed.data, role);
  if (!r) throw new Error(`No account uses ${parsed.data}`);
  // Operator actions are audited; this one bypasses HTTP (and so the function kit's trail).
  const unaudited = await recordOperatorCommand(role === 'admin' ? 'admin.grant' : 'admin.revoke', { customerId: r.id, detail: `role set to ${role}` });
  if (unaudited) process.stderr.write(`warning: ${unaudited}\n`);
  try {
    await updateLiveRole(r.sessionIds, r.id, role);
  } catch {
    return `${parsed.data} is now ${role}; Redis is unavailable, so open sessions keep their old role until their next refresh`;
  }
  return `${parsed.data} is now ${role} (${r.sessionIds.length} open session(s) updated)`;
}

export function registerAdmin(program: Command): void {
  const admin = program.command('admin').description('manage operator (admin) accounts');
  for (const [name, role, what] of [
    ['grant', 'admin', 'give the admin role to'],
    ['revoke', 'customer', 'take the admin role from'],
  ] as const) {
    admin
      .command(`${name} <email>`)
      .description(`${what} the account with this email`)
      .action(async (email: string) => {
        try {
          process.stdout.write(`${await setAdminRole(email, role)}\n`);
        } catch (err) {
          process.stderr.write(`${(err as Error).message}\n`);
          process.exitCode = 1;
        } finally {
          await closeDatabases();
          await closeRedis();
        }
      });
  }
}
