/**
 * The Kill Bill simulator's REST API: the subset of Kill Bill's /1.0/kb API
 * the platform's adapter uses, with Kill Bill's authentication (HTTP basic
 * plus tenant api key and secret, 401 otherwise), answer shapes (validated
 * against kbswagger.yaml by the contract test), the test clock, and a few
 * simulator-only calls under /simulator/ (payment outcome, status).
 */
import { timingSafeEqual } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Db, Tx } from '../db/index.ts';
import { log } from '../log.ts';
import { Engine, SimError } from './engine.ts';
import { createCheckoutSession, SIM_PUBLISHABLE_KEY } from './stripe.ts';
import type { Delivery } from './delivery.ts';
import { clockNow, createTenant, find, get, publicView, tenantByKey, type Doc, type Tenant } from './store.ts';

export type Credentials = { username: string; password: string };

type Ctx = { t: Tx; tenant: Tenant; query: URLSearchParams; body: any; rawBody: string; params: string[]; createdBy?: string };
type Answer = { status: number; body?: unknown; headers?: Record<string, string>; text?: string };

/** `waitsForQueues`: like Kill Bill's TestResource, answer only once the queues drained or `timeoutSec` (default 5) passed. */
type Route = { method: string; path: RegExp; handle: (c: Ctx) => Promise<Answer>; write?: boolean; waitsForQueues?: boolean; pluginTenant?: boolean };

/**
 * Kill Bill's TenantFilter skips the tenant headers only for exactly these paths; everything else
 * (the test clock, uploadPluginConfig, the simulator's own calls) needs X-Killbill-ApiKey/ApiSecret.
 */
export function needsTenant(pathname: string): boolean {
  return !(pathname === '/1.0/kb/tenants' || pathname === '/1.0/kb/nodesInfo' || pathname.startsWith('/1.0/kb/security/') || pathname.startsWith('/plugins/'));
}

/** What a tenant without an uploaded catalogue / overdue config answers: no versions, no states. */
export const NO_CATALOG_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<catalogs>\n    <versions/>\n</catalogs>\n';
export const NO_OVERDUE_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<overdueConfig>\n    <accountOverdueStates/>\n</overdueConfig>\n';

const KB = '/1.0/kb';
const json = (status: number, body?: unknown, headers?: Record<string, string>): Answer => ({ status, body, headers });
/** Kill Bill answers every create with 201, an empty body and the new object's URL in Location (JaxrsUriBuilder.buildResponse). */
const created = (path: string): Answer => ({ status: 201, headers: { location: path } });
const bool = (q: URLSearchParams, k: string) => q.get(k) === 'true';

function eq(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** A tiny async mutex: the simulator applies one change at a time, like a single Kill Bill node's bus. */
class Mutex {
  private last: Promise<void> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.last.then(fn);
    this.last = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}

export function buildRoutes(engine: Engine, stripeUrl: string): Route[] {
  const sub = async (c: Ctx, id: string) => publicView(await engine.subscription(c.t, c.tenant, id));
  const bundleView = async (c: Ctx, b: Doc) => {
    const subs = (await find(c.t, 'subscription', c.tenant.id, { externalKey: b.externalKey })).filter((s) => s.bundleId === b.bundleId);
    return {
      ...publicView(b),
      subscriptions: subs.map(publicView),
      // BundleTimelineJson (kbswagger): the bundle's subscription events, oldest first.
      timeline: {
        accountId: b.accountId,
        bundleId: b.bundleId,
        externalKey: b.externalKey,
        events: subs
          .flatMap((s) => (s.events ?? []).map((e: Doc) => ({ ...e, subscriptionId: s.subscriptionId })))
          .sort((x: Doc, y: Doc) => String(x.effectiveDate).localeCompare(String(y.effectiveDate))),
      },
    };
  };
  return [
    // tenants
    {
      method: 'POST',
      path: /^\/1\.0\/kb\/tenants$/,
      write: true,
      handle: async (c) => {
        if (!c.body?.apiKey || !c.body?.apiSecret) throw new SimError(400, 'TenantJson apiKey and apiSecret need to be set');
        if (await tenantByKey(c.t, c.body.apiKey)) throw new SimError(409, `Tenant already exists for key ${c.body.apiKey}`);
        const t = await createTenant(c.t, c.body.apiKey, c.body.apiSecret, c.body.externalKey);
        return created(`${KB}/tenants/${t.id}`);
      },
    },
    {
      method: 'GET',
      path: /^\/1\.0\/kb\/tenants$/,
      handle: async (c) => {
        const t = await tenantByKey(c.t, c.query.get('apiKey') ?? '');
        if (!t) throw new SimError(404, 'TenantCacheInvalidation: tenant does not exist');
        return json(200, { tenantId: t.id, apiKey: t.api_key, externalKey: t.id });
      },
    },
    {
      method: 'GET',
      path: /^\/1\.0\/kb\/tenants\/registerNotificationCallback$/,
      handle: async (c) => json(200, { key: 'PUSH_NOTIFICATION_CB', values: c.tenant.callback_url ? [c.tenant.callback_url] : [] }),
    },
    {
      method: 'POST',
      path: /^\/1\.0\/kb\/tenants\/registerNotificationCallback$/,
      write: true,
      handle: async (c) => {
        const cb = c.query.get('cb');
        if (!cb) throw new SimError(400, 'Callback should not be null');
        // Single-value key: registering replaces any previous URL (TenantKV.PUSH_NOTIFICATION_CB).
        await c.t.none('UPDATE kb_tenants SET callback_url = $2 WHERE id = $1', [c.tenant.id, cb]);
        return created(`${KB}/tenants/registerNotificationCallback`);
      },
    },
    {
      method: 'DELETE',
      path: /^\/1\.0\/kb\/tenants\/registerNotificationCallback$/,
      write: true,
      handle: async (c) => {
        await c.t.none('UPDATE kb_tenants SET callback_url = NULL WHERE id = $1', [c.tenant.id]);
        return json(204);
      },
    },
    // catalogue and overdue
    { method: 'GET', path: /^\/1\.0\/kb\/catalog\/xml$/, handle: async (c) => ({ status: 200, text: c.tenant.catalog_xml ?? NO_CATALOG_XML }) },
    {
      method: 'POST',
      path: /^\/1\.0\/kb\/catalog\/xml$/,
      write: true,
      handle: async (c) => {
        if (!/<catalog[\s>]/.test(c.rawBody)) throw new SimError(400, 'Invalid catalog XML');
        await c.t.none('UPDATE kb_tenants SET catalog_xml = $2 WHERE id = $1', [c.tenant.id, c.rawBody]);
        return created(`${KB}/catalog`);
      },
    },
    { method: 'GET', path: /^\/1\.0\/kb\/overdue\/xml$/, handle: async (c) => ({ status: 200, text: c.tenant.overdue_xml ?? NO_OVERDUE_XML }) },
    {
      method: 'POST',
      path: /^\/1\.0\/kb\/overdue\/xml$/,
      write: true,
      handle: async (c) => {
        if (!/<overdueConfig[\s>]/.test(c.rawBody)) throw new SimError(400, 'Invalid overdue XML');
        await c.t.none('UPDATE kb_tenants SET overdue_xml = $2 WHERE id = $1', [c.tenant.id, c.rawBody]);
        return created(`${KB}/overdue`);
      },
    },
    // accounts
    {
      method: 'POST',
      path: /^\/1\.0\/kb\/accounts$/,
      write: true,
      handle: async (c) => {
        const a = await engine.createAccount(c.t, c.tenant, c.body ?? {});
        return created(`${KB}/accounts/${a.accountId}`);
      },
    },
    {
      method: 'GET',
      path: /^\/1\.0\/kb\/accounts$/,
      handle: async (c) => {
        const key = c.query.get('externalKey');
        if (!key) throw new SimError(400, 'externalKey needs to be set');
        const a = (await find(c.t, 'account', c.tenant.id, { externalKey: key }))[0];
        if (!a) throw new SimError(404, `Account does not exist for externalKey ${key}`);
        const withBal = bool(c.query, 'accountWithBalance') || bool(c.query, 'accountWithBalanceAndCBA');
        return json(200, publicView(withBal ? await engine.withBalance(c.t, c.tenant, a) : a));
      },
    },
    {
      method: 'GET',
      path: /^\/1\.0\/kb\/accounts\/([^/]+)$/,
      handle: async (c) => {
        const a = await engine.account(c.t, c.tenant, c.params[0]);
        const withBal = bool(c.query, 'accountWithBalance') || bool(c.query, 'accountWithBalanceAndCBA');
        return json(200, publicView(withBal ? await engine.withBalance(c.t, c.tenant, a) : a));
      },
    },
    {
      method: 'GET',
      path: /^\/1\.0\/kb\/accounts\/([^/]+)\/bundles$/,
      handle: async (c) => {
        await engine.account(c.t, c.tenant, c.params[0]);
        const bundles = await find(c.t, 'bundle', c.tenant.id, { accountId: c.params[0], externalKey: c.query.get('externalKey') ?? undefined });
        return json(200, await Promise.all(bundles.map((b) => bundleView(c, b))));
      },
    },
    {
      method: 'GET',
      path: /^\/1\.0\/kb\/accounts\/([^/]+)\/invoices$/,
      handle: async (c) => {
        await engine.account(c.t, c.tenant, c.params[0]);
        const withItems = bool(c.query, 'includeInvoiceComponents');
        let invoices = await find(c.t, 'invoice', c.tenant.id, { accountId: c.params[0] });
        if (bool(c.query, 'unpaidInvoicesOnly')) invoices = invoices.filter((i) => i.balance > 0);
        return json(
          200,
          invoices.map((i) => ({ ...publicView(i), items: withItems ? i.items : [] })),
        );
      },
    },
    {
      method: 'GET',
      path: /^\/1\.0\/kb\/accounts\/([^/]+)\/payments$/,
      handle: async (c) => {
        await engine.account(c.t, c.tenant, c.params[0]);
        return json(200, (await find(c.t, 'payment', c.tenant.id, { accountId: c.params[0] })).map(publicView));
      },
    },
    {
      method: 'GET',
      path: /^\/1\.0\/kb\/accounts\/([^/]+)\/paymentMethods$/,
      handle: async (c) => {
        await engine.account(c.t, c.tenant, c.params[0]);
        const withInfo = bool(c.query, 'withPluginInfo');
        return json(
          200,
          (await find(c.t, 'paymentMethod', c.tenant.id, { accountId: c.params[0] }))
            .filter((p) => !p._deleted || bool(c.query, 'includedDeleted'))
            .map((p) => {
              const v = publicView(p);
              if (!withInfo) delete v.pluginInfo;
              return v;
            }),
        );
      },
    },
    {
      method: 'POST',
      path: /^\/1\.0\/kb\/accounts\/([^/]+)\/paymentMethods$/,
      write: true,
      handle: async (c) => {
        const props = c.query.getAll('pluginProperty').map((p) => ({ key: p.split('=')[0], value: p.split('=').slice(1).join('=') }));
        const pm = await engine.addPaymentMethod(c.t, c.tenant, c.params[0], c.body ?? {}, bool(c.query, 'isDefault'), bool(c.query, 'payAllUnpaidInvoices'), props);
        return created(`${KB}/paymentMethods/${pm.paymentMethodId}`);
      },
    },
    {
      method: 'DELETE',
      path: /^\/1\.0\/kb\/paymentMethods\/([^/]+)$/,
      write: true,
      handle: async (c) => {
        await engine.deletePaymentMethod(c.t, c.tenant, c.params[0], { autoPayOff: bool(c.query, 'deleteDefaultPmWithAutoPayOff'), force: bool(c.query, 'forceDefaultPmDeletion') });
        return json(204);
      },
    },
    {
      method: 'GET',
      path: /^\/1\.0\/kb\/paymentMethods\/([^/]+)$/,
      handle: async (c) => {
        const pm = await get(c.t, 'paymentMethod', c.tenant.id, c.params[0]);
        if (!pm || (pm._deleted && !bool(c.query, 'includedDeleted'))) throw new SimError(404, `Object id=${c.params[0]} type=PAYMENT_METHOD doesn't exist!`);
        return json(200, publicView(pm));
      },
    },
    {
      method: 'GET',
      path: /^\/1\.0\/kb\/accounts\/([^/]+)\/overdue$/,
      handle: async (c) => json(200, engine.overdueState(c.tenant, await engine.account(c.t, c.tenant, c.params[0]))),
    },
    {
      method: 'GET',
      path: /^\/1\.0\/kb\/accounts\/([^/]+)\/block$/,
      handle: async (c) => {
        await engine.account(c.t, c.tenant, c.params[0]);
        const svcs = c.query.get('blockingStateSvcs')?.split(',');
        const states = (await find(c.t, 'blocking', c.tenant.id, { accountId: c.params[0] })).filter((b) => !svcs || svcs.includes(b.service));
        return json(200, states.map(publicView));
      },
    },
    // subscriptions and bundles
    {
      method: 'POST',
      path: /^\/1\.0\/kb\/subscriptions$/,
      write: true,
      handle: async (c) => {
        const s = await engine.createSubscription(c.t, c.tenant, c.body ?? {});
        return created(`${KB}/subscriptions/${s.subscriptionId}`);
      },
    },
    {
      method: 'GET',
      path: /^\/1\.0\/kb\/subscriptions$/,
      handle: async (c) => {
        const key = c.query.get('externalKey');
        if (!key) throw new SimError(400, 'externalKey needs to be set');
        // The store indexes subscriptions by their bundle's key; an add-on's own key differs.
        const subs = (await find(c.t, 'subscription', c.tenant.id, { externalKey: key })).filter((x) => x.externalKey === key);
        const s = subs.at(-1);
        if (!s) throw new SimError(404, `Subscription does not exist for externalKey ${key}`);
        return json(200, publicView(s));
      },
    },
    { method: 'GET', path: /^\/1\.0\/kb\/subscriptions\/([^/]+)$/, handle: async (c) => json(200, await sub(c, c.params[0])) },
    {
      method: 'PUT',
      path: /^\/1\.0\/kb\/subscriptions\/([^/]+)$/,
      write: true,
      handle: async (c) => {
        await engine.changePlan(c.t, c.tenant, c.params[0], c.body ?? {});
        return json(204);
      },
    },
    {
      method: 'DELETE',
      path: /^\/1\.0\/kb\/subscriptions\/([^/]+)$/,
      write: true,
      handle: async (c) => {
        await engine.cancel(c.t, c.tenant, c.params[0], c.query.get('entitlementPolicy') ?? undefined, c.query.get('billingPolicy') ?? undefined);
        return json(204);
      },
    },
    {
      method: 'PUT',
      path: /^\/1\.0\/kb\/subscriptions\/([^/]+)\/uncancel$/,
      write: true,
      handle: async (c) => {
        await engine.uncancel(c.t, c.tenant, c.params[0]);
        return json(204);
      },
    },
    {
      method: 'GET',
      path: /^\/1\.0\/kb\/bundles\/([^/]+)$/,
      handle: async (c) => {
        const b = await get(c.t, 'bundle', c.tenant.id, c.params[0]);
        if (!b) throw new SimError(404, `Object id=${c.params[0]} type=BUNDLE doesn't exist!`);
        return json(200, await bundleView(c, b));
      },
    },
    {
      method: 'GET',
      path: /^\/1\.0\/kb\/bundles$/,
      handle: async (c) => {
        const key = c.query.get('externalKey');
        if (!key) throw new SimError(400, 'externalKey needs to be set');
        const bundles = await find(c.t, 'bundle', c.tenant.id, { externalKey: key });
        if (!bundles.length) throw new SimError(404, `Bundle does not exist for externalKey ${key}`);
        return json(200, await Promise.all(bundles.map((b) => bundleView(c, b))));
      },
    },
    // the killbill-stripe plugin's checkout servlet: a setup-mode Checkout Session for the account (201, a form descriptor)
    {
      method: 'POST',
      path: /^\/plugins\/killbill-stripe\/checkout$/,
      pluginTenant: true,
      handle: async (c) => {
        const accountId = c.query.get('kbAccountId') ?? '';
        await engine.account(c.t, c.tenant, accountId);
        const successUrl = c.query.get('successUrl') ?? 'https://example.com/success?sessionId={CHECKOUT_SESSION_ID}';
        const cancelUrl = c.query.get('cancelUrl') ?? 'https://example.com/cancel';
        const s = await createCheckoutSession(c.t, c.tenant.id, { accountId, successUrl, cancelUrl, stripeBase: stripeUrl });
        // As the plugin: the session's fields and the publishable key, but not the session's url.
        const fields = {
          id: s.id,
          customer_id: s.customer,
          setup_intent_id: s.setup_intent,
          success_url: successUrl,
          cancel_url: cancelUrl,
          object: s.object,
          livemode: false,
          publishable_key: SIM_PUBLISHABLE_KEY,
        };
        return json(201, { kbAccountId: accountId, formMethod: null, formUrl: null, formFields: Object.entries(fields).map(([key, value]) => ({ key, value, isUpdatable: false })), properties: [] });
      },
    },
    // invoices and payments
    {
      method: 'POST',
      path: /^\/1\.0\/kb\/invoices\/([^/]+)\/payments$/,
      write: true,
      handle: async (c) => {
        const paymentId = await engine.payInvoice(c.t, c.tenant, c.params[0], c.body ?? {});
        return paymentId ? created(`${KB}/invoicePayments/${paymentId}`) : json(204);
      },
    },
    {
      method: 'GET',
      path: /^\/1\.0\/kb\/invoicePayments\/([^/]+)$/,
      handle: async (c) => {
        const p = await get(c.t, 'payment', c.tenant.id, c.params[0]);
        if (!p) throw new SimError(404, `Object id=${c.params[0]} type=PAYMENT doesn't exist!`);
        return json(200, { ...publicView(p), targetInvoiceId: p._invoiceId });
      },
    },
    {
      method: 'GET',
      path: /^\/1\.0\/kb\/invoices\/([^/]+)$/,
      handle: async (c) => {
        const i = await get(c.t, 'invoice', c.tenant.id, c.params[0]);
        if (!i) throw new SimError(404, `Object id=${c.params[0]} type=INVOICE doesn't exist!`);
        return json(200, publicView(i));
      },
    },
    {
      method: 'GET',
      path: /^\/1\.0\/kb\/payments\/([^/]+)$/,
      handle: async (c) => {
        const p = await get(c.t, 'payment', c.tenant.id, c.params[0]);
        if (!p) throw new SimError(404, `Object id=${c.params[0]} type=PAYMENT doesn't exist!`);
        return json(200, publicView(p));
      },
    },
    // test clock: Kill Bill jumps the clock, then waits up to timeoutSec for its queues and answers the time either way
    { method: 'GET', path: /^\/1\.0\/kb\/test\/queues$/, waitsForQueues: true, handle: async () => json(200) },
    { method: 'GET', path: /^\/1\.0\/kb\/test\/clock$/, handle: async (c) => json(200, clockJson(await clockNow(c.t))) },
    {
      method: 'POST',
      path: /^\/1\.0\/kb\/test\/clock$/,
      write: true,
      waitsForQueues: true,
      handle: async (c) => {
        const requested = c.query.get('requestedDate');
        const at = requested ? new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(requested) ? requested : `${requested}Z`) : new Date();
        if (Number.isNaN(at.getTime())) throw new SimError(400, 'requestedDate is not a date');
        await engine.advanceTo(c.t, at);
        return json(200, clockJson(await clockNow(c.t)));
      },
    },
    {
      method: 'PUT',
      path: /^\/1\.0\/kb\/test\/clock$/,
      write: true,
      waitsForQueues: true,
      handle: async (c) => {
        const now = await clockNow(c.t);
        const n = (k: string) => Number(c.query.get(k) ?? 0);
        const target = new Date(now);
        target.setUTCFullYear(target.getUTCFullYear() + n('years'));
        target.setUTCMonth(target.getUTCMonth() + n('months'));
        target.setUTCDate(target.getUTCDate() + n('days') + 7 * n('weeks'));
        await engine.advanceTo(c.t, target);
        return json(200, clockJson(await clockNow(c.t)));
      },
    },
    // simulator-only
    {
      method: 'POST',
      path: /^\/simulator\/accounts\/([^/]+)\/paymentOutcome$/,
      write: true,
      handle: async (c) => {
        const outcome = c.body?.outcome;
        if (outcome !== 'SUCCESS' && outcome !== 'FAILURE') throw new SimError(400, 'outcome must be SUCCESS or FAILURE');
        if (c.body?.payUnpaid !== undefined && typeof c.body.payUnpaid !== 'boolean') throw new SimError(400, 'payUnpaid must be true or false');
        const pm = await engine.setPaymentOutcome(c.t, c.tenant, c.params[0], outcome, c.body?.payUnpaid ?? true);
        return json(200, { accountId: c.params[0], paymentMethodId: pm.paymentMethodId, outcome });
      },
    },
  ];
}

export function clockJson(now: Date) {
  return { currentUtcTime: now.toISOString(), timeZone: 'UTC', localDate: now.toISOString().slice(0, 10) };
}

/** Simulator-only status (no auth needed beyond basic): clock, tenants, notification counts. */
async function status(db: Db, delivery: Delivery) {
  return db.task(async (t) => ({
    clock: clockJson(await clockNow(t)),
    tenants: (await t.manyOrNone<{ api_key: string; callback_url: string | null }>('SELECT api_key, callback_url FROM kb_tenants ORDER BY created_at')).map((r) => ({
      apiKey: r.api_key,
      callback: r.callback_url ? r.callback_url.replace(/([?&]token=)[^&]+/, '$1[redacted]') : null,
    })),
    objects: Object.fromEntries((await t.manyOrNone<{ kind: string; n: number }>('SELECT kind, count(*) AS n FROM kb_objects GROUP BY kind')).map((r) => [r.kind, r.n])),
    notifications: await delivery.counts(),
  }));
}

export function createServer(opts: { db: Db; engine: Engine; delivery: Delivery; credentials: Credentials; stripeUrl: string }): http.Server {
  const routes = buildRoutes(opts.engine, opts.stripeUrl);
  const mutex = new Mutex();
  const send = (res: ServerResponse, a: Answer) => {
    const headers: Record<string, string> = { ...(a.headers ?? {}) };
    let payload = '';
    if (a.text !== undefined) {
      headers['content-type'] = 'text/xml; charset=utf-8';
      payload = a.text;
    } else if (a.body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(a.body);
    }
    if (headers.location && !/^https?:/.test(headers.location)) headers.location = `http://${res.req.headers.host}${headers.location}`;
    res.writeHead(a.status, headers);
    res.end(payload);
  };
  const kbError = (status: number, message: string): Answer =>
    json(status, { className: 'org.killbill.billing.SimulatorException', code: status, message, causeClassName: null, causeMessage: null, stackTrace: [] });

  return http.createServer(async (req: IncomingMessage, res: ServerResponse) => {
    try {
      const url = new URL(req.url ?? '/', 'http://sim');
      const chunks: Buffer[] = [];
      for await (const ch of req) chunks.push(ch as Buffer);
      const rawBody = Buffer.concat(chunks).toString('utf8');
      const [user, pass] = Buffer.from((req.headers.authorization ?? '').replace(/^Basic\s+/i, ''), 'base64')
        .toString()
        .split(':');
      if (!(eq(user ?? '', opts.credentials.username) && eq(pass ?? '', opts.credentials.password))) {
        return send(res, { ...kbError(401, 'Authentication required'), headers: { 'www-authenticate': 'Basic realm="killbill"' } });
      }
      if (url.pathname === '/simulator/status' && req.method === 'GET') return send(res, json(200, await status(opts.db, opts.delivery)));
      let params: string[] = [];
      const r = routes.find((rt) => {
        if (rt.method !== req.method) return false;
        const m = url.pathname.match(rt.path);
        if (m) params = m.slice(1).map(decodeURIComponent);
        return !!m;
      });
      if (!r) return send(res, kbError(404, `No route for ${req.method} ${url.pathname}`));
      const createdBy = req.headers['x-killbill-createdby'] as string | undefined;
      if (r.write && !createdBy) return send(res, kbError(400, 'Header X-Killbill-CreatedBy needs to be set'));
      let body: unknown;
      if (rawBody && /json/.test(String(req.headers['content-type'] ?? ''))) {
        try {
          body = JSON.parse(rawBody);
        } catch {
          return send(res, kbError(400, 'Invalid JSON body'));
        }
      }
      const run = () =>
        opts.db.tx(async (t) => {
          let tenant: Tenant | null = null;
          if (needsTenant(url.pathname) || r.pluginTenant) {
            const key = String(req.headers['x-killbill-apikey'] ?? '');
            const secret = String(req.headers['x-killbill-apisecret'] ?? '');
            tenant = key ? await tenantByKey(t, key) : null;
            if (!tenant || !eq(secret, tenant.api_secret)) return kbError(401, 'Unknown or invalid tenant api key/secret');
          }
          return r.handle({ t, tenant: tenant as Tenant, query: url.searchParams, body, rawBody, params, createdBy });
        });
      const answer = await (r.write ? mutex.run(run) : run()).catch((err) => {
        if (err instanceof SimError) return kbError(err.status, err.message);
        throw err;
      });
      if (r.write) opts.delivery.kick();
      if (r.waitsForQueues && answer.status < 300) {
        const timeoutSec = Number(url.searchParams.get('timeoutSec') ?? 5);
        if (!Number.isInteger(timeoutSec) || timeoutSec < 0) return send(res, kbError(400, 'timeoutSec must be a whole number of seconds'));
        const drained = await opts.delivery.drained(String(req.headers['x-killbill-apikey'] ?? ''), timeoutSec * 1000);
        // GET /test/queues reports the outcome (412: timeout too short); the clock answers the time either way.
        if (url.pathname.endsWith('/queues')) return send(res, drained ? json(200) : kbError(412, 'Timeout too short'));
      }
      send(res, answer);
    } catch (err) {
      log.error({ err }, 'killbill-sim: request failed');
      if (!res.headersSent) send(res, kbError(500, 'Internal error'));
    }
  });
}
