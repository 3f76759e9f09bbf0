/** `quota-set` (CloudEvent instance.quota): the plan's resources and storage quota, usage reported. */
import { command, eventFunction } from '@saasodoo/platform/fn';
import { applyQuota } from '@saasodoo/platform/instances/quota';

export default eventFunction({
  name: 'quota-set',
  on: {
    'com.saasodoo.instance.quota': command(applyQuota),
  },
  outbox: 'instance',
});
