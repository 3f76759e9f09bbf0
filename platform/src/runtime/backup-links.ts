/**
 * Signed, expiring backup download links (platform/src/instances/README.md 4): `backup-download` takes no
 * bearer token, so the link itself is the authorisation. Token =
 * base64url(JSON {i: instanceId, b: backupId, e: expiry seconds}) "." HMAC-SHA256
 * of that part with a key from secrets (BACKUP_LINK_KEY or generated locally).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { config } from '../config.ts';
import { localSecret } from '../secrets.ts';

function key(): string {
  return localSecret('backupLinkKey', config().BACKUP_LINK_KEY);
}

function mac(payload: string): Buffer {
  return createHmac('sha256', key()).update(payload).digest();
}

/** A token granting download of one backup until `ttlSeconds` from now. */
export function signBackupLink(instanceId: string, backupId: string, ttlSeconds: number, now = Date.now()): string {
  const payload = Buffer.from(JSON.stringify({ i: instanceId, b: backupId, e: Math.floor(now / 1000) + ttlSeconds })).toString('base64url');
  return `${payload}.${mac(payload).toString('base64url')}`;
}

export type BackupLinkCheck = { ok: true; instanceId: string; backupId: string; expiresAt: Date } | { ok: false; reason: 'malformed' | 'bad_signature' | 'expired' };

/** Checks a token's signature and expiry (constant-time compare). */
export function verifyBackupLink(token: string, now = Date.now()): BackupLinkCheck {
  const m = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/.exec(token ?? '');
  if (!m) return { ok: false, reason: 'malformed' };
  const given = Buffer.from(m[2], 'base64url');
  const want = mac(m[1]);
  if (given.length !== want.length || !timingSafeEqual(given, want)) return { ok: false, reason: 'bad_signature' };
  let body: { i?: unknown; b?: unknown; e?: unknown };
  try {
    body = JSON.parse(Buffer.from(m[1], 'base64url').toString('utf8'));
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  if (typeof body.i !== 'string' || typeof body.b !== 'string' || typeof body.e !== 'number') return { ok: false, reason: 'malformed' };
  if (body.e * 1000 <= now) return { ok: false, reason: 'expired' };
  return { ok: true, instanceId: body.i, backupId: body.b, expiresAt: new Date(body.e * 1000) };
}
