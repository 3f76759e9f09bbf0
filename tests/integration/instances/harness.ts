/**
 * What the instance tests share: the instance functions served in-process
 * (startFunction), the instance runtime (the local daemon, or the docker
 * driver with its host side and a gateway), a K_SINK that keeps every
 * CloudEvent the functions publish, and a stand-in for the billing
 * function's HTTP *contract* (POST /api/billing startSubscription / cancel,
 * GET /api/trial-eligibility) until the real one is wired by the lead.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { HTTP, type CloudEvent } from 'cloudevents';
import { afterAll, beforeAll } from 'vitest';
import { config, resetConfig } from '@saasodoo/platform/config';
import { closeDatabases, db } from '@saasodoo/platform/db/index';
import { dropNamespace, migrate } from '@saasodoo/platform/db/migrate';
import { buildEvent } from '@saasodoo/platform/emit';
import { startFunction } from '@saasodoo/platform/host/run-function';
import type { FaasFunction } from '@saasodoo/platform/fn';
import { stopRelays } from '@saasodoo/platform/outbox';
import { resetRuntime } from '@saasodoo/platform/runtime/index';
import { startLocalRuntime, type LocalRuntime } from '@saasodoo/platform/runtime/local/daemon';
import { localRuntimeToken } from '@saasodoo/platform/runtime/local/driver';
import { DockerDriver } from '@saasodoo/platform/runtime/docker/driver';
import { startDockerRuntime, type DockerRuntimeHost } from '@saasodoo/platform/runtime/docker/host';
import { startGateway, type InstanceRouter } from '@saasodoo/platform/host/gateway';
import type { Supervisor } from '@saasodoo/platform/host/supervisor';
import { testOdooImage } from '../../helpers/docker-image.ts';
import { createTestUser, type TestUser } from '../../helpers/auth.ts';
import { freePort, freePortRange } from '../../helpers/ports.ts';
import { startTestKillbill, type TestKillbill } from '../../helpers/killbill.ts';
import { loadTriggers } from '@saasodoo/events/triggers';

export type Received = { id: string; type: string; subject?: string; data: any };

function listen(handler: http.RequestListener): Promise<{ server: http.Server; url: string }> {
  const server = http.createServer(handler);
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
    }),
  );
}

/** Forwards /api/<fn> to the function served here under that name (what the gateway does). */
function proxy(req: http.IncomingMessage, res: http.ServerResponse, targets: Record<string, string>): void {
  const url = new URL(req.url ?? '/', 'http://x');
  const name = /^\/api\/([a-z-]+)$/.exec(url.pathname)?.[1];
  const target = name ? targets[name] : undefined;
  if (!target) {
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"code":"not_found","message":"no such function"}}');
    return;
  }
  const to = new URL(target);
  const fwd = http.request({ host: to.hostname, port: to.port, path: `/${url.search}`, method: req.method, headers: req.headers }, (up) => {
    res.writeHead(up.statusCode ?? 502, up.headers);
    up.pipe(res);
  });
  fwd.on('error', () => res.writeHead(503).end());
  req.pipe(fwd);
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let b = '';
    req.on('data', (c) => (b += c));
    req.on('end', () => resolve(b));
  });
}

/** The billing contract stand-in: behaviour switchable per test. */
export type BillingStandIn = {
  eligible: boolean;
  /** 'ok' → 201, 'trial_unavailable' → 409, 'down' → connection answered 503. */
  start: 'ok' | 'trial_unavailable' | 'down';
  cancel: 'ok' | 'down';
  calls: { action: string; body: any; authorization?: string }[];
};

export type HarnessOptions = {
  /** Serve the real billing, trial-eligibility and lifecycle functions against the Kill Bill simulator instead of the stand-in. */
  realBilling?: boolean;
  /** Route published events to the functions served here, by events/triggers.yaml (a small in-test broker). */
  dispatch?: boolean;
  /**
   * The runtime driver the functions use: `local` (default: the local runtime
   * daemon) or `docker` (the real Docker engine running the stand-in image
   * the tests build, behind a gateway of its own).
   */
  driver?: 'local' | 'docker';
  /** Driver `docker`: the network (DOCKER_NETWORK); default `host`. */
  dockerNetwork?: string;
};

export type Harness = {
  events: Received[];
  kb?: TestKillbill;
  /** The real billing-side functions (realBilling), by name. */
  extra: Record<string, string>;
  billing: BillingStandIn;
  fn: Record<'account' | 'instances' | 'instanceAction' | 'staging' | 'provision' | 'instanceOps' | 'quotaSet' | 'healthProbe' | 'backupDownload', string>;
  /** Routes `<subdomain>.localhost` as the gateway does (Odoo's port or a status page), whatever the driver. */
  router: InstanceRouter;
  /** The local runtime daemon (driver `local`). */
  runtime?: LocalRuntime;
  /** Driver `docker`: the host side (router, events) and a gateway routing `<subdomain>.localhost` on this port. */
  docker?: { host: DockerRuntimeHost; gatewayPort: number };
  stop(): Promise<void>;
};

/**
 * Starts everything; call in beforeAll. Sets K_SINK, GATEWAY_URL (billing
 * stand-in) and LOCAL_RUNTIME_PORT, then migrates the instance and auth
 * databases of this file's namespace.
 */
export async function startHarness(o: HarnessOptions = {}): Promise<Harness> {
  const events: Received[] = [];
  const extra: Record<string, string> = {};
  /** Subscribers served here, by function name (for the optional dispatcher). */
  const served: Record<string, string> = {};
  const routes = o.dispatch ? loadTriggers() : [];
  const sink = await listen(async (req, res) => {
    const body = await readBody(req);
    try {
      const ev = HTTP.toEvent({ headers: req.headers as Record<string, string>, body }) as CloudEvent<unknown>;
      const data = typeof ev.data === 'string' ? JSON.parse(ev.data) : ev.data;
      events.push({ id: ev.id, type: ev.type, subject: ev.subject, data });
      res.writeHead(202).end();
      // A minimal dispatcher (no retries beyond "busy"): the triggers.yaml rows whose subscriber is served here.
      for (const t of routes.filter((r) => r.filter.attributes.type === ev.type && served[r.subscriber])) {
        void (async () => {
          for (let attempt = 0; attempt < 20; attempt++) {
            const r = await deliver(served[t.subscriber], ev.type, data, ev.id).catch(() => ({ status: 503, body: '' }));
            if (r.status < 300 || (r.status >= 400 && r.status < 409) || r.status === 410) return;
            await new Promise((w) => setTimeout(w, 200));
          }
        })();
      }
    } catch {
      res.writeHead(400).end();
    }
  });
  const billing: BillingStandIn = { eligible: true, start: 'ok', cancel: 'ok', calls: [] };
  let fn!: Harness['fn'];
  const bill = await listen(async (req, res) => {
    // The customer's profile (create reads their email for the Odoo login) comes from the real account function.
    if (req.url?.startsWith('/api/account')) return proxy(req, res, { account: fn.account });
    if (o.realBilling) return proxy(req, res, extra);
    const raw = await readBody(req);
    const send = (status: number, body?: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(body === undefined ? '' : JSON.stringify(body));
    };
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method === 'GET' && url.pathname === '/api/trial-eligibility') {
      return send(200, { eligible: billing.eligible, reason: billing.eligible ? 'eligible' : 'trial_used', trialDays: 14 });
    }
    if (req.method === 'POST' && url.pathname === '/api/billing') {
      const body = JSON.parse(raw || '{}');
      billing.calls.push({ action: body.action, body, authorization: req.headers.authorization });
      if (body.action === 'startSubscription') {
        if (billing.start === 'down') return send(503, { error: { code: 'unavailable', message: 'down' } });
        if (billing.start === 'trial_unavailable') return send(409, { error: { code: 'trial_unavailable', message: 'no trial' } });
        return send(201, { subscriptionId: randomUUID() });
      }
      if (body.action === 'cancel') {
        if (billing.cancel === 'down') return send(503, { error: { code: 'unavailable', message: 'down' } });
        return send(202, { cancelled: true });
      }
    }
    send(404, { error: { code: 'not_found', message: 'no such route' } });
  });

  const portBase = await freePortRange(20);
  let runtime: LocalRuntime | undefined;
  let docker: Harness['docker'];
  let gateway: http.Server | undefined;
  if (o.driver === 'docker') {
    Object.assign(process.env, { RUNTIME_DRIVER: 'docker', ODOO_IMAGE: await testOdooImage(), DOCKER_NETWORK: o.dockerNetwork ?? 'host', LOCAL_INSTANCE_PORT_BASE: String(portBase) });
    resetConfig();
    const host = await startDockerRuntime(DockerDriver.fromConfig());
    gateway = await startGateway({ port: 0, supervisor: {} as Supervisor, baseDomain: 'localhost', instanceRouter: (sub) => host.router(sub) });
    docker = { host, gatewayPort: (gateway.address() as AddressInfo).port };
  } else {
    runtime = await startLocalRuntime({
      port: 0,
      dataDir: config().dataDir,
      token: localRuntimeToken(),
      portBase,
      baseDomain: 'localhost',
      gatewayPort: 8080,
      scheme: 'http',
      readyTimeoutMs: 20_000,
    });
    process.env.LOCAL_RUNTIME_PORT = String(runtime.port);
  }
  process.env.K_SINK = sink.url;
  process.env.GATEWAY_URL = bill.url;
  process.env.PROVISION_READY_TIMEOUT = o.driver === 'docker' ? '40' : '20';
  resetConfig();
  resetRuntime();
  let kb: TestKillbill | undefined;
  if (o.realBilling) {
    await migrate();
    kb = await startTestKillbill();
  } else {
    await migrate({ databases: ['auth', 'instance'] });
  }

  const serve = async (mod: { default: FaasFunction }) => {
    const s = await startFunction(mod.default, await freePort());
    servers.push(s);
    return `http://127.0.0.1:${(s.address() as AddressInfo).port}/`;
  };
  const servers: http.Server[] = [];
  fn = {
    account: await serve(await import('@saasodoo/fn-account')),
    instances: await serve(await import('@saasodoo/fn-instances')),
    instanceAction: await serve(await import('@saasodoo/fn-instance-action')),
    staging: await serve(await import('@saasodoo/fn-staging')),
    provision: await serve(await import('@saasodoo/fn-provision')),
    instanceOps: await serve(await import('@saasodoo/fn-instance-ops')),
    quotaSet: await serve(await import('@saasodoo/fn-quota-set')),
    healthProbe: await serve(await import('@saasodoo/fn-health-probe')),
    backupDownload: await serve(await import('@saasodoo/fn-backup-download')),
  };
  Object.assign(served, {
    provision: fn.provision,
    'instance-ops': fn.instanceOps,
    'quota-set': fn.quotaSet,
    'health-probe': fn.healthProbe,
  });
  if (o.realBilling) {
    extra.billing = await serve(await import('@saasodoo/fn-billing'));
    extra['trial-eligibility'] = await serve(await import('@saasodoo/fn-trial-eligibility'));
    served.lifecycle = extra.lifecycle = await serve(await import('@saasodoo/fn-lifecycle'));
    // billing checks the instance of a startSubscription with the instances function (billing/instance-check.ts).
    extra.instances = fn.instances;
  }
  return {
    events,
    billing,
    fn,
    runtime,
    docker,
    kb,
    extra,
    router: (sub) => (docker ? docker.host.router(sub) : runtime!.router(sub)),
    async stop() {
      await stopRelays().catch(() => {});
      if (o.realBilling) {
        await (await import('@saasodoo/platform/redis')).closeRedis();
      }
      for (const s of servers) await new Promise((r) => s.close(r));
      await runtime?.stop();
      await docker?.host.stop();
      if (gateway) await new Promise((r) => gateway!.close(r));
      await kb?.stop();
      sink.server.close();
      bill.server.close();
      await closeDatabases();
      await dropNamespace();
    },
  };
}

/** Calls an HTTP function as a customer (Bearer token). */
export async function call(url: string, token: string | undefined, o: { method?: 'GET' | 'POST'; query?: Record<string, string>; body?: unknown } = {}) {
  const u = new URL(url);
  for (const [k, v] of Object.entries(o.query ?? {})) u.searchParams.set(k, v);
  const res = await fetch(u, {
    method: o.method ?? (o.body ? 'POST' : 'GET'),
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(o.body ? { 'content-type': 'application/json' } : {}) },
    body: o.body ? JSON.stringify(o.body) : undefined,
  });
  const text = await res.text();
  let json: any;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = text;
  }
  return { status: res.status, body: json, headers: res.headers };
}

/** Delivers one CloudEvent (binary mode) to an event function, as the broker would; returns the HTTP status. */
export async function deliver(url: string, type: string, data: unknown, id: string = randomUUID()): Promise<{ status: number; body: string }> {
  const ev = buildEvent(type, data, { id });
  const msg = HTTP.binary(ev);
  const res = await fetch(url, { method: 'POST', headers: msg.headers as Record<string, string>, body: msg.body as string });
  return { status: res.status, body: await res.text() };
}

/** The instance row straight from the instance database. */
export function row(id: string) {
  return db('instance').one('SELECT * FROM instances WHERE id = $1', [id]);
}

/** Waits (polling) until `check` is truthy; throws with `what` after `ms`. Not a timed assertion: a bound on waiting. */
export async function until<T>(what: string, check: () => Promise<T> | T, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export { migrate };

/** The latest command the functions wrote to the outbox for `instanceId` (what the broker would deliver). */
export async function queued(instanceId: string, type: string): Promise<{ id: string; type: string; data: any }> {
  return db('instance').one(`SELECT id, type, data FROM outbox WHERE subject = $1 AND type = $2 ORDER BY created_at DESC, id LIMIT 1`, [instanceId, `com.saasodoo.${type}`]);
}

/** Delivers the queued command of that type to `url` (same event id, as the broker would). */
export async function deliverQueued(url: string, instanceId: string, type: string) {
  const q = await queued(instanceId, type);
  return deliver(url, q.type, q.data, q.id);
}

/** Creates an instance for `token`'s customer and provisions it; returns its id. */
export async function provisioned(h: Harness, token: string, customerId: string, over: Record<string, unknown> = {}): Promise<string> {
  const subdomain = `i-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
  const r = await call(h.fn.instances, token, { body: { name: 'Shop', subdomain, plan: 'basic-monthly', odooVersion: '17', trial: true, ...over } });
  if (r.status !== 202) throw new Error(`create: ${r.status} ${JSON.stringify(r.body)}`);
  const p = await deliver(h.fn.provision, 'com.saasodoo.instance.provision', { instanceId: r.body.id, customerId });
  if (p.status >= 300) throw new Error(`provision: ${p.status} ${p.body}`);
  return r.body.id;
}

/** A file's harness with its one customer and provisioned instance (filled in by beforeAll). */
export type InstanceHarness = Harness & {
  /** The customer who owns the instance. */
  alice: TestUser;
  /** The provisioned instance's id. */
  id: string;
  /** One health-probe tick, as the schedule sends it. */
  tick(): Promise<{ status: number; body: string }>;
  /** The events published so far about the instance, of one type (`instance.ready`: without the com.saasodoo. prefix). */
  eventsOf(type: string): Received[];
};

/**
 * The setup of a file that tests one running instance: beforeAll starts the
 * harness with one customer (alice) owning one provisioned instance,
 * afterAll stops it. The object returned is filled in by beforeAll.
 */
export function harnessWithInstance(o: HarnessOptions = {}): InstanceHarness {
  const t = {
    tick: () => deliver(t.fn.healthProbe, 'com.saasodoo.health.tick', { at: new Date().toISOString() }),
    eventsOf: (type: string) => t.events.filter((e) => e.type === `com.saasodoo.${type}` && e.subject === t.id),
  } as InstanceHarness;
  let h: Harness | undefined;
  beforeAll(async () => {
    h = await startHarness(o);
    const alice = await createTestUser();
    Object.assign(t, h, { alice, id: await provisioned(h, alice.accessToken, alice.userId) });
  });
  afterAll(async () => {
    await h?.stop();
  });
  return t;
}

/**
 * Fetches a backup as a customer does: asks the instances function for a
 * signed link, then follows it. Returns the link's token and the download.
 */
export async function downloadBackup(h: Harness, token: string, id: string, backupId: string): Promise<{ linkToken: string; res: Response }> {
  const link = await call(h.fn.instances, token, { query: { id, backupLink: backupId } });
  if (link.status !== 200) throw new Error(`backup link: ${link.status} ${JSON.stringify(link.body)}`);
  const linkToken = new URL(link.body.url).searchParams.get('token')!;
  return { linkToken, res: await fetch(`${h.fn.backupDownload}?token=${encodeURIComponent(linkToken)}`) };
}

/**
 * Odoo's JSON-RPC login through the gateway listening on `port`, at `host` (the instance's
 * address): the uid, or the exception name Odoo answers with (a refused login is HTTP 200
 * with a JSON-RPC error, so any other status fails).
 */
export async function odooLoginAt(port: number, host: string, database: string, login: string, password: string): Promise<{ uid?: number; error?: string }> {
  const payload = JSON.stringify({ jsonrpc: '2.0', method: 'call', id: 1, params: { db: database, login, password } });
  const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: 'POST', path: '/web/session/authenticate', headers: { host, 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } },
      (res) => {
        let b = '';
        res.on('data', (c) => (b += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
  if (status !== 200) throw new Error(`Odoo's login answered HTTP ${status}: ${body.slice(0, 200)}`);
  const j = JSON.parse(body);
  return j.result ? { uid: j.result.uid } : { error: j.error?.data?.name };
}
