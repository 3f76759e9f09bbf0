-- Up Migration
-- Moving an instance's database between a shared pool and its dedicated
-- server on a plan change (issue 20 item 3): the instance is briefly
-- `migrating` (Odoo stopped, database copied, connection switched).
ALTER TABLE instances DROP CONSTRAINT instances_status_check;
ALTER TABLE instances ADD CONSTRAINT instances_status_check CHECK (status IN ('pending_payment', 'provisioning', 'running', 'stopping', 'stopped',
  'starting', 'restarting', 'backing_up', 'restoring', 'suspended', 'error', 'terminating', 'terminated', 'migrating'));

-- Down Migration
ALTER TABLE instances DROP CONSTRAINT instances_status_check;
ALTER TABLE instances ADD CONSTRAINT instances_status_check CHECK (status IN ('pending_payment', 'provisioning', 'running', 'stopping', 'stopped',
  'starting', 'restarting', 'backing_up', 'restoring', 'suspended', 'error', 'terminating', 'terminated'));
