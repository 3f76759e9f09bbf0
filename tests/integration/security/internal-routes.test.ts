/**
 * Internal routes (issue 15.1): the public gateway once served
 * `/_platform/status` (functions, ports, pids) and `/_platform/invoke/<fn>`
 * (any CloudEvent to any function) without a login, so a customer could send
 * lifecycle a forged `instance.create_failed` for their own instance and have
 * its subscription voided while the instance runs on. Those routes now live
 * on the loopback operator listener behind the operator token: the gateway
 * answers 404, event-only functions stay unreachable from it, and
 * `platform status` / `platform invoke --cloudevent` work with the token and
 * are refused without it.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import os from 'node:os';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KillBill } from '@saasodoo/platform/billing/killbill';
import { repoRoot } from '@saasodoo/platform/config';
import { db } from '@saasodoo/platform/db/index';
import { functionNames, functionSpec } from '@saasodoo/platform/funcspec';
import { operatorToken } from '@saasodoo/platform/host/operator';
import { createTestUser, type TestUser } from '../../helpers/auth.ts';
import { startPlatform, type Platform } from '../../helpers/platform.ts';

let p: Platform;
let alice: TestUser;
let instanceId: string;
let subscriptionId: string;
let operator: string;

const eventFunctions = functionNames().filter((n) => functionSpec(n).invoke === 'cloudevent');

/** A valid binary-mode CloudEvent. */
function cloudEvent(type: string, data: unknown, extra: Record<string, string> = {}): RequestInit {
  return {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'ce-specversion': '1.0',
      'ce-id': randomUUID(),
      'ce-type': type,
      'ce-source': '/saasodoo/instances',
      ...extra,
    },
    body: JSON.stringify(data),
  };
}
const tick = () => cloudEvent('com.saasodoo.health.tick', { at: new Date().toISOString() });

const cli = (args: string[], env: Record<string, string> = {}) =>
  promisify(execFile)(process.execPath, ['platform/bin/platform.js', ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    timeout: 60_000,
  }).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );

beforeAll(async () => {
  // Warm: a billing cold start on a loaded machine can outlast the 15 s instances gives it.
  p = await startPlatform({
    only: ['instances', 'account', 'billing', 'trial-eligibility', 'lifecycle', 'health-probe', 'webhook-intake'],
    warm: ['instances', 'account', 'billing', 'trial-eligibility'],
  });
  operator = `http://127.0.0.1:${p.env.OPERATOR_PORT}`;
  alice = await createTestUser();
  const res = await fetch(`${p.gateway}/api/instances`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${alice.accessToken}` },
    body: JSON.stringify({ name: 'Alice Co', subdomain: `alice-${Date.now().toString(36)}`, plan: 'standard-monthly', odooVersion: '17', trial: true }),
  });
  const body = await res.json();
  expect(res.status, JSON.stringify(body)).toBe(202);
  instanceId = body.id;
  subscriptionId = (await db('instance').one<{ subscription_id: string }>('SELECT subscription_id FROM instances WHERE id = $1', [instanceId])).subscription_id;
}, 180_000);

afterAll(async () => {
  await p?.stop();
});

describe('the public gateway has no internal routes', () => {
  it('anonymous GET /_platform/status and POST /_platform/invoke/health-probe (a valid CloudEvent) answer 404 and leak nothing', async () => {
    const status = await fetch(`${p.gateway}/_platform/status`);
    const statusText = await status.text();
    expect(status.status).toBe(404);
    expect(statusText).not.toMatch(/pid|health-probe|lifecycle/);
    const invoke = await fetch(`${p.gateway}/_platform/invoke/health-probe`, tick());
    expect(invoke.status).toBe(404);
    expect(JSON.parse(await invoke.text()).error.code).toBe('not_found');
  });

  it('no spelling of the old routes or of /api reaches an event-only function, with or without a login', async () => {
    const paths = [
      ...eventFunctions.flatMap((fn) => [`/_platform/invoke/${fn}`, `/api/${fn}`, `/api/${fn}/`, `/api/${fn}?x=1`]),
      '/_platform/invoke/lifecycle/',
      '/_platform//invoke/lifecycle',
      '/%5Fplatform/invoke/lifecycle',
      '/_PLATFORM/invoke/lifecycle',
      '/api/../_platform/invoke/lifecycle',
      '/_platform/status/',
      '/_platform/',
    ];
    expect(eventFunctions).toEqual(expect.arrayContaining(['lifecycle', 'health-probe', 'provision', 'instance-ops', 'quota-set', 'email']));
    for (const path of paths) {
      for (const authorization of [undefined, `Bearer ${alice.accessToken}`]) {
        const init = tick();
        if (authorization) (init.headers as Record<string, string>).authorization = authorization;
        const res = await fetch(`${p.gateway}${path}`, init);
        expect(res.status, `${path} ${authorization ? 'as Alice' : 'anonymous'}`).toBe(404);
        await res.body?.cancel();
      }
    }
  });

  it('a forged com.saasodoo.instance.create_failed for her own instance, sent by the customer through the gateway, has no effect', async () => {
    const data = { instanceId, customerId: alice.userId };
    for (const path of ['/_platform/invoke/lifecycle', '/api/lifecycle']) {
      const init = cloudEvent('com.saasodoo.instance.create_failed', data, { authorization: `Bearer ${alice.accessToken}` });
      const res = await fetch(`${p.gateway}${path}`, init);
      expect(res.status, path).toBe(404);
    }
    // The gateway used to wait for lifecycle's answer: by now the effect would have happened.
    expect(await db('billing').manyOrNone('SELECT 1 FROM failed_creates WHERE instance_id = $1', [instanceId])).toEqual([]);
    const subs = (await new KillBill().bundlesOfInstance(instanceId)).flatMap((b) => b.subscriptions ?? []);
    expect(subs.map((s) => [s.subscriptionId, s.state])).toEqual([[subscriptionId, 'ACTIVE']]);
  });
});

describe('the operator listener', () => {
  it('answers nothing without the operator token (missing, wrong, same length, other scheme)', async () => {
    const token = operatorToken();
    const wrong = [undefined, 'Bearer nope', `Bearer ${'x'.repeat(token.length)}`, `Bearer ${token}x`, `Basic ${token}`, token];
    for (const authorization of wrong) {
      const headers = authorization ? { authorization } : undefined;
      const status = await fetch(`${operator}/status`, { headers });
      expect(status.status, String(authorization)).toBe(401);
      expect((await status.json()).error.fields).toHaveProperty('authorization');
      const init = tick();
      if (authorization) (init.headers as Record<string, string>).authorization = authorization;
      expect((await fetch(`${operator}/invoke/health-probe`, init)).status, String(authorization)).toBe(401);
    }
    const ok = await fetch(`${operator}/status`, { headers: { authorization: `Bearer ${token}` } });
    expect(ok.status).toBe(200);
    expect((await ok.json()).functions.map((f: { name: string }) => f.name)).toContain('lifecycle');
  });

  it('`platform status` and `platform invoke --cloudevent` work through it with the token', async () => {
    const status = await cli(['status']);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/^functions:$/m);
    expect(status.stdout).toMatch(/^ {2}lifecycle +\S/m);
    const invoke = await cli(['invoke', 'health-probe', '--cloudevent', '--type', 'com.saasodoo.health.tick', '--data', JSON.stringify({ at: new Date().toISOString() })]);
    expect(invoke.code, invoke.stdout + invoke.stderr).toBe(0);
    expect(Number(invoke.stdout.split('\n')[0])).toBeLessThan(300);
    const unknown = await cli(['invoke', 'no-such-fn', '--cloudevent', '--type', 'com.saasodoo.health.tick', '--data', '{}']);
    expect(unknown.stdout.split('\n')[0]).toBe('404');
  });

  it('`platform status` and `platform invoke --cloudevent` are refused with another token', async () => {
    const env = { OPERATOR_TOKEN: 'not-the-operator-token-0123456789' };
    const status = await cli(['status'], env);
    expect(status.code).toBe(1);
    expect(status.stderr).toMatch(/^401 /);
    expect(status.stdout).not.toContain('lifecycle');
    const invoke = await cli(['invoke', 'lifecycle', '--cloudevent', '--type', 'com.saasodoo.instance.create_failed', '--data', JSON.stringify({ instanceId, customerId: alice.userId })], env);
    expect(invoke.code).toBe(1);
    expect(invoke.stdout.split('\n')[0]).toBe('401');
    expect(invoke.stderr).toContain('operator token was refused');
    expect(await db('billing').manyOrNone('SELECT 1 FROM failed_creates WHERE instance_id = $1', [instanceId])).toEqual([]);
  });

  it('it and the broker ingress (K_SINK) listen on loopback only', async () => {
    const external = Object.values(os.networkInterfaces())
      .flat()
      .filter((a) => a && !a.internal && a.family === 'IPv4')
      .map((a) => a!.address);
    expect(external.length, 'this check needs a non-loopback IPv4 address').toBeGreaterThan(0);
    const connects = (host: string, port: number) =>
      new Promise<boolean>((resolve) => {
        const s = net
          .connect({ host, port }, () => {
            s.destroy();
            resolve(true);
          })
          .on('error', () => resolve(false));
      });
    for (const port of [Number(p.env.OPERATOR_PORT), Number(p.env.BROKER_PORT)]) {
      expect(await connects('127.0.0.1', port), `127.0.0.1:${port}`).toBe(true);
      for (const host of external) expect(await connects(host, port), `${host}:${port}`).toBe(false);
    }
  });

  // Last: it voids Alice's subscription. It shows the forged event above was a valid one that lifecycle acts on.
  it('the same create_failed sent by the operator (with the token) is acted on', async () => {
    const init = cloudEvent('com.saasodoo.instance.create_failed', { instanceId, customerId: alice.userId }, { authorization: `Bearer ${operatorToken()}` });
    const res = await fetch(`${operator}/invoke/lifecycle`, init);
    expect(res.status, await res.text()).toBeLessThan(300);
    expect(await db('billing').manyOrNone('SELECT 1 AS found FROM failed_creates WHERE instance_id = $1', [instanceId])).toEqual([{ found: 1 }]);
    const subs = (await new KillBill().bundlesOfInstance(instanceId)).flatMap((b) => b.subscriptions ?? []);
    expect(subs.map((s) => s.state)).toEqual(['CANCELLED']);
  });
});
