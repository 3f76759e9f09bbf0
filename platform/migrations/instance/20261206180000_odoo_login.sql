-- Up Migration
-- The customer's Odoo user (issue 17): its login (the customer's email at
-- create time) and display name, written into Odoo by provisioning's
-- odoo_configure step; the hash of the instance's random Odoo master password
-- (admin_passwd in odoo.conf; the clear text is never kept). From now on
-- admin_password_hash holds Odoo's own pbkdf2-sha512 hash of the shown
-- password, not an argon2 hash.
ALTER TABLE instances ADD COLUMN odoo_login text;
ALTER TABLE instances ADD COLUMN odoo_user_name text;
ALTER TABLE instances ADD COLUMN odoo_master_hash text;

-- Down Migration
ALTER TABLE instances DROP COLUMN odoo_master_hash;
ALTER TABLE instances DROP COLUMN odoo_user_name;
ALTER TABLE instances DROP COLUMN odoo_login;
