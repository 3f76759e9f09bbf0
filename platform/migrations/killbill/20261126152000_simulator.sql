-- Up Migration
-- The Kill Bill simulator's own store (local host and tests only; a real Kill Bill has its own).
CREATE TABLE kb_tenants (
  id uuid PRIMARY KEY,
  api_key text NOT NULL UNIQUE,
  api_secret text NOT NULL,
  external_key text,
  callback_url text,
  catalog_xml text,
  overdue_xml text,
  created_at timestamptz NOT NULL DEFAULT now()
);
-- Kill Bill's objects as JSON documents (accounts, bundles, subscriptions, invoices, payments,
-- payment methods, blocking states), shaped like the REST answers.
CREATE TABLE kb_objects (
  kind text NOT NULL,
  id uuid NOT NULL,
  tenant_id uuid NOT NULL REFERENCES kb_tenants (id),
  account_id uuid,
  external_key text,
  doc jsonb NOT NULL,
  seq bigserial,
  PRIMARY KEY (kind, id)
);
CREATE INDEX kb_objects_account ON kb_objects (tenant_id, kind, account_id);
CREATE INDEX kb_objects_key ON kb_objects (tenant_id, kind, external_key);
-- The test clock (one per simulator, as Kill Bill's is per server).
CREATE TABLE kb_clock (
  id int PRIMARY KEY CHECK (id = 1),
  now timestamptz NOT NULL
);
-- Push notifications waiting for delivery or a retry (persistent, as Kill Bill's push-notification-queue).
CREATE TABLE kb_notifications (
  id bigserial PRIMARY KEY,
  tenant_id uuid NOT NULL,
  url text NOT NULL,
  -- text, not jsonb: Kill Bill's field order is kept byte for byte
  body text NOT NULL,
  attempt int NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  delivered_at timestamptz,
  dropped_at timestamptz,
  last_status text
);
CREATE INDEX kb_notifications_due ON kb_notifications (next_attempt_at) WHERE delivered_at IS NULL AND dropped_at IS NULL;
-- Down Migration
DROP TABLE kb_notifications;
DROP TABLE kb_clock;
DROP TABLE kb_objects;
DROP TABLE kb_tenants;
