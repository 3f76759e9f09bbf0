-- Up Migration
-- The audit log: one row per action a person asked for (audit.action events)
-- and per decision the system made about an account or instance. Append-only:
-- the functions' role may insert and select (platform/src/db/migrate.ts), and
-- old rows leave only through audit_prune, which never touches the last 30 days.
CREATE TABLE audit_log (
  id          text PRIMARY KEY,          -- the CloudEvent id: a redelivered event is stored once
  at          timestamptz NOT NULL,
  actor       text NOT NULL CHECK (actor IN ('customer', 'operator', 'anonymous', 'billing', 'system')),
  actor_id    uuid,
  customer_id uuid,
  instance_id uuid,
  action      text NOT NULL,
  outcome     text NOT NULL CHECK (outcome IN ('succeeded', 'refused', 'denied', 'failed')),
  status      integer,
  request_id  text,
  detail      text,
  recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_customer ON audit_log (customer_id, at DESC);
CREATE INDEX audit_log_instance ON audit_log (instance_id, at DESC);
CREATE INDEX audit_log_at ON audit_log (at DESC);

CREATE FUNCTION audit_prune(keep_days integer) RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path = public AS $$
  WITH gone AS (
    DELETE FROM audit_log WHERE at < now() - make_interval(days => greatest(keep_days, 30)) RETURNING 1
  )
  SELECT count(*)::integer FROM gone
$$;
REVOKE ALL ON FUNCTION audit_prune(integer) FROM PUBLIC;
