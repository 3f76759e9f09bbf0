/**
 * The Kill Bill simulator: Kill Bill's REST subset, test clock and push
 * notifications on its own port with its state in its own database, so the
 * platform runs and is tested without a Kill Bill server. A real Kill Bill
 * replaces it by setting KILLBILL_URL.
 */
import type { Server } from 'node:http';
import { config } from '../config.ts';
import { db, type Db } from '../db/index.ts';
import { Delivery } from './delivery.ts';
import { Engine } from './engine.ts';
import { createServer } from './server.ts';
import { createTenant, tenantByKey } from './store.ts';
import { startStripeStandIn } from './stripe.ts';

export type SimulatorOptions = {
  /** 0 = a random free port. */
  port: number;
  /** Port of the Stripe stand-in (API subset + hosted card page); 0 = a random free port. */
  stripePort?: number;
  host?: string;
  /** Push retry schedule, e.g. `15m,30m,2h,12h,1d` (Kill Bill's default) or `50ms,100ms` in tests. */
  retries?: string;
  /** Probability (0..1) that a notification is sent twice (tests of idempotency). */
  duplicateRate?: number;
  /** How often pending notifications are looked at, in ms. */
  deliveryIntervalMs?: number;
  apiKey?: string;
  apiSecret?: string;
  username?: string;
  password?: string;
};

export type Simulator = {
  url: string;
  /** The Stripe stand-in: point the `stripe` package here (STRIPE_API_URL). */
  stripeUrl: string;
  port: number;
  db: Db;
  engine: Engine;
  delivery: Delivery;
  stop(): Promise<void>;
};

/** Starts the simulator with the configured tenant (KILLBILL_API_KEY/SECRET) created; resolves once listening. */
export async function startSimulator(o: SimulatorOptions): Promise<Simulator> {
  const c = config();
  const store = db('killbill');
  const apiKey = o.apiKey ?? c.KILLBILL_API_KEY;
  const apiSecret = o.apiSecret ?? c.KILLBILL_API_SECRET;
  await store.tx(async (t) => {
    if (!(await tenantByKey(t, apiKey))) await createTenant(t, apiKey, apiSecret);
  });
  const engine = new Engine({ duplicateRate: o.duplicateRate ?? 0 });
  const delivery = new Delivery(store, o.retries ?? c.KILLBILL_SIM_RETRIES, o.deliveryIntervalMs ?? 250);
  const host = o.host ?? '127.0.0.1';
  const stripe = await startStripeStandIn(store, o.stripePort ?? 0, host);
  const server: Server = createServer({
    db: store,
    engine,
    delivery,
    stripeUrl: stripe.url,
    credentials: { username: o.username ?? c.KILLBILL_USERNAME, password: o.password ?? c.KILLBILL_PASSWORD },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, host, () => resolve());
  });
  delivery.start();
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://${host}:${port}`,
    stripeUrl: stripe.url,
    port,
    db: store,
    engine,
    delivery,
    async stop() {
      await delivery.stop();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      stripe.server.closeAllConnections();
      await new Promise<void>((r) => stripe.server.close(() => r()));
    },
  };
}
