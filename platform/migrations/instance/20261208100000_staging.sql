-- Up Migration
-- Staging copies (platform/src/instances/README.md 6, issue 24.2): a copy is an
-- instance of its own, marked with the instance it copies. At most one live
-- copy per original; the copy's subscription_id is its Kill Bill add-on.
ALTER TABLE instances ADD COLUMN staging_of uuid REFERENCES instances (id);
CREATE UNIQUE INDEX instances_staging_live ON instances (staging_of) WHERE staging_of IS NOT NULL AND status <> 'terminated';
-- When the copy's data was last taken from the original (created or refreshed).
ALTER TABLE instances ADD COLUMN staging_copied_at timestamptz;
