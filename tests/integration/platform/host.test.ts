/**
 * The local host's gateway and supervisor with a real function process:
 * routing, JSON errors, restart after SIGKILL, and `platform invoke`.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '@saasodoo/platform/config';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gatewayProxyToken, startGateway } from '@saasodoo/platform/host/gateway';
import { startOperator } from '@saasodoo/platform/host/operator';
import { Supervisor } from '@saasodoo/platform/host/supervisor';
import { dropNamespace, migrate } from '@saasodoo/platform/db/migrate';
import { startTestKillbill, type TestKillbill } from '../../helpers/killbill.ts';
import { freePort, freePortRange } from '../../helpers/ports.ts';

let supervisor: Supervisor;
let gateway: Server;
let base: string;
let gatewayPort: number;
let kb: TestKillbill;

beforeAll(async () => {
  await migrate(); // plans reads the billing database and Kill Bill's catalogue
  kb = await startTestKillbill();
  supervisor = new Supervisor({ portBase: await freePortRange(1), only: ['plans'], env: { K_SINK: 'http://127.0.0.1:9' } });
  await supervisor.start();
  gatewayPort = await freePort();
  gateway = await startGateway({ port: gatewayPort, supervisor, baseDomain: 'localhost' });
  base = `http://127.0.0.1:${gatewayPort}`;
});

afterAll(async () => {
  await new Promise((r) => gateway.close(r));
  await supervisor.stop();
  await kb.stop();
  await dropNamespace();
});

describe('gateway', () => {
  it('routes /api/<function> to the function and back, starting it from zero', async () => {
    expect(supervisor.status()[0].state).toBe('stopped');
    const res = await fetch(`${base}/api/plans`);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const body = (await res.json()) as { items: { id: string }[] };
    expect(body.items.map((p) => p.id)).toEqual(['basic-immediate', 'basic-monthly', 'standard-monthly', 'premium-monthly']);
    expect(supervisor.status()[0].state).toBe('running');
  });

  it('answers 400 JSON for invalid JSON', async () => {
    const res = await fetch(`${base}/api/plans`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":' });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { code: 'invalid_json', fields: { body: expect.any(String) } } });
  });

  it('answers 404 JSON for an unknown function', async () => {
    const res = await fetch(`${base}/api/no-such-function`);
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: { code: 'not_found' } });
  });

  it('answers 405 JSON for a method the function does not take', async () => {
    const res = await fetch(`${base}/api/plans`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(405);
    expect(await res.json()).toMatchObject({ error: { code: 'method_not_allowed' } });
  });

  it('refuses query keys that would overwrite the runtime context', async () => {
    const res = await fetch(`${base}/api/plans?headers=x`);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { fields: { headers: expect.any(String) } } });
  });

  it('restarts a function killed with SIGKILL, which then answers again', async () => {
    const before = supervisor.status()[0];
    process.kill(before.pid!, 'SIGKILL');
    let answered = false;
    for (const deadline = Date.now() + 50_000; Date.now() < deadline && !answered;) {
      await new Promise((r) => setTimeout(r, 200));
      const st = supervisor.status()[0];
      if (st.state === 'running' && st.pid !== before.pid) answered = (await fetch(`${base}/api/plans`)).status === 200;
    }
    expect(answered).toBe(true);
    expect(supervisor.status()[0].restarts).toBe(before.restarts + 1);
  }, 60_000);

  it('`platform invoke plans` prints the plans', async () => {
    // Async: the gateway answering it lives in this process.
    const r = await promisify(execFile)(process.execPath, ['platform/bin/platform.js', 'invoke', 'plans'], {
      cwd: repoRoot,
      env: { ...process.env, GATEWAY_URL: base },
      timeout: 30_000,
    });
    expect(r.stdout.split('\n')[0]).toBe('200');
    expect(r.stdout).toContain('standard-monthly');
  });

  it('`platform status` says which runtime driver the host runs', async () => {
    const port = await freePort();
    const operator = await startOperator({ port, supervisor, status: () => ({ runtimeDriver: 'docker', functions: [], services: [] }) });
    try {
      const r = await promisify(execFile)(process.execPath, ['platform/bin/platform.js', 'status'], {
        cwd: repoRoot,
        env: { ...process.env, OPERATOR_PORT: String(port), RUNTIME_DRIVER: 'local' },
        timeout: 30_000,
      });
      expect(r.stdout.split('\n')[0]).toBe('runtime driver: docker');
    } finally {
      operator.closeAllConnections();
      await new Promise((res) => operator.close(res));
    }
  });
});

describe('gateway input guards', () => {
  const post = (body: string, headers: Record<string, string> = {}) => fetch(`${base}/api/plans`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });

  it('refuses empty, prototype-polluting and absurdly nested JSON with 400 naming the body', async () => {
    for (const body of ['', '{"__proto__":{"admin":true}}', '{"constructor":{"prototype":{"x":1}}}', '['.repeat(5000) + ']'.repeat(5000)]) {
      const res = await post(body);
      expect(res.status, body.slice(0, 30)).toBe(400);
      expect(((await res.json()) as { error: { fields: Record<string, string> } }).error.fields.body).toMatch(/empty|forbidden key|nested deeper/);
    }
  });

  it('answers 405 in the error shape for methods functions do not take, without echoing the query', async () => {
    const res = await fetch(`${base}/api/plans?token=secret-value`, { method: 'DELETE' });
    expect(res.status).toBe(405);
    const text = await res.text();
    expect(JSON.parse(text)).toMatchObject({ error: { code: 'method_not_allowed' } });
    expect(text).not.toContain('secret-value');
  });

  it('a refused oversized body (413) closes the connection, and the next request is answered', async () => {
    const res = await fetch(`${base}/api/plans`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'x'.repeat(2 * 1024 * 1024) });
    expect(res.status).toBe(413);
    expect(res.headers.get('connection')).toBe('close');
    expect((await fetch(`${base}/api/plans`)).status).toBe(200);
  });
});

describe('X-Forwarded-For', () => {
  it('is kept only when the portal vouches for it with the proxy token', async () => {
    const seen: (string | undefined)[] = [];
    const echo = http.createServer((req, res) => {
      seen.push(req.headers['x-forwarded-for'] as string | undefined);
      res.end('ok');
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
    const port = await freePort();
    const gw = await startGateway({
      port,
      supervisor,
      baseDomain: 'localhost',
      instanceRouter: async () => ({ port: (echo.address() as AddressInfo).port }),
    });
    const get = (headers: Record<string, string>) =>
      new Promise<void>((resolve, reject) => {
        http.get({ host: '127.0.0.1', port, path: '/', headers: { host: 'demo.localhost', ...headers } }, (res) => res.resume().on('end', resolve)).on('error', reject);
      });
    await get({ 'x-forwarded-for': '203.0.113.9' });
    await get({ 'x-forwarded-for': '203.0.113.9', 'x-saasodoo-proxy-token': gatewayProxyToken() });
    await new Promise((r) => gw.close(r));
    await new Promise((r) => echo.close(r));
    expect(seen[0]).not.toContain('203.0.113.9');
    expect(seen[1]?.split(',')[0]).toBe('203.0.113.9');
  });
});

describe('function processes', () => {
  it('a function whose supervisor was SIGKILLed exits instead of lingering as an orphan', async () => {
    const { spawn } = await import('node:child_process');
    const port = await freePort();
    // The bundle the supervisor runs (host/bundles.ts), not the source under tsx: the same process, seconds sooner.
    const { functionBundles } = await import('@saasodoo/platform/host/bundles');
    const runner = (await functionBundles(['plans'])).plans!.file;
    // A parent that starts a function (as the supervisor does), prints its pid, then waits to be killed.
    const parent = spawn(
      process.execPath,
      [
        '-e',
        `
      const c = require('node:child_process').spawn(process.execPath, [${JSON.stringify(runner)}],
        { cwd: ${JSON.stringify(repoRoot)}, stdio: 'ignore', env: { ...process.env, PORT: '${port}' } });
      console.log(c.pid); setInterval(() => {}, 1000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const pid = Number(await new Promise<string>((resolve) => parent.stdout!.once('data', (d) => resolve(String(d).trim()))));
    const alive = () => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    try {
      for (
        let i = 0;
        i < 300 &&
        !(await fetch(`http://127.0.0.1:${port}/health/liveness`).then(
          (r) => r.ok,
          () => false,
        ));
        i++
      )
        await new Promise((r) => setTimeout(r, 100));
      expect(alive()).toBe(true);
      parent.kill('SIGKILL');
      for (let i = 0; i < 200 && alive(); i++) await new Promise((r) => setTimeout(r, 100));
      expect(alive()).toBe(false);
    } finally {
      parent.kill('SIGKILL');
    }
  });
});
