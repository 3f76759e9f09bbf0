-- Up Migration
-- One row per customer instance (SPEC 5). status, billing_status and health are
-- three separate fields; resources always come from the plan.
CREATE TABLE instances (
  id uuid PRIMARY KEY,
  customer_id uuid NOT NULL,
  name text NOT NULL,
  subdomain text NOT NULL,
  plan text NOT NULL,
  odoo_version text NOT NULL,
  demo_data boolean NOT NULL DEFAULT false,
  trial boolean NOT NULL DEFAULT false,
  status text NOT NULL CHECK (status IN ('pending_payment', 'provisioning', 'running', 'stopping', 'stopped',
    'starting', 'restarting', 'backing_up', 'restoring', 'suspended', 'error', 'terminating', 'terminated')),
  billing_status text NOT NULL CHECK (billing_status IN ('trial', 'payment_required', 'paid', 'overdue', 'suspended')),
  -- The settled status a transient one (backing_up, restoring...) returns to.
  previous_status text,
  health text NOT NULL DEFAULT 'unknown' CHECK (health IN ('unknown', 'healthy', 'unhealthy')),
  health_failures integer NOT NULL DEFAULT 0,
  resources jsonb NOT NULL,
  subscription_id uuid,
  db_name text,
  db_role text,
  -- AES-GCM sealed with the instance secrets key; never returned by the API.
  db_password_sealed text,
  error_step text,
  error_reason text,
  -- The Odoo admin password is kept sealed only until the customer has seen it once.
  admin_password_sealed text,
  admin_password_hash text,
  admin_password_shown boolean NOT NULL DEFAULT false,
  -- Last instance.progress of the running operation: {operation, step, index, total}.
  progress jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  terminated_at timestamptz
);
-- The concurrency guard of create: two requests for one subdomain, one wins.
-- A terminated instance frees its subdomain.
CREATE UNIQUE INDEX instances_subdomain_live ON instances (subdomain) WHERE status <> 'terminated';
CREATE INDEX instances_customer ON instances (customer_id, created_at DESC);
CREATE INDEX instances_status ON instances (status);

-- The audit trail: every status change with the event that caused it.
CREATE TABLE instance_history (
  id bigserial PRIMARY KEY,
  instance_id uuid NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
  event_id text,
  event_type text,
  from_status text,
  to_status text NOT NULL,
  reason text,
  actor text NOT NULL,
  at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX instance_history_instance ON instance_history (instance_id, id);

CREATE TABLE backups (
  -- A uuid for backups the platform asks for; the driver names safety backups itself.
  id text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$'),
  instance_id uuid NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
  kind text NOT NULL CHECK (kind IN ('manual', 'daily', 'safety', 'final')),
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'completed', 'failed', 'expired')),
  db_size_bytes bigint,
  filestore_size_bytes bigint,
  size_bytes bigint,
  location text,
  manifest jsonb,
  error text,
  created_at timestamptz NOT NULL DEFAULT now(),
  completed_at timestamptz,
  expires_at timestamptz
);
CREATE INDEX backups_instance ON backups (instance_id, created_at DESC);

-- Down Migration
DROP TABLE backups;
DROP TABLE instance_history;
DROP TABLE instances;
