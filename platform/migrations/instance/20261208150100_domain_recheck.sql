-- Up Migration
-- Verified custom domains are checked again daily (domains.ts): since when
-- their records stopped checking out. After a week the domain is released
-- (no longer routed, free for whoever proves it next).
ALTER TABLE instance_domains ADD COLUMN failing_since timestamptz;

-- Down Migration
ALTER TABLE instance_domains DROP COLUMN failing_since;
