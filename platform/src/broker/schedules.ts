/**
 * The local stand-in for Knative PingSources: emits
 * `com.saasodoo.health.tick` every HEALTH_INTERVAL_SECONDS and
 * `com.saasodoo.schedule.daily` at start and then once a day, through the
 * broker ingress like any other event. A failed send is logged and the next
 * tick tries again (the schedule is a heartbeat, not a queue).
 */
import { buildEvent, send } from '../emit.ts';
import type { HostService } from '../host/host-service.ts';
import { log } from '../log.ts';

const DAY_MS = 24 * 60 * 60 * 1000;

export type Schedules = { stop(): void };

/** Starts both schedules against `sink`; the daily one fires at once. */
export function startSchedules(sink: string, healthIntervalSeconds: number): Schedules {
  const fire = async (type: 'com.saasodoo.health.tick' | 'com.saasodoo.schedule.daily') => {
    try {
      await send(buildEvent(type, { at: new Date().toISOString() }, { source: '/saasodoo/host/schedule' }), sink);
    } catch (err) {
      log.warn({ component: 'schedules', type, err: (err as Error).message }, 'schedule event not sent; next tick retries');
    }
  };
  const tick = setInterval(() => void fire('com.saasodoo.health.tick'), healthIntervalSeconds * 1000);
  const daily = setInterval(() => void fire('com.saasodoo.schedule.daily'), DAY_MS);
  tick.unref();
  daily.unref();
  void fire('com.saasodoo.schedule.daily');
  return {
    stop() {
      clearInterval(tick);
      clearInterval(daily);
    },
  };
}

export const schedulesService: HostService = {
  name: 'schedules',
  phase: 'after',
  async start(ctx) {
    const sink = ctx.functionEnv.K_SINK ?? `http://127.0.0.1:${ctx.config.BROKER_PORT}`;
    const s = startSchedules(sink, ctx.config.HEALTH_INTERVAL_SECONDS);
    return { stop: async () => s.stop(), endpoint: `health.tick every ${ctx.config.HEALTH_INTERVAL_SECONDS} s, schedule.daily daily` };
  },
};
