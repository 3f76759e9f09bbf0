/**
 * Client address spoofing and sharing (issue 15, finding 4), at the function:
 * the per-IP limits use `ip` from platform/src/client-ip.ts. The edge's
 * X-Forwarded-For is used; the portal's X-SaaSOdoo-Client-IP only with the
 * proxy token (on Kubernetes Traefik replaces the portal's X-Forwarded-For
 * with the portal's own address, so without it every portal user would share
 * one budget); a client-ip claim without the token is ignored.
 */
import type { AddressInfo, Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resetProxyToken } from '@saasodoo/platform/client-ip';
import { resetConfig } from '@saasodoo/platform/config';
import { httpFunction } from '@saasodoo/platform/fn';
import { startFunction } from '@saasodoo/platform/host/run-function';

const TOKEN = 'proxy-token-for-this-test-0123456789';
let server: Server;
let url: string;

beforeAll(async () => {
  process.env.GATEWAY_PROXY_TOKEN = TOKEN;
  resetConfig();
  resetProxyToken();
  const fn = httpFunction({
    name: 'echo-ip',
    GET: { auth: 'none', handle: async ({ ip, headers }) => ({ body: { ip, tokenVisible: 'x-saasodoo-proxy-token' in headers } }) },
  });
  server = await startFunction(fn, 0);
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
  delete process.env.GATEWAY_PROXY_TOKEN;
  resetConfig();
  resetProxyToken();
});

async function ipFor(headers: Record<string, string>): Promise<{ ip: string; tokenVisible: boolean }> {
  const res = await fetch(url, { headers });
  expect(res.status).toBe(200);
  return (await res.json()) as { ip: string; tokenVisible: boolean };
}

describe('client address spoofing', () => {
  it("uses the edge's X-Forwarded-For (its first entry: the edge's TCP peer)", async () => {
    expect((await ipFor({ 'x-forwarded-for': '203.0.113.7, 10.0.0.5, 10.0.0.9' })).ip).toBe('203.0.113.7');
  });

  it('ignores a client-ip claim without the proxy token, or with a wrong one', async () => {
    const xff = { 'x-forwarded-for': '203.0.113.7' };
    expect((await ipFor({ ...xff, 'x-saasodoo-client-ip': '198.51.100.1' })).ip).toBe('203.0.113.7');
    expect((await ipFor({ ...xff, 'x-saasodoo-client-ip': '198.51.100.1', 'x-saasodoo-proxy-token': `${TOKEN.slice(0, -1)}x` })).ip).toBe('203.0.113.7');
    expect((await ipFor({ ...xff, 'x-saasodoo-client-ip': '198.51.100.1', 'x-saasodoo-proxy-token': 'short' })).ip).toBe('203.0.113.7');
  });

  it("uses the portal's client-ip with the proxy token, and hides the token from the handler", async () => {
    // What reaches a function on Kubernetes: Traefik put the portal's pod address in X-Forwarded-For.
    const r = await ipFor({ 'x-forwarded-for': '10.42.0.17', 'x-saasodoo-client-ip': '198.51.100.1', 'x-saasodoo-proxy-token': TOKEN });
    expect(r).toEqual({ ip: '198.51.100.1', tokenVisible: false });
    expect((await ipFor({ 'x-forwarded-for': '10.42.0.17', 'x-saasodoo-client-ip': '2001:db8::1', 'x-saasodoo-proxy-token': TOKEN })).ip).toBe('2001:db8::1');
  });

  it('a vouched claim that is not an address falls back to X-Forwarded-For', async () => {
    expect((await ipFor({ 'x-forwarded-for': '10.42.0.17', 'x-saasodoo-client-ip': 'not-an-ip, 1.2.3.4', 'x-saasodoo-proxy-token': TOKEN })).ip).toBe('10.42.0.17');
  });
});
