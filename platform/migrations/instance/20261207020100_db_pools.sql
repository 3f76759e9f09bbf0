-- Up Migration
-- Database placement (issue 20): the PostgreSQL servers instance databases
-- live on. A shared pool holds many instances up to its capacity; a
-- dedicated one serves one instance. The admin credentials (a superuser, or
-- a role with CREATEDB and CREATEROLE) are sealed like the other instance
-- secrets; the platform's own server (the first shared pool, `default`) has
-- none: the provisioner role works there.
CREATE TABLE db_pools (
  name text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  kind text NOT NULL CHECK (kind IN ('shared', 'dedicated')),
  host text NOT NULL,
  port integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
  admin_user text,
  admin_password_sealed text,
  capacity integer NOT NULL CHECK (capacity >= 1),
  state text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'draining', 'degraded', 'unhealthy')),
  health_failures integer NOT NULL DEFAULT 0,
  checked_at timestamptz,
  last_error text,
  created_at timestamptz NOT NULL DEFAULT now()
);
-- Where an instance's database is: its pool and that server's address (null: the platform's own server, as before pools).
ALTER TABLE instances ADD COLUMN db_pool text REFERENCES db_pools (name);
ALTER TABLE instances ADD COLUMN db_host text;
ALTER TABLE instances ADD COLUMN db_port integer;
CREATE INDEX instances_db_pool ON instances (db_pool) WHERE status <> 'terminated';

-- Down Migration
DROP INDEX instances_db_pool;
ALTER TABLE instances DROP COLUMN db_port;
ALTER TABLE instances DROP COLUMN db_host;
ALTER TABLE instances DROP COLUMN db_pool;
DROP TABLE db_pools;
