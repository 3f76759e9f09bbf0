/**
 * Custom domains (issue 24.1) on the whole local platform, with DNS answered
 * by a DNS server this test runs on loopback (dns2), never the network: a
 * claim is not routed until its CNAME and TXT records check out; verified, the
 * gateway routes the domain to the customer's Odoo and Odoo's web.base.url
 * follows it; another tenant cannot take the verified domain; the plan's
 * limit holds; removed, the domain is routed nowhere and Odoo's address is
 * its own again. (The Kubernetes side is in runtime/kubernetes.test.ts.)
 */
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import dns2 from 'dns2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { config } from '@saasodoo/platform/config';
import { db } from '@saasodoo/platform/db/index';
import { unseal } from '@saasodoo/platform/instances/secrets';
import { claimsToCheck } from '@saasodoo/platform/instances/domains';
import { createTestUser, type TestUser } from '../../helpers/auth.ts';
import { freePort } from '../../helpers/ports.ts';
import { startPlatform, type Platform } from '../../helpers/platform.ts';

const DOMAIN = `erp-${Date.now().toString(36)}.acme.test`;
const records = new Map<string, { type: 'CNAME' | 'TXT'; value: string }>();
let dnsServer: ReturnType<typeof dns2.createServer>;
let p: Platform;
let alice: TestUser;
let bob: TestUser;
let instanceId: string;
let subdomain: string;

function startDns(port: number) {
  const { Packet } = dns2;
  const server = dns2.createServer({
    udp: true,
    handle: (request: any, send: (r: any) => void) => {
      const response = Packet.createResponseFromRequest(request);
      const [q] = request.questions;
      const r = records.get(`${q.type === Packet.TYPE.TXT ? 'TXT' : 'CNAME'} ${q.name.toLowerCase()}`);
      if (r && q.type === Packet.TYPE.CNAME) response.answers.push({ name: q.name, type: Packet.TYPE.CNAME, class: Packet.CLASS.IN, ttl: 1, domain: r.value });
      if (r && q.type === Packet.TYPE.TXT) response.answers.push({ name: q.name, type: Packet.TYPE.TXT, class: Packet.CLASS.IN, ttl: 1, data: r.value });
      if (!r) response.header.rcode = 3; // NXDOMAIN
      send(response);
    },
  });
  return server.listen({ udp: { port, address: '127.0.0.1' } }).then(() => server);
}

async function api(method: 'GET' | 'POST', path: string, token: string, body?: unknown) {
  const res = await fetch(`${p.gateway}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, body: res.status === 204 ? undefined : await res.json() };
}

/** GET `path` through the gateway with `Host: host` (fetch cannot set Host). */
function viaHost(host: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: Number(p.env.GATEWAY_PORT), path, headers: { host: `${host}:${p.env.GATEWAY_PORT}` } }, (res) => {
      let b = '';
      res.on('data', (c) => (b += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function until<T>(what: string, f: () => Promise<T>, ok: (v: T) => boolean, ms = 120_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v).slice(0, 300)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function webBaseUrl(): Promise<string> {
  const r = await db('instance').one('SELECT db_name, db_role, db_password_sealed FROM instances WHERE id = $1', [instanceId]);
  const c = new pg.Client({ host: config().DATABASE_HOST, port: config().DATABASE_PORT, database: r.db_name, user: r.db_role, password: unseal(r.db_password_sealed) });
  await c.connect();
  try {
    return (await c.query("SELECT value FROM ir_config_parameter WHERE key = 'web.base.url'")).rows[0].value;
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  const dnsPort = await freePort();
  dnsServer = await startDns(dnsPort);
  p = await startPlatform({ env: { DNS_SERVERS: `127.0.0.1:${dnsPort}` } });
  [alice, bob] = await Promise.all([createTestUser(), createTestUser()]);
  subdomain = `dom-${Date.now().toString(36)}`;
  const created = await api('POST', '/api/instances', alice.accessToken, { name: 'Acme', subdomain, plan: 'basic-test-trial', odooVersion: '17', trial: true });
  expect(created.status, JSON.stringify(created.body)).toBe(202);
  instanceId = created.body.id;
  await until(
    'running',
    () => api('GET', `/api/instances?id=${instanceId}`, alice.accessToken),
    (r) => r.body.status === 'running',
  );
}, 240_000);

afterAll(async () => {
  await p?.stop();
  await dnsServer?.close();
});

describe('custom domains', () => {
  let token: string;

  it('a claim shows the records to create and is not routed', async () => {
    const added = await api('POST', '/api/domains', alice.accessToken, { action: 'add', instanceId, domain: DOMAIN.toUpperCase() });
    expect(added.status, JSON.stringify(added.body)).toBe(201);
    expect(added.body).toMatchObject({ domain: DOMAIN, verified: false });
    const [cname, txt] = added.body.records;
    expect(cname).toEqual({ type: 'CNAME', name: DOMAIN, value: `${subdomain}.localhost` });
    expect(txt.name).toBe(`_saasodoo-challenge.${DOMAIN}`);
    token = txt.value;
    expect(token).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    const r = await viaHost(DOMAIN, '/web/login');
    expect(r.status).toBe(404);
    expect(r.body).not.toMatch(/<form/i);
  });

  it('bad input names the field; the plan allows one domain', async () => {
    const bad = await api('POST', '/api/domains', alice.accessToken, { action: 'add', instanceId, domain: 'not a domain' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.fields).toHaveProperty('domain');
    const own = await api('POST', '/api/domains', alice.accessToken, { action: 'add', instanceId, domain: `${subdomain}.localhost` });
    expect(own.status).toBe(400);
    const second = await api('POST', '/api/domains', alice.accessToken, { action: 'add', instanceId, domain: `shop.${DOMAIN}` });
    expect(second.status).toBe(409);
    expect(second.body.error.message).toMatch(/allows 1 custom domain/);
  });

  it('verification checks both records and says which is missing', async () => {
    let r = await api('POST', '/api/domains', alice.accessToken, { action: 'verify', instanceId, domain: DOMAIN });
    expect(r.body).toMatchObject({ verified: false, problem: `No CNAME record for ${DOMAIN} yet` });
    records.set(`CNAME ${DOMAIN}`, { type: 'CNAME', value: 'elsewhere.example.org' });
    r = await api('POST', '/api/domains', alice.accessToken, { action: 'verify', instanceId, domain: DOMAIN });
    expect(r.body.problem).toBe(`${DOMAIN} points to elsewhere.example.org, not to ${subdomain}.localhost`);
    records.set(`CNAME ${DOMAIN}`, { type: 'CNAME', value: `${subdomain}.localhost` });
    r = await api('POST', '/api/domains', alice.accessToken, { action: 'verify', instanceId, domain: DOMAIN });
    expect(r.body.problem).toBe(`No TXT record for _saasodoo-challenge.${DOMAIN} yet`);
    records.set(`TXT _saasodoo-challenge.${DOMAIN}`, { type: 'TXT', value: 'someone-else’s-token' });
    r = await api('POST', '/api/domains', alice.accessToken, { action: 'verify', instanceId, domain: DOMAIN });
    expect(r.body.problem).toMatch(/does not hold this domain’s token/);
    expect((await viaHost(DOMAIN, '/web/login')).status).toBe(404);
  });

  it('verified: routed to the customer’s Odoo, and Odoo calls itself by it', async () => {
    records.set(`TXT _saasodoo-challenge.${DOMAIN}`, { type: 'TXT', value: token });
    const r = await api('POST', '/api/domains', alice.accessToken, { action: 'verify', instanceId, domain: DOMAIN });
    expect(r.body).toMatchObject({ verified: true, primary: true, problem: null });
    const page = await until(
      'routed',
      () => viaHost(DOMAIN, '/web/login'),
      (x) => x.status === 200,
      30_000,
    );
    expect(page.body).toMatch(/<form/i);
    await until('web.base.url', webBaseUrl, (u) => u === `http://${DOMAIN}:${p.env.GATEWAY_PORT}`, 30_000);
    const inst = await api('GET', `/api/instances?id=${instanceId}`, alice.accessToken);
    expect(inst.body.odoo.url).toBe(`http://${DOMAIN}:${p.env.GATEWAY_PORT}`);
  });

  it('another tenant cannot claim a domain verified elsewhere', async () => {
    const bobInstance = randomUUID();
    await db('instance').none(
      `INSERT INTO instances (id, customer_id, name, subdomain, plan, odoo_version, status, billing_status, resources)
       VALUES ($1, $2, 'Bob Co', $3, 'basic-immediate', '17', 'stopped', 'paid', '{"cpu":1,"memoryMiB":1024,"storageGiB":5}')`,
      [bobInstance, bob.userId, `bob-${Date.now().toString(36)}`],
    );
    const r = await api('POST', '/api/domains', bob.accessToken, { action: 'add', instanceId: bobInstance, domain: DOMAIN });
    expect(r.status).toBe(409);
    expect(r.body.error.message).toMatch(/already in use/);
    const list = await api('GET', `/api/domains?instanceId=${instanceId}`, bob.accessToken);
    expect(list.status).toBe(404);
  });

  it('a verified domain whose records go away is still served for a week, then released; records back, verified again', async () => {
    const check = () => api('POST', '/api/domains', alice.accessToken, { action: 'verify', instanceId, domain: DOMAIN });
    const txt = records.get(`TXT _saasodoo-challenge.${DOMAIN}`)!;
    records.delete(`TXT _saasodoo-challenge.${DOMAIN}`);
    expect((await claimsToCheck()).map((c) => c.domain)).toContain(DOMAIN); // the daily schedule checks verified domains too
    const failing = await check();
    expect(failing.body).toMatchObject({ verified: true, problem: `No TXT record for _saasodoo-challenge.${DOMAIN} yet` });
    expect(Date.parse(failing.body.releasesAt) - Date.parse(failing.body.failingSince)).toBe(7 * 86_400_000);
    expect((await viaHost(DOMAIN, '/web/login')).status).toBe(200);
    // A week on (the clock moved by moving when it started failing):
    await db('instance').none(`UPDATE instance_domains SET failing_since = now() - interval '7 days 1 minute' WHERE domain = $1`, [DOMAIN]);
    expect((await check()).body).toMatchObject({ verified: false, failingSince: null });
    await until(
      'released',
      () => viaHost(DOMAIN, '/web/login'),
      (x) => x.status === 404,
      30_000,
    );
    records.set(`TXT _saasodoo-challenge.${DOMAIN}`, txt);
    expect((await check()).body).toMatchObject({ verified: true, problem: null, failingSince: null });
    await until(
      'routed again',
      () => viaHost(DOMAIN, '/web/login'),
      (x) => x.status === 200,
      30_000,
    );
  });

  it('removed: routed nowhere, and Odoo’s address is its own again', async () => {
    const r = await api('POST', '/api/domains', alice.accessToken, { action: 'remove', instanceId, domain: DOMAIN });
    expect(r.status).toBe(204);
    await until(
      'unrouted',
      () => viaHost(DOMAIN, '/web/login'),
      (x) => x.status === 404,
      30_000,
    );
    await until('web.base.url', webBaseUrl, (u) => u === `http://${subdomain}.localhost:${p.env.GATEWAY_PORT}`, 30_000);
    const list = await api('GET', `/api/domains?instanceId=${instanceId}`, alice.accessToken);
    expect(list.body.items).toEqual([]);
  });
});
