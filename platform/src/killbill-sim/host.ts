/**
 * The simulator as a local-host service: started before the functions when
 * KILLBILL_URL is unset, it hands the functions its URL and registers the
 * webhook-intake callback (only when not already registered).
 */
import { KillBill } from '../billing/killbill.ts';
import { callbackUrl } from '../billing/webhook.ts';
import { log } from '../log.ts';
import type { HostService } from '../host/host-service.ts';
import { startSimulator } from './index.ts';

export const killbillSimulatorService: HostService = {
  name: 'killbill-sim',
  phase: 'before',
  enabled: (c) => !c.KILLBILL_URL,
  async start(ctx) {
    const sim = await startSimulator({ port: ctx.config.KILLBILL_SIM_PORT, stripePort: ctx.config.STRIPE_SIM_PORT });
    ctx.functionEnv.KILLBILL_URL = sim.url;
    ctx.functionEnv.KILLBILL_SIMULATOR = 'true';
    // The killbill-stripe plugin of the simulator talks to its Stripe stand-in; so does the platform.
    ctx.functionEnv.STRIPE_API_URL = sim.stripeUrl;
    ctx.functionEnv.STRIPE_SECRET_KEY = ctx.config.STRIPE_SECRET_KEY?.startsWith('sk_test_') ? ctx.config.STRIPE_SECRET_KEY : 'sk_test_saasodoo_simulator';
    const kb = new KillBill({ url: sim.url });
    await kb.syncConfig();
    if (await kb.registerCallback(callbackUrl())) log.info('registered the webhook-intake callback with the Kill Bill simulator');
    return { stop: () => sim.stop(), endpoint: `${sim.url} (Kill Bill simulator; Stripe stand-in ${sim.stripeUrl})` };
  },
};
