/**
 * `provision` (CloudEvent instance.provision): the provisioning steps of
 * platform/src/instances/README.md, from the claim to `running` +
 * `instance.ready` (platform/src/instances/provisioning.ts).
 */
import { command, eventFunction } from '@saasodoo/platform/fn';
import { provision } from '@saasodoo/platform/instances/provisioning';

export default eventFunction({
  name: 'provision',
  on: {
    'com.saasodoo.instance.provision': command(provision),
  },
  outbox: 'instance',
});
