-- Up Migration
-- Instance ids whose create failed after billing was asked, with billing's answer unknown
-- (instance.create_failed). No subscription may stay open for them: starting one is refused,
-- lifecycle cancels any it sees, and they neither count as a trial nor drive instance commands.
CREATE TABLE failed_creates (
  instance_id uuid PRIMARY KEY,
  customer_id uuid NOT NULL,
  at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX failed_creates_customer ON failed_creates (customer_id);

-- Down Migration
DROP TABLE failed_creates;
