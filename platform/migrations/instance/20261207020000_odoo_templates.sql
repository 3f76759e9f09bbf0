-- Up Migration
-- Fast init (issue 17 item 7): per database server, Odoo version, language
-- and demo flag, one template database initialised by Odoo's own init
-- command, marked IS_TEMPLATE; a new instance's database is a copy of it.
-- `build` names what ran the init (image or command): a template made by
-- another build is dropped and made again. `runtime_id` is the runtime
-- storage the init ran in (its filestore is kept by the driver).
CREATE TABLE odoo_templates (
  server text NOT NULL,
  odoo_version text NOT NULL,
  lang text NOT NULL,
  demo boolean NOT NULL,
  build text NOT NULL,
  database text NOT NULL UNIQUE,
  role text NOT NULL,
  runtime_id uuid NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (server, odoo_version, lang, demo)
);
-- The template an instance's database was copied from (its filestore is copied too).
ALTER TABLE instances ADD COLUMN odoo_template text;

-- Down Migration
ALTER TABLE instances DROP COLUMN odoo_template;
DROP TABLE odoo_templates;
