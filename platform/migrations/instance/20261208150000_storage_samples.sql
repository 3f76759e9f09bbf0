-- Up Migration
-- Storage used over time, for the instance page's chart (issue 22). One sample
-- per instance and hour (the last measurement in that hour wins), kept 30 days
-- (quota.ts prunes as it writes), so a measurement every few minutes stays a
-- few hundred rows per instance.
CREATE TABLE storage_samples (
  instance_id uuid NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
  hour        timestamptz NOT NULL,
  used_bytes  bigint NOT NULL,
  limit_bytes bigint NOT NULL,
  PRIMARY KEY (instance_id, hour)
);

-- Down Migration
DROP TABLE storage_samples;
