/**
 * `provision` (CloudEvent instance.provision): SPEC 6's steps, from the
 * claim to `running` + `instance.ready` (platform/src/instances/provisioning.ts).
 */
import { eventFunction, type ReceivedEvent } from '@saasodoo/platform/fn';
import { provision } from '@saasodoo/platform/instances/provisioning';

export default eventFunction({
  name: 'provision',
  on: {
    'com.saasodoo.instance.provision': (e: ReceivedEvent<{ instanceId: string; customerId: string; fromStep?: string }>) =>
      provision({ eventId: e.id, eventType: e.type, data: e.data, traceparent: e.traceparent, log: e.log }),
  },
  outbox: 'instance',
});
