-- Up Migration
-- Events a state change causes, written in the same transaction, published by the relay.
CREATE TABLE outbox (
  id uuid PRIMARY KEY,
  type text NOT NULL,
  source text NOT NULL,
  subject text,
  data jsonb NOT NULL,
  extensions jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  published_at timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (created_at) WHERE published_at IS NULL;
-- Events already consumed, so a redelivery has no second effect.
CREATE TABLE processed_events (
  event_id text NOT NULL,
  consumer text NOT NULL,
  processed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (event_id, consumer)
);
-- Down Migration
DROP TABLE processed_events;
DROP TABLE outbox;
