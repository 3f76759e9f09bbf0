-- Up Migration
-- Custom domains (platform/src/instances/domains.ts). A claim is per instance
-- with its own challenge token; only a verified domain is routed, and a
-- domain can be verified for one instance at a time across all tenants.
CREATE TABLE instance_domains (
  instance_id uuid NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
  domain      text NOT NULL,
  token       text NOT NULL,
  verified_at timestamptz,
  checked_at  timestamptz,
  problem     text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (instance_id, domain)
);
CREATE UNIQUE INDEX instance_domains_verified ON instance_domains (domain) WHERE verified_at IS NOT NULL;

-- The verified domains, primary (first verified) first: what the runtime routes and Odoo calls itself.
ALTER TABLE instances ADD COLUMN custom_domains text[] NOT NULL DEFAULT '{}';
CREATE INDEX instances_custom_domains ON instances USING gin (custom_domains);
