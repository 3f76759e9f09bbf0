/**
 * The local SMTP catcher as the host runs it: enabled only without SMTP_URL,
 * points the functions at itself, keeps each mail the `email` function sends
 * as DATA_DIR/mail/<id>.eml, and `platform mail list|show` print them.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { HTTP } from 'cloudevents';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import emailFn from '@saasodoo/fn-email';
import { config, repoRoot, resetConfig } from '@saasodoo/platform/config';
import { registerMail } from '@saasodoo/platform/cli/mail';
import { closeDatabases } from '@saasodoo/platform/db/index';
import { dropNamespace, migrate } from '@saasodoo/platform/db/migrate';
import { buildEvent } from '@saasodoo/platform/emit';
import { startFunction } from '@saasodoo/platform/host/run-function';
import type { HostContext, RunningService } from '@saasodoo/platform/host/services';
import { hostServices } from '@saasodoo/platform/host/services';
import { smtpCatcherService } from '@saasodoo/platform/mail/catcher-service';
import { mailDir } from '@saasodoo/platform/mail/catcher';
import { closeMailTransport } from '@saasodoo/platform/mail/transport';
import { freePort } from '../../helpers/ports.ts';

/**
 * Runs `platform mail ...` in-process: the same commander commands cli.ts
 * registers, without paying a process start per call. Output is captured.
 */
async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const program = new Command('platform').exitOverride();
  registerMail(program);
  let stdout = '';
  let stderr = '';
  const out = process.stdout.write;
  const err = process.stderr.write;
  process.stdout.write = ((chunk: string) => ((stdout += chunk), true)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string) => ((stderr += chunk), true)) as typeof process.stderr.write;
  const before = process.exitCode;
  try {
    await program.parseAsync(args, { from: 'user' });
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = before;
  return { code, stdout, stderr };
}

let catcher: RunningService;
let server: Server;
const functionEnv: Record<string, string> = {};
const verifyUrl = `http://localhost:3000/verify-email?token=${randomUUID()}`;

beforeAll(async () => {
  delete process.env.SMTP_URL;
  process.env.SMTP_PORT = '0';
  resetConfig();
  const ctx = { config: config(), functionEnv, supervisor: undefined, setInstanceRouter: () => {} } as unknown as HostContext;
  catcher = await smtpCatcherService.start(ctx);
  // The function process gets functionEnv, as under `platform up`.
  process.env.SMTP_URL = functionEnv.SMTP_URL;
  resetConfig();
  await migrate({ databases: ['communication'] });
  server = await startFunction(emailFn, await freePort()); // faas-js-runtime treats port 0 as 8080
});

afterAll(async () => {
  await new Promise((r) => server?.close(r));
  closeMailTransport();
  await catcher?.stop();
  await closeDatabases();
  await dropNamespace();
});

describe('SMTP catcher host service', () => {
  it('is registered (host service and CLI group), runs only without SMTP_URL and hands its address to the functions', () => {
    expect(hostServices).toContain(smtpCatcherService);
    expect(fs.readFileSync(path.join(repoRoot, 'platform/src/cli.ts'), 'utf8')).toMatch(/registerMail\]|registerMail,/);
    expect(smtpCatcherService.phase).toBe('before');
    expect(smtpCatcherService.enabled?.({ ...config(), SMTP_URL: 'smtp://relay.example:25' })).toBe(false);
    expect(smtpCatcherService.enabled?.({ ...config(), SMTP_URL: undefined })).toBe(true);
    expect(functionEnv.SMTP_URL).toMatch(/^smtp:\/\/127\.0\.0\.1:\d+$/);
  });

  it('keeps the verification mail sent by `email` as an .eml file, and the CLI lists and shows it', async () => {
    const msg = HTTP.binary(
      buildEvent('com.saasodoo.user.verification_requested', {
        customerId: randomUUID(),
        email: 'grace@example.test',
        firstName: 'Grace',
        verifyUrl,
      }),
    );
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, {
      method: 'POST',
      headers: msg.headers as Record<string, string>,
      body: msg.body as string,
    });
    expect(res.status).toBe(204);

    const files = fs.readdirSync(mailDir()).filter((f) => f.endsWith('.eml'));
    expect(files).toHaveLength(1);
    expect(mailDir()).toBe(path.join(config().dataDir, 'mail'));
    const id = files[0].slice(0, -4);
    const raw = fs.readFileSync(path.join(mailDir(), files[0]), 'utf8');
    expect(raw).toMatch(/^Subject: Confirm your email address/m);

    const list = await cli('mail', 'list');
    const show = await cli('mail', 'show', 'last');
    const html = await cli('mail', 'show', id, '--html');
    const missing = await cli('mail', 'show', 'no-such-mail');
    expect(list.code).toBe(0);
    expect(list.stdout).toContain(id);
    expect(list.stdout).toContain('grace@example.test');
    expect(list.stdout).toContain('Confirm your email address');

    expect(show.code).toBe(0);
    expect(show.stdout).toContain(`Id: ${id}`);
    expect(show.stdout).toContain('To: grace@example.test');
    expect(show.stdout).toContain(verifyUrl);

    expect(html.stdout).toContain(`href="${verifyUrl}"`);

    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('No mail no-such-mail');
  });
});
