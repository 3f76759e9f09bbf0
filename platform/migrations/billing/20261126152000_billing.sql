-- Up Migration
-- Resources each plan gives, versioned by effective date (SPEC 3): the catalogue says what a plan costs,
-- this table says what it provides. The row in force is the latest effective_from <= now.
CREATE TABLE plan_entitlements (
  plan_id text NOT NULL,
  effective_from timestamptz NOT NULL,
  cpu numeric(5,2) NOT NULL CHECK (cpu > 0),
  memory_mib int NOT NULL CHECK (memory_mib > 0),
  storage_gib int NOT NULL CHECK (storage_gib > 0),
  database text NOT NULL CHECK (database IN ('shared', 'dedicated')),
  PRIMARY KEY (plan_id, effective_from)
);
INSERT INTO plan_entitlements (plan_id, effective_from, cpu, memory_mib, storage_gib, database) VALUES
  ('basic-immediate', '2026-01-01T00:00:00Z', 1, 2048, 10, 'shared'),
  ('basic-monthly', '2026-01-01T00:00:00Z', 1, 2048, 10, 'shared'),
  ('standard-monthly', '2026-01-01T00:00:00Z', 2, 4096, 20, 'shared'),
  ('premium-monthly', '2026-01-01T00:00:00Z', 4, 8192, 50, 'dedicated'),
  ('basic-test-trial', '2026-01-01T00:00:00Z', 1, 2048, 10, 'shared');

-- One trial per customer, for life (SPEC 4): the unique key is the last guard against races.
CREATE TABLE trials (
  customer_id uuid PRIMARY KEY,
  instance_id uuid NOT NULL,
  subscription_id uuid,
  plan_id text NOT NULL,
  started_at timestamptz NOT NULL DEFAULT now(),
  ends_at timestamptz
);
-- Trial-ending warnings already sent (7, 3, 1 days), once per trial and day.
CREATE TABLE trial_warnings (
  subscription_id uuid NOT NULL,
  days_left int NOT NULL,
  sent_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (subscription_id, days_left)
);

-- Kill Bill push notifications as received (webhook-intake): the dedupe key is the CloudEvent id.
CREATE TABLE kb_inbox (
  dedupe_key uuid PRIMARY KEY,
  tenant text NOT NULL,
  event_type text NOT NULL,
  account_id uuid,
  object_type text,
  object_id uuid,
  body jsonb NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(),
  deliveries int NOT NULL DEFAULT 1
);

-- What lifecycle last made true for each subscription (so each effect happens once, in any order).
CREATE TABLE lifecycle_subscriptions (
  subscription_id uuid PRIMARY KEY,
  instance_id uuid NOT NULL,
  customer_id uuid NOT NULL,
  plan_id text,
  billing_status text,
  provisioned boolean NOT NULL DEFAULT false,
  suspended boolean NOT NULL DEFAULT false,
  terminated boolean NOT NULL DEFAULT false,
  updated_at timestamptz NOT NULL DEFAULT now()
);
-- Notices already emitted (billing.status_changed per cause), keyed by what caused them.
CREATE TABLE lifecycle_notices (
  key text PRIMARY KEY,
  created_at timestamptz NOT NULL DEFAULT now()
);
-- Down Migration
DROP TABLE lifecycle_notices;
DROP TABLE lifecycle_subscriptions;
DROP TABLE kb_inbox;
DROP TABLE trial_warnings;
DROP TABLE trials;
DROP TABLE plan_entitlements;
