/**
 * Cards on file, the Kill Bill way (issue 21): Kill Bill's Stripe plugin
 * creates a Stripe Checkout setup session, the customer types the card on
 * Stripe's hosted page (the platform never sees card data), and the plugin
 * turns the completed session into the account's default payment method;
 * Kill Bill then charges every invoice and retries on its schedule. The
 * plugin answers the session id but not its url, so the url is read from
 * Stripe's API with the operator's key (the official `stripe` package,
 * pointed at STRIPE_API_URL: the simulator's Stripe stand-in locally).
 */
import Stripe from 'stripe';
import { config } from '../config.ts';
import { HttpError } from '../errors.ts';
import { log } from '../log.ts';
import { KillBillError, killbill, STRIPE_PLUGIN, type Invoice, type PaymentMethod } from './killbill.ts';

export type Card = { brand: string; last4: string; expMonth: number; expYear: number };

let client: Stripe | undefined;

/** The Stripe client for the operator's key; 503 when no key is configured. */
function stripe(): Stripe {
  const c = config();
  if (!c.STRIPE_SECRET_KEY) throw new HttpError(503, 'cards_unavailable', 'Card payments are not set up yet. Please contact support.');
  if (!client) {
    const api = c.STRIPE_API_URL ? new URL(c.STRIPE_API_URL) : undefined;
    client = new Stripe(c.STRIPE_SECRET_KEY, {
      ...(api ? { host: api.hostname, port: Number(api.port || (api.protocol === 'https:' ? 443 : 80)), protocol: api.protocol.replace(':', '') as 'http' | 'https' } : {}),
      maxNetworkRetries: 1,
      timeout: c.KILLBILL_TIMEOUT_MS,
    });
  }
  return client;
}

/** The card of a payment method, from the plugin's info (null for methods that are not cards). */
export function cardOf(pm: PaymentMethod | undefined): Card | null {
  if (!pm || pm.pluginName !== STRIPE_PLUGIN) return null;
  const prop = (k: string) => pm.pluginInfo?.properties?.find((p) => p.key === k)?.value;
  const last4 = prop('card_last4');
  if (!last4) return null;
  return { brand: String(prop('card_brand') ?? 'card'), last4: String(last4), expMonth: Number(prop('card_exp_month')), expYear: Number(prop('card_exp_year')) };
}

/**
 * Starts "Add card": a setup session for the customer's account and the url of Stripe's hosted page
 * for it. `returnTo` is the portal page the customer comes back to (its `{CHECKOUT_SESSION_ID}` is
 * filled in by Stripe).
 */
export async function startCardSetup(customer: { customerId: string; email?: string }, returnTo: { success: string; cancel: string }): Promise<{ url: string }> {
  const kb = killbill();
  const account = await kb.ensureAccount(customer);
  const sessionId = await kb.stripeCheckoutSession(account.accountId!, returnTo.success, returnTo.cancel).catch((err) => {
    if (err instanceof KillBillError) {
      log.warn({ status: err.status }, 'the Stripe plugin refused a card session');
      throw new HttpError(503, 'cards_unavailable', 'Card payments are not available right now. Please try again later.');
    }
    throw err;
  });
  const session = await stripe()
    .checkout.sessions.retrieve(sessionId)
    .catch((err: Error) => {
      log.warn({ err: err.message }, 'Stripe: reading the checkout session failed');
      throw HttpError.unavailable('Card payments');
    });
  if (!session.url) throw HttpError.unavailable('Card payments');
  return { url: session.url };
}

export type CardResult = {
  card: Card | null;
  /** Invoices still unpaid after Kill Bill tried the new card on them. */
  unpaid: { number: string; amount: number; balance: number; currency: string }[];
};

/**
 * Finishes "Add card" on the success url: the session must be this customer's and complete; the card
 * becomes the default method and Kill Bill pays all unpaid invoices with it. The outcome comes from
 * the invoices' balances afterwards, never from Kill Bill's 201.
 */
export async function finishCardSetup(customerId: string, sessionId: string): Promise<CardResult> {
  const kb = killbill();
  const account = await kb.accountByCustomer(customerId);
  if (!account) throw HttpError.notFound('No such card session');
  const session = await stripe()
    .checkout.sessions.retrieve(sessionId)
    .catch((err: { statusCode?: number; message: string }) => {
      if (err.statusCode === 404) return null;
      log.warn({ err: err.message }, 'Stripe: reading the checkout session failed');
      throw HttpError.unavailable('Card payments');
    });
  // Another customer's session looks like a missing one.
  if (!session || session.metadata?.kb_account_id !== account.accountId) throw HttpError.notFound('No such card session');
  if (session.status !== 'complete') throw HttpError.conflict('The card was not saved. Please add it again.', { session: 'not completed' });
  await kb.addStripeCard(account.accountId!, sessionId).catch((err) => {
    if (err instanceof KillBillError && err.status === 409) return; // this session's card is already on file (a reload of the success page)
    if (err instanceof KillBillError) throw HttpError.conflict('The card could not be saved. Please add it again.', { session: err.message });
    throw err;
  });
  return cardStatus(account.accountId!);
}

/**
 * "Remove card": takes the default payment method off the account. Kill Bill then charges nothing
 * (its invoices stay unpaid and dunning runs as for a declined card), and a paid plan without a trial
 * asks for a card again. 409 when there is none.
 */
export async function removeCard(customerId: string): Promise<void> {
  const kb = killbill();
  const account = await kb.accountByCustomer(customerId);
  if (!account?.paymentMethodId) throw HttpError.conflict('There is no card on file.', { card: 'no card on file' });
  await kb.removePaymentMethod(account.paymentMethodId);
}

/** The default card of an account and its unpaid invoices. */
export async function cardStatus(accountId: string): Promise<CardResult> {
  const kb = killbill();
  const [methods, invoices] = await Promise.all([kb.paymentMethods(accountId), kb.invoices(accountId, true)]); // shallow invoices carry no balance on a real Kill Bill
  return { card: cardOf(methods.find((m) => m.isDefault)), unpaid: unpaidOf(invoices) };
}

/** Invoices with a balance, in the customer's terms. */
export function unpaidOf(invoices: Invoice[]): CardResult['unpaid'] {
  return invoices.filter((i) => (i.balance ?? 0) > 0).map((i) => ({ number: String(i.invoiceNumber ?? ''), amount: i.amount ?? 0, balance: i.balance ?? 0, currency: i.currency ?? 'USD' }));
}
