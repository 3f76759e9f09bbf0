/**
 * Instance secrets at rest. The per-instance database password and the Odoo
 * admin password (until the customer has seen it once) are stored sealed
 * with AES-256-GCM under INSTANCE_SECRETS_KEY, so a dump of the instance
 * database alone reveals neither. Nothing here is ever logged.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { config } from '../config.ts';
import { localSecret } from '../secrets.ts';

function key(): Buffer {
  const material = localSecret('instance.secrets_key', config().INSTANCE_SECRETS_KEY, () => randomBytes(32).toString('base64'));
  return createHash('sha256').update(material).digest();
}

/** Encrypts `plain`; the result is `v1.<iv>.<tag>.<ciphertext>` in base64url. */
export function seal(plain: string): string {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key(), iv);
  const ct = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
  return ['v1', iv.toString('base64url'), c.getAuthTag().toString('base64url'), ct.toString('base64url')].join('.');
}

/** Decrypts what `seal` produced; throws if it was tampered with or sealed under another key. */
export function unseal(sealed: string): string {
  const [v, iv, tag, ct] = sealed.split('.');
  if (v !== 'v1' || !iv || !tag || ct === undefined) throw new Error('not a sealed secret');
  const d = createDecipheriv('aes-256-gcm', key(), Buffer.from(iv, 'base64url'));
  d.setAuthTag(Buffer.from(tag, 'base64url'));
  return Buffer.concat([d.update(Buffer.from(ct, 'base64url')), d.final()]).toString('utf8');
}

/** A random password: 24 url-safe characters (144 bits). */
export function randomPassword(): string {
  return randomBytes(18).toString('base64url');
}

/**
 * A new password for the customer's Odoo user: only sealed, for the
 * one-time display. odoo_configure writes Odoo's own pbkdf2-sha512 hash of
 * it into Odoo (and admin_password_hash); no other form is ever kept.
 */
export function newOdooPassword(): { plain: string; sealed: string } {
  const plain = randomPassword();
  return { plain, sealed: seal(plain) };
}

/** Hex SHA-256 of `text` (names derived from a key, instances/templates.ts). */
export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
