/** `quota-set` (CloudEvent instance.quota): the plan's resources and storage quota, usage reported. */
import { eventFunction, type ReceivedEvent } from '@saasodoo/platform/fn';
import { applyQuota } from '@saasodoo/platform/instances/quota';

export default eventFunction({
  name: 'quota-set',
  on: {
    'com.saasodoo.instance.quota': async (e: ReceivedEvent<{ instanceId: string; customerId: string; plan: string }>) => {
      await applyQuota({ eventId: e.id, eventType: e.type, data: e.data, traceparent: e.traceparent, log: e.log });
    },
  },
  outbox: 'instance',
});
