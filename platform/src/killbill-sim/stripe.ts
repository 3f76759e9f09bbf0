/**
 * Stripe as the killbill-stripe plugin and the platform use it, on its own
 * port: the Checkout Session read (`GET /v1/checkout/sessions/{id}`, what the
 * official `stripe` package calls when pointed at this host) and the hosted
 * card page a setup session's `url` leads to (`/pay/{id}`), standing in for
 * checkout.stripe.com. It keeps Stripe's documented test cards: 4242 4242
 * 4242 4242 is saved; 4000 0000 0000 0002 is declined on the page (nothing is
 * saved); 4000 0000 0000 0341 is saved but declined when charged. Sessions
 * live in the simulator's store (kind `checkoutSession`), created by the
 * plugin's checkout endpoint (server.ts).
 */
import { randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Db, Tx } from '../db/index.ts';
import { log } from '../log.ts';
import { put, type Doc } from './store.ts';

/** Stripe's documented test cards the stand-in knows (https://docs.stripe.com/testing). */
const TEST_CARDS: Record<string, { brand: string; saved: boolean; chargeFails: boolean }> = {
  '4242424242424242': { brand: 'visa', saved: true, chargeFails: false },
  '4000000000000002': { brand: 'visa', saved: false, chargeFails: true },
  '4000000000000341': { brand: 'visa', saved: true, chargeFails: true },
};

/** The publishable key the plugin hands out for the stand-in (Stripe's test-mode prefix). */
export const SIM_PUBLISHABLE_KEY = 'pk_test_saasodoo_simulator';

/** The store's uuid of a session id `cs_test_<32 hex>` (the hex is that uuid), or null for anything else. */
export function sessionRowId(sessionId: string): string | null {
  const m = sessionId.match(/^cs_test_([0-9a-f]{8})([0-9a-f]{4})([0-9a-f]{4})([0-9a-f]{4})([0-9a-f]{12})$/);
  return m ? m.slice(1).join('-') : null;
}

/** A session row across tenants (the card page has no tenant headers, like Stripe's). */
async function sessionById(t: Tx, id: string): Promise<{ tenantId: string; doc: Doc } | null> {
  const rowId = sessionRowId(id);
  if (!rowId) return null;
  const row = await t.oneOrNone<{ tenant_id: string; doc: Doc }>("SELECT tenant_id, doc FROM kb_objects WHERE kind = 'checkoutSession' AND id = $1", [rowId]);
  return row ? { tenantId: row.tenant_id, doc: row.doc } : null;
}

/** Creates a setup-mode Checkout Session for a Kill Bill account (what the plugin asks Stripe for). */
export async function createCheckoutSession(t: Tx, tenantId: string, o: { accountId: string; successUrl: string; cancelUrl: string; stripeBase: string }): Promise<Doc> {
  const rowId = randomUUID();
  const id = `cs_test_${rowId.replace(/-/g, '')}`;
  const doc: Doc = {
    id,
    object: 'checkout.session',
    mode: 'setup',
    status: 'open',
    livemode: false,
    payment_method_types: ['card'],
    customer: `cus_${o.accountId.replace(/-/g, '').slice(0, 14)}`,
    setup_intent: `seti_${randomUUID().replace(/-/g, '').slice(0, 24)}`,
    success_url: o.successUrl,
    cancel_url: o.cancelUrl,
    url: `${o.stripeBase}/pay/${id}`,
    metadata: { kb_account_id: o.accountId },
  };
  await put(t, 'checkoutSession', tenantId, rowId, doc, { accountId: o.accountId });
  return doc;
}

/** The card a completed session saved, or null (declined, abandoned, unknown). */
export async function savedCard(t: Tx, sessionId: string): Promise<Doc | null> {
  const s = await sessionById(t, sessionId);
  return s?.doc.status === 'complete' ? s.doc._card : null;
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function cardPage(id: string, error?: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Add a card · Stripe (simulator)</title>
<meta name="viewport" content="width=device-width,initial-scale=1"></head>
<body style="font-family:system-ui;max-width:26rem;margin:3rem auto;padding:0 1rem">
<h1>Add a card</h1>
<p>Stripe test mode (simulator): use a <a href="https://docs.stripe.com/testing">Stripe test card</a>.</p>
${error ? `<p role="alert" style="color:#b00020">${esc(error)}</p>` : ''}
<form method="post" action="/pay/${esc(id)}">
<label>Card number<br><input name="number" autocomplete="cc-number" inputmode="numeric" required></label><br><br>
<label>Expiry (MM / YY)<br><input name="expiry" autocomplete="cc-exp" placeholder="12 / 34" required></label><br><br>
<label>CVC<br><input name="cvc" autocomplete="cc-csc" inputmode="numeric" required></label><br><br>
<button type="submit">Save card</button> <a href="/pay/${esc(id)}/cancel">Cancel</a>
</form></body></html>`;
}

/** Starts the Stripe stand-in: the API subset the platform calls and the hosted card page. */
export async function startStripeStandIn(db: Db, port: number, host: string): Promise<{ server: http.Server; url: string }> {
  const server = http.createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const send = (status: number, body: string, type = 'application/json', headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': type, ...headers });
      res.end(body);
    };
    const stripeError = (status: number, message: string, param?: string) => send(status, JSON.stringify({ error: { type: 'invalid_request_error', message, ...(param ? { param } : {}) } }));
    try {
      const url = new URL(req.url ?? '/', 'http://stripe');
      const chunks: Buffer[] = [];
      for await (const ch of req) chunks.push(ch as Buffer);
      const raw = Buffer.concat(chunks).toString('utf8');
      const api = url.pathname.match(/^\/v1\/checkout\/sessions\/([^/]+)$/);
      if (api && req.method === 'GET') {
        // Stripe authenticates with the secret key as a bearer token; a test-mode key is sk_test_….
        if (!/^Bearer sk_test_\S+$/.test(String(req.headers.authorization ?? ''))) return stripeError(401, 'Invalid API Key provided');
        const s = await db.task((t) => sessionById(t, decodeURIComponent(api[1])));
        if (!s) return stripeError(404, `No such checkout.session: '${api[1]}'`, 'session');
        const view = Object.fromEntries(Object.entries(s.doc).filter(([k]) => !k.startsWith('_')));
        return send(200, JSON.stringify(view));
      }
      const page = url.pathname.match(/^\/pay\/([^/]+)(\/cancel)?$/);
      if (!page) return send(404, 'Not found', 'text/plain');
      const id = decodeURIComponent(page[1]);
      const s = await db.task((t) => sessionById(t, id));
      if (!s || s.doc.status !== 'open') return send(404, '<!doctype html><p>This card page has expired. Go back and start again.</p>', 'text/html; charset=utf-8');
      if (page[2]) return send(303, '', 'text/plain', { location: s.doc.cancel_url });
      if (req.method === 'GET') return send(200, cardPage(id), 'text/html; charset=utf-8');
      if (req.method !== 'POST') return send(405, 'Use GET or POST', 'text/plain', { allow: 'GET, POST' });
      const form = new URLSearchParams(raw);
      const number = (form.get('number') ?? '').replace(/\s+/g, '');
      const exp = (form.get('expiry') ?? '').match(/^\s*(\d{1,2})\s*\/\s*(\d{2}|\d{4})\s*$/);
      const card = TEST_CARDS[number];
      if (!card) return send(200, cardPage(id, 'Your card number is incorrect. Use a Stripe test card.'), 'text/html; charset=utf-8');
      if (!exp || Number(exp[1]) < 1 || Number(exp[1]) > 12) return send(200, cardPage(id, "Your card's expiration date is incomplete."), 'text/html; charset=utf-8');
      if (!/^\d{3,4}$/.test(form.get('cvc') ?? '')) return send(200, cardPage(id, "Your card's security code is incomplete."), 'text/html; charset=utf-8');
      if (!card.saved) return send(200, cardPage(id, 'Your card was declined. Try another card.'), 'text/html; charset=utf-8');
      const year = exp[2].length === 2 ? 2000 + Number(exp[2]) : Number(exp[2]);
      await db.tx(async (t) => {
        const doc = {
          ...s.doc,
          status: 'complete',
          _card: { id: `pm_${randomUUID().replace(/-/g, '').slice(0, 24)}`, brand: card.brand, last4: number.slice(-4), expMonth: Number(exp[1]), expYear: year, chargeFails: card.chargeFails },
        };
        await put(t, 'checkoutSession', s.tenantId, sessionRowId(id)!, doc, { accountId: s.doc.metadata.kb_account_id });
      });
      return send(303, '', 'text/plain', { location: String(s.doc.success_url).replace('{CHECKOUT_SESSION_ID}', encodeURIComponent(id)) });
    } catch (err) {
      log.error({ err }, 'stripe stand-in: request failed');
      if (!res.headersSent) send(500, JSON.stringify({ error: { type: 'api_error', message: 'Internal error' } }));
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return { server, url: `http://${host}:${(server.address() as { port: number }).port}` };
}
