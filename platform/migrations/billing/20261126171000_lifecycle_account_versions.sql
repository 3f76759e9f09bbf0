-- Up Migration
-- One counter per Kill Bill account, bumped by every lifecycle decision on it.
-- A decision reads Kill Bill's state, then commits only if the counter has not
-- moved since it started (else it reads again): so no decision is ever taken
-- on a state read before another decision committed, and no connection is held
-- while Kill Bill answers.
CREATE TABLE lifecycle_account_versions (
  account_key text PRIMARY KEY,
  version bigint NOT NULL DEFAULT 0
);

-- Down Migration
DROP TABLE lifecycle_account_versions;
