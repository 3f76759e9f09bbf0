/**
 * The platform's one door to Kill Bill, over the official `killbill` client.
 * Every call has a timeout; reads retry with backoff; when Kill Bill is
 * unreachable callers get HttpError.unavailable (503 + Retry-After). The
 * same code talks to the local simulator or a real Kill Bill (KILLBILL_URL).
 */
import axios, { AxiosError, type AxiosInstance, type AxiosResponse } from 'axios';
import {
  AccountApi,
  BundleApi,
  CatalogApi,
  Configuration,
  InvoiceApi,
  OverdueApi,
  PaymentMethodApi,
  SubscriptionApi,
  TenantApi,
  apiKey,
  type Account,
  type BlockingState,
  type Bundle,
  type Invoice,
  type OverdueState,
  type Payment,
  type PaymentMethod,
  type Subscription,
} from 'killbill';
import { config } from '../config.ts';
import { HttpError } from '../errors.ts';
import { log } from '../log.ts';
import { localCatalogXml, localOverdueXml, OVERDUE_SERVICE, parseCatalog, parseOverdueConfig } from './catalog.ts';

export type { Account, BlockingState, Bundle, Invoice, OverdueState, Payment, PaymentMethod, Subscription };

/** A subscription Kill Bill has ended (cancelled, or expired at the end of its term): nothing more can be done to it. */
export function subscriptionEnded(s: Pick<Subscription, 'state'> | null | undefined): boolean {
  return s?.state === 'CANCELLED' || s?.state === 'EXPIRED';
}

/** A Kill Bill answer that is the caller's problem (4xx other than 404), with Kill Bill's message. */
export class KillBillError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'KillBillError';
  }
}

const CREATED_BY = 'saasodoo';
const TEST_PAYMENT_PLUGIN = '__SIMULATOR_TEST_PAYMENT__';
/** The payment plugin of cards: Kill Bill's Stripe plugin. */
export const STRIPE_PLUGIN = 'killbill-stripe';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** True when the Kill Bill we talk to is the local simulator. */
export function isSimulated(): boolean {
  return config().KILLBILL_SIMULATOR || !config().KILLBILL_URL;
}

/** Where Kill Bill is: KILLBILL_URL, else the local simulator. */
export function killbillUrl(): string {
  const c = config();
  return c.KILLBILL_URL ?? `http://127.0.0.1:${c.KILLBILL_SIM_PORT}`;
}

export type KillBillOptions = { url?: string; apiKey?: string; apiSecret?: string; username?: string; password?: string; timeoutMs?: number; readRetries?: number };

export class KillBill {
  readonly url: string;
  readonly http: AxiosInstance;
  private readonly cfg: Configuration;
  private readonly retries: number;
  readonly accounts: AccountApi;
  private readonly paymentMethodsApi: PaymentMethodApi;
  readonly subscriptions: SubscriptionApi;
  readonly bundles: BundleApi;
  readonly invoicesApi: InvoiceApi;
  readonly tenants: TenantApi;
  readonly catalog: CatalogApi;
  readonly overdueApi: OverdueApi;

  constructor(o: KillBillOptions = {}) {
    const c = config();
    this.url = (o.url ?? killbillUrl()).replace(/\/$/, '');
    const username = o.username ?? c.KILLBILL_USERNAME;
    const password = o.password ?? c.KILLBILL_PASSWORD;
    const key = o.apiKey ?? c.KILLBILL_API_KEY;
    const secret = o.apiSecret ?? c.KILLBILL_API_SECRET;
    this.retries = o.readRetries ?? 2;
    this.http = axios.create({
      baseURL: this.url,
      timeout: o.timeoutMs ?? c.KILLBILL_TIMEOUT_MS,
      auth: { username, password },
      headers: { 'X-Killbill-ApiKey': key, 'X-Killbill-ApiSecret': secret },
    });
    this.cfg = new Configuration({ username, password, apiKey: apiKey(key, secret), basePath: this.url });
    this.accounts = new AccountApi(this.cfg, this.url, this.http);
    this.subscriptions = new SubscriptionApi(this.cfg, this.url, this.http);
    this.bundles = new BundleApi(this.cfg, this.url, this.http);
    this.invoicesApi = new InvoiceApi(this.cfg, this.url, this.http);
    this.tenants = new TenantApi(this.cfg, this.url, this.http);
    this.catalog = new CatalogApi(this.cfg, this.url, this.http);
    this.overdueApi = new OverdueApi(this.cfg, this.url, this.http);
    this.paymentMethodsApi = new PaymentMethodApi(this.cfg, this.url, this.http);
  }

  /** Runs a call; maps transport failures and 5xx to 503, 404 to null, other 4xx to KillBillError. Reads retry with backoff. */
  private async call<T>(kind: 'read' | 'write', what: string, fn: () => Promise<AxiosResponse<T>>): Promise<AxiosResponse<T> | null> {
    const attempts = kind === 'read' ? this.retries + 1 : 1;
    for (let i = 0; ; i++) {
      try {
        return await fn();
      } catch (err) {
        const e = err as AxiosError<{ message?: string }>;
        const status = e.response?.status;
        if (status === 404) return null;
        if (status && status < 500) throw new KillBillError(status, e.response?.data?.message ?? `Kill Bill refused ${what} (${status})`);
        if (i + 1 < attempts) {
          await sleep(100 * 3 ** i);
          continue;
        }
        log.warn({ what, status, code: e.code }, 'Kill Bill unavailable');
        throw HttpError.unavailable('Billing');
      }
    }
  }

  private async read<T>(what: string, fn: () => Promise<AxiosResponse<T>>): Promise<T | null> {
    return (await this.call('read', what, fn))?.data ?? null;
  }

  /** The id at the end of a 201's Location header. */
  private static createdId(res: AxiosResponse | null): string {
    const loc = String(res?.headers?.location ?? '');
    const id = loc.split('?')[0].split('/').pop();
    if (!id) throw new KillBillError(500, 'Kill Bill answered 201 without a Location');
    return id;
  }

  // ---- tenant, callback, configuration ----

  /** Creates the configured tenant if Kill Bill does not know it (a fresh real Kill Bill). */
  async ensureTenant(): Promise<void> {
    const c = config();
    const found = await this.read('tenant', () => this.tenants.getTenantByApiKey(c.KILLBILL_API_KEY));
    if (found) return;
    await this.call('write', 'create tenant', () => this.tenants.createTenant({ apiKey: c.KILLBILL_API_KEY, apiSecret: c.KILLBILL_API_SECRET }, CREATED_BY)).catch((err) => {
      if (!(err instanceof KillBillError && err.status === 409)) throw err;
    });
  }

  /** The registered push-notification callbacks of the tenant. */
  async callbacks(): Promise<string[]> {
    return (await this.read('callbacks', () => this.tenants.getPushNotificationCallbacks()))?.values ?? [];
  }

  /**
   * Registers `url` only when it is not already the registered callback:
   * re-registering blindly rewrites the tenant key and can break delivery.
   * Returns true when it registered.
   */
  async registerCallback(url: string): Promise<boolean> {
    if ((await this.callbacks()).includes(url)) return false;
    await this.call('write', 'register callback', () => this.tenants.registerPushNotificationCallback(CREATED_BY, url));
    return true;
  }

  /** Uploads infra/killbill/catalog.xml and overdue.xml when what Kill Bill has differs. Returns what was uploaded. */
  async syncConfig(catalogXml = localCatalogXml(), overdueXml = localOverdueXml()): Promise<{ catalog: boolean; overdue: boolean }> {
    const current = await this.read('catalog', () => this.catalog.getCatalogXml());
    // Kill Bill answers its own serialisation (versions wrapped, dates as ...000Z): compare plans and the version's instant.
    const versions = (xml: string) => [...xml.matchAll(/<effectiveDate>([^<]+)</g)].map((m) => Date.parse(m[1]));
    const sameCatalog = current !== null && JSON.stringify(parseCatalog(String(current))) === JSON.stringify(parseCatalog(catalogXml)) && versions(String(current)).includes(versions(catalogXml)[0]);
    if (!sameCatalog) await this.call('write', 'upload catalog', () => this.catalog.uploadCatalogXml(catalogXml, CREATED_BY));
    const od = await this.read('overdue', () => this.overdueApi.getOverdueConfigXml());
    const sameOverdue = od !== null && JSON.stringify(parseOverdueConfig(String(od))) === JSON.stringify(parseOverdueConfig(overdueXml));
    if (!sameOverdue) await this.call('write', 'upload overdue', () => this.overdueApi.uploadOverdueConfigXml(overdueXml, CREATED_BY));
    return { catalog: !sameCatalog, overdue: !sameOverdue };
  }

  /** The catalogue XML Kill Bill is using. */
  async catalogXml(): Promise<string> {
    const xml = await this.read('catalog', () => this.catalog.getCatalogXml());
    if (xml === null) throw HttpError.unavailable('Billing');
    return String(xml);
  }

  // ---- accounts ----

  async accountByCustomer(customerId: string, withBalance = false): Promise<Account | null> {
    return this.read('account', () => this.accounts.getAccountByKey(customerId, withBalance));
  }

  async account(accountId: string, withBalance = false): Promise<Account | null> {
    return this.read('account', () => this.accounts.getAccount(accountId, withBalance));
  }

  /**
   * The Kill Bill account of a customer (externalKey = customer id), created
   * when missing; safe to call any number of times, concurrently too (a
   * concurrent create answers 409 and the winner's account is returned). On
   * the simulator the account also gets the test payment method as default,
   * also when an earlier call created the account but failed before adding it
   * (its external key is fixed per account, so a second add is refused).
   * A real Kill Bill account gets no payment method here: the payment plugin
   * the operator configured adds it (README, "Using a real Kill Bill").
   */
  async ensureAccount(customer: { customerId: string; email?: string; name?: string }): Promise<Account> {
    let account = await this.accountByCustomer(customer.customerId);
    if (!account) {
      await this.call('write', 'create account', () =>
        this.accounts.createAccount({ externalKey: customer.customerId, email: customer.email, name: customer.name, currency: 'USD' }, CREATED_BY),
      ).catch((err) => {
        if (!(err instanceof KillBillError && err.status === 409)) throw err; // created concurrently
      });
      account = await this.accountByCustomer(customer.customerId);
      if (!account) throw HttpError.unavailable('Billing');
    }
    // Only an account that never had a method gets one: a customer who removed their card has none, as on Kill Bill.
    if (isSimulated() && !account.paymentMethodId && !(await this.paymentMethods(account.accountId!, { includeDeleted: true })).length) {
      const accountId = account.accountId!;
      await this.call('write', 'add payment method', () => this.accounts.createPaymentMethod({ pluginName: TEST_PAYMENT_PLUGIN, externalKey: `test-${accountId}` }, accountId, CREATED_BY, true)).catch(
        (err) => {
          if (!(err instanceof KillBillError && err.status === 409)) throw err; // added concurrently
        },
      );
      account = (await this.account(accountId)) ?? account;
    }
    return account;
  }

  async bundlesOfAccount(accountId: string): Promise<Bundle[]> {
    return (await this.read('bundles', () => this.accounts.getAccountBundles(accountId))) ?? [];
  }

  async invoices(accountId: string, withItems = true): Promise<Invoice[]> {
    return (await this.read('invoices', () => this.accounts.getInvoicesForAccount(accountId, undefined, undefined, false, false, false, withItems))) ?? [];
  }

  async invoice(invoiceId: string): Promise<Invoice | null> {
    return this.read('invoice', () => this.invoicesApi.getInvoice(invoiceId));
  }

  async payments(accountId: string): Promise<Payment[]> {
    return (await this.read('payments', () => this.accounts.getPaymentsForAccount(accountId))) ?? [];
  }

  async paymentMethods(accountId: string, o: { includeDeleted?: boolean } = {}): Promise<PaymentMethod[]> {
    return (await this.read('payment methods', () => this.accounts.getPaymentMethodsForAccount(accountId, true, o.includeDeleted ?? false))) ?? [];
  }

  /**
   * Removes a payment method, also the account's default. `forceDefaultPmDeletion` rather than
   * `deleteDefaultPmWithAutoPayOff`: the latter tags the account AUTO_PAY_OFF, which a card added later
   * would not lift, so Kill Bill would silently stop charging it.
   */
  async removePaymentMethod(paymentMethodId: string): Promise<void> {
    await this.call('write', 'remove payment method', () => this.paymentMethodsApi.deletePaymentMethod(paymentMethodId, CREATED_BY, false, true));
  }

  async overdue(accountId: string): Promise<OverdueState | null> {
    return this.read('overdue', () => this.accounts.getOverdueAccount(accountId));
  }

  /** Blocking states of an account set by the overdue service, oldest first. */
  async overdueBlockingStates(accountId: string): Promise<BlockingState[]> {
    return (await this.read('blocking states', () => this.accounts.getBlockingStates(accountId, ['ACCOUNT'], [OVERDUE_SERVICE]))) ?? [];
  }

  // ---- cards (the killbill-stripe plugin) and payments ----

  /**
   * Asks the killbill-stripe plugin for a Stripe Checkout setup session for the account; returns the
   * session id (form field `id`). The plugin does not return the session's hosted-page url (cards.ts reads it).
   */
  async stripeCheckoutSession(accountId: string, successUrl: string, cancelUrl: string): Promise<string> {
    const res = await this.call('write', 'create card session', () =>
      this.http.post<{ formFields?: { key: string; value: unknown }[] }>('/plugins/killbill-stripe/checkout', null, { params: { kbAccountId: accountId, successUrl, cancelUrl } }),
    );
    const id = res?.data?.formFields?.find((f) => f.key === 'id')?.value;
    if (typeof id !== 'string') throw HttpError.unavailable('Billing');
    return id;
  }

  /**
   * Adds the card a completed Checkout setup session saved as the account's default payment method and
   * asks Kill Bill to pay every unpaid invoice with it. Kill Bill answers 201 even when those charges were
   * declined: read the invoices for the outcome.
   */
  async addStripeCard(accountId: string, sessionId: string): Promise<string> {
    const res = await this.call('write', 'add card', () =>
      this.accounts.createPaymentMethod({ pluginName: STRIPE_PLUGIN, pluginInfo: { properties: [{ key: 'sessionId', value: sessionId, isUpdatable: false }] } }, accountId, CREATED_BY, true, true),
    );
    return KillBill.createdId(res);
  }

  /**
   * Pays one invoice's balance with the account's default method. Returns the payment id, or null when
   * Kill Bill answered 204 (nothing left to pay). A declined charge is still a 201: read its transaction status.
   */
  async payInvoice(invoice: { invoiceId: string; accountId: string; balance: number }): Promise<string | null> {
    const res = await this.call('write', 'pay invoice', () =>
      this.http.post(
        `/1.0/kb/invoices/${invoice.invoiceId}/payments`,
        { accountId: invoice.accountId, purchasedAmount: invoice.balance },
        { params: { externalPayment: false }, headers: { 'X-Killbill-CreatedBy': CREATED_BY } },
      ),
    );
    return res?.status === 201 ? KillBill.createdId(res) : null;
  }

  /** An invoice payment with its transactions (status SUCCESS, PAYMENT_FAILURE, ...). */
  async invoicePayment(paymentId: string): Promise<Payment | null> {
    return this.read('invoice payment', () => this.http.get<Payment>(`/1.0/kb/invoicePayments/${paymentId}`));
  }

  // ---- subscriptions ----

  /**
   * Opens the subscription of an instance: the bundle's external key is the
   * instance id (that is the subscription↔instance link). `trial: false` on
   * a plan with a trial starts in the EVERGREEN phase (billed at once).
   */
  async createSubscription(o: { accountId: string; plan: string; trial: boolean; instanceId: string; productName: string }): Promise<Subscription> {
    const body: Subscription = {
      accountId: o.accountId,
      externalKey: o.instanceId,
      bundleExternalKey: o.instanceId,
      planName: o.plan,
      productName: o.productName,
      productCategory: 'BASE',
      billingPeriod: 'MONTHLY',
      priceList: 'DEFAULT',
      ...(o.trial ? {} : { phaseType: 'EVERGREEN' as const }),
    };
    const res = await this.call('write', 'create subscription', () => this.subscriptions.createSubscription(body, CREATED_BY));
    const sub = await this.subscription(KillBill.createdId(res));
    if (!sub) throw HttpError.unavailable('Billing');
    return sub;
  }

  /**
   * An ADD_ON subscription (a staging copy) in an existing bundle: Kill Bill
   * checks the add-on is available on the base's product and cancels it with
   * the base. `externalKey` is the add-on's own key (the copy's instance id).
   */
  async createAddOn(o: { accountId: string; bundleId: string; plan: string; productName: string; externalKey: string }): Promise<Subscription> {
    const body: Subscription = {
      accountId: o.accountId,
      bundleId: o.bundleId,
      externalKey: o.externalKey,
      planName: o.plan,
      productName: o.productName,
      productCategory: 'ADD_ON',
      billingPeriod: 'MONTHLY',
      priceList: 'DEFAULT',
    };
    const res = await this.call('write', 'create add-on', () => this.subscriptions.createSubscription(body, CREATED_BY));
    const sub = await this.subscription(KillBill.createdId(res));
    if (!sub) throw HttpError.unavailable('Billing');
    return sub;
  }

  async subscription(subscriptionId: string): Promise<Subscription | null> {
    return this.read('subscription', () => this.subscriptions.getSubscription(subscriptionId));
  }

  /** Bundles (with their subscriptions) whose external key is this instance id. */
  async bundlesOfInstance(instanceId: string): Promise<Bundle[]> {
    return (await this.read('bundle', () => this.bundles.getBundleByKey(instanceId))) ?? [];
  }

  async bundle(bundleId: string): Promise<Bundle | null> {
    return this.read('bundle', () => this.bundles.getBundle(bundleId));
  }

  /**
   * `end_of_term`: service to the paid-through date. `now`: service ends now, billing to the end of term (no refund).
   * `void`: service and billing end now, so Kill Bill credits what was billed past today (a subscription the
   * customer never got: its instance's create failed).
   */
  async cancel(subscriptionId: string, when: 'end_of_term' | 'now' | 'void'): Promise<void> {
    const [entitlement, billing] = ({ end_of_term: ['END_OF_TERM', 'END_OF_TERM'], now: ['IMMEDIATE', 'END_OF_TERM'], void: ['IMMEDIATE', 'IMMEDIATE'] } as const)[when];
    await this.call('write', 'cancel subscription', () => this.subscriptions.cancelSubscriptionPlan(subscriptionId, CREATED_BY, undefined, undefined, undefined, entitlement, billing));
  }

  async changePlan(subscriptionId: string, plan: { name: string; productName: string }): Promise<void> {
    await this.call('write', 'change plan', () =>
      this.subscriptions.changeSubscriptionPlan({ planName: plan.name, productName: plan.productName, billingPeriod: 'MONTHLY', priceList: 'DEFAULT' }, subscriptionId, CREATED_BY),
    );
  }

  // ---- test clock (Kill Bill in test mode, or the simulator) ----

  /** Kill Bill's current time: the test clock when there is one, else the wall clock. */
  async now(): Promise<Date> {
    try {
      const res = await this.http.get<{ currentUtcTime: string }>('/1.0/kb/test/clock');
      return new Date(res.data.currentUtcTime);
    } catch (err) {
      if ((err as AxiosError).response) return new Date();
      throw HttpError.unavailable('Billing');
    }
  }

  /**
   * Moves the test clock by `days` (or to `at`). Kill Bill jumps the clock and then waits for its queues
   * only up to `timeoutSec` (default 5 s), answering the time either way; so this passes a timeout and
   * then polls `GET /1.0/kb/test/queues` (412 = still busy) until everything due has fired.
   */
  async moveClock(o: { days?: number; at?: Date; timeoutSec?: number }): Promise<Date> {
    const timeoutSec = o.timeoutSec ?? 10;
    const opts = { headers: { 'X-Killbill-CreatedBy': CREATED_BY }, timeout: (timeoutSec + 30) * 1000 };
    const res = o.at
      ? await this.http.post('/1.0/kb/test/clock', null, { ...opts, params: { requestedDate: o.at.toISOString(), timeoutSec } })
      : await this.http.put('/1.0/kb/test/clock', null, { ...opts, params: { days: o.days ?? 0, timeoutSec } });
    await this.waitForQueues(timeoutSec);
    return new Date(res.data.currentUtcTime);
  }

  /** Polls Kill Bill's `GET /1.0/kb/test/queues` until it answers 200 (drained); gives up after 6 tries. */
  async waitForQueues(timeoutSec = 10): Promise<void> {
    for (let i = 0; i < 6; i++) {
      const res = await this.http.get('/1.0/kb/test/queues', { params: { timeoutSec }, timeout: (timeoutSec + 30) * 1000, validateStatus: (s) => s === 200 || s === 412 });
      if (res.status === 200) return;
    }
    throw HttpError.unavailable('Billing');
  }

  /** Simulator only: makes the account's test payment method succeed or fail from now on. */
  async setPaymentOutcome(accountId: string, outcome: 'SUCCESS' | 'FAILURE', o: { payUnpaid?: boolean } = {}): Promise<void> {
    await this.http.post(`/simulator/accounts/${accountId}/paymentOutcome`, { outcome, ...o }, { headers: { 'X-Killbill-CreatedBy': CREATED_BY } });
  }
}

let shared: KillBill | undefined;

/** The process-wide adapter for the configured Kill Bill. */
export function killbill(): KillBill {
  shared ??= new KillBill();
  return shared;
}

/** Forget the shared adapter (tests that point at another Kill Bill). */
export function resetKillbill(): void {
  shared = undefined;
}
