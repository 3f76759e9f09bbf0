/**
 * `instance-ops` (CloudEvents): the instance commands after provisioning
 * (start, stop, restart, suspend, resume, terminate, backup, restore), the
 * daily backups, billing's status changes, and a restart of an instance
 * health-probe found unhealthy.
 */
import { command as on, eventFunction } from '@saasodoo/platform/fn';
import { backupCommand, dailyBackups, restoreCommand } from '@saasodoo/platform/instances/backups';
import { billingStatusChanged, restart, resume, start, stop, suspend, terminate } from './operations.ts';

export default eventFunction({
  name: 'instance-ops',
  on: {
    'com.saasodoo.instance.start': on(start),
    'com.saasodoo.instance.stop': on(stop),
    'com.saasodoo.instance.restart': on(restart),
    // health-probe's verdict: the platform restarts what stopped serving (the history names the unhealthy event as the cause).
    'com.saasodoo.instance.unhealthy': on(restart),
    'com.saasodoo.instance.suspend': on(suspend),
    'com.saasodoo.instance.resume': on(resume),
    'com.saasodoo.instance.terminate': on(terminate),
    'com.saasodoo.instance.backup': on(backupCommand),
    'com.saasodoo.instance.restore': on(restoreCommand),
    'com.saasodoo.schedule.daily': on(dailyBackups),
    'com.saasodoo.billing.status_changed': on(billingStatusChanged),
  },
  outbox: 'instance',
});
