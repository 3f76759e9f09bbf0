import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { resetConfig } from '@saasodoo/platform/config';
import { signBackupLink, verifyBackupLink } from '@saasodoo/platform/runtime/backup-links';
import { shellQuote } from '@saasodoo/platform/runtime/local/daemon';
import { quantityBytes } from '@saasodoo/platform/runtime/kubernetes/driver';
import { assertSafeId } from '@saasodoo/platform/runtime/backup-store';

beforeAll(() => {
  process.env.BACKUP_LINK_KEY = randomBytes(24).toString('hex');
  process.env.DATA_DIR = path.join(os.tmpdir(), `rt-unit-${randomBytes(3).toString('hex')}`);
  resetConfig();
});

describe('signed backup links', () => {
  it('round-trips until expiry', () => {
    const t = signBackupLink('inst-1', 'b1', 60, 1_000_000);
    expect(verifyBackupLink(t, 1_000_000 + 59_000)).toMatchObject({ ok: true, instanceId: 'inst-1', backupId: 'b1' });
    expect(verifyBackupLink(t, 1_000_000 + 60_000)).toEqual({ ok: false, reason: 'expired' });
  });

  it('rejects tampering and junk', () => {
    const t = signBackupLink('inst-1', 'b1', 60);
    const [payload, sig] = t.split('.');
    const other = Buffer.from(JSON.stringify({ i: 'inst-2', b: 'b1', e: 9e9 })).toString('base64url');
    expect(verifyBackupLink(`${other}.${sig}`)).toEqual({ ok: false, reason: 'bad_signature' });
    expect(verifyBackupLink(`${payload}.${sig.slice(0, -2)}AA`)).toMatchObject({ ok: false });
    expect(verifyBackupLink('')).toEqual({ ok: false, reason: 'malformed' });
    expect(verifyBackupLink('a.b.c')).toEqual({ ok: false, reason: 'malformed' });
  });
});

describe('ODOO_COMMAND arguments', () => {
  it('single-quotes every argument for sh -c', () => {
    expect(['-c', "/x/it's/odoo.conf", '-d', 'odoo_a'].map(shellQuote).join(' ')).toBe("'-c' '/x/it'\\''s/odoo.conf' '-d' 'odoo_a'");
  });
});

describe('misc', () => {
  it('Kubernetes quantities', () => {
    expect(quantityBytes('10Gi')).toBe(10 * 1024 ** 3);
    expect(quantityBytes('500M')).toBe(5e8);
    expect(quantityBytes('1073741824')).toBe(1073741824);
    expect(quantityBytes(undefined)).toBe(0);
  });

  it('ids cannot escape the backup directory', () => {
    expect(() => assertSafeId('../x', 'id')).toThrow();
    expect(() => assertSafeId('a/b', 'id')).toThrow();
    expect(() => assertSafeId('3f1c2a9e-1111-4222-8333-444455556666', 'id')).not.toThrow();
  });
});
