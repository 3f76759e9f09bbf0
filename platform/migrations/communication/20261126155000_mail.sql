-- Up Migration
-- Where to reach a customer: most events carry only the customer id. Fed by
-- user.registered (and refreshed by every user.* event that carries the address).
CREATE TABLE contacts (
  customer_id uuid PRIMARY KEY,
  email text NOT NULL,
  first_name text,
  last_name text,
  updated_at timestamptz NOT NULL DEFAULT now()
);
-- What a mail can call an instance ("your instance acme"), fed by instance.requested / instance.ready.
CREATE TABLE instance_labels (
  instance_id uuid PRIMARY KEY,
  customer_id uuid NOT NULL,
  name text,
  subdomain text,
  url text,
  updated_at timestamptz NOT NULL DEFAULT now()
);
-- Every mail sent. idempotency_key is unique: a redelivered event finds its row and sends nothing more.
CREATE TABLE mails (
  id uuid PRIMARY KEY,
  idempotency_key text NOT NULL UNIQUE,
  event_id text NOT NULL,
  event_type text NOT NULL,
  template text NOT NULL,
  customer_id uuid,
  recipient text NOT NULL,
  subject text NOT NULL,
  status text NOT NULL CHECK (status IN ('sending', 'sent')),
  message_id text,
  created_at timestamptz NOT NULL DEFAULT now(),
  sent_at timestamptz
);
CREATE INDEX mails_customer ON mails (customer_id, created_at);
-- Down Migration
DROP TABLE mails;
DROP TABLE instance_labels;
DROP TABLE contacts;
