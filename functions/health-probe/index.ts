/** `health-probe` (CloudEvent health.tick): one sweep over every running instance (SPEC 8). */
import { eventFunction, type ReceivedEvent } from '@saasodoo/platform/fn';
import { sweep } from '@saasodoo/platform/instances/health';
import { stopOutbox } from '@saasodoo/platform/instances/relay';

export default eventFunction({
  name: 'health-probe',
  on: {
    'com.saasodoo.health.tick': async (e: ReceivedEvent<{ at: string }>) => {
      const s = await sweep({ eventId: e.id, eventType: e.type, data: e.data, traceparent: e.traceparent, log: e.log });
      e.log.info(s, 'health sweep');
    },
  },
  shutdown: stopOutbox,
});
