/**
 * The Odoo contract: passwords exactly as passlib (and so Odoo) writes them,
 * checked against hashes made by passlib 1.7.4 itself; the command lines per
 * version; the configure SQL's shape.
 */
import { describe, expect, it } from 'vitest';
import {
  ab64Decode,
  ab64Encode,
  configFile,
  configureStatements,
  copyDatabaseSql,
  demoArgs,
  freshCopyStatements,
  initArgs,
  KNOWN_ODOO_VERSIONS,
  LICENCE_PARAMETERS,
  neutralizeArgs,
  odooPasswordHash,
  ODOO_PBKDF2_ROUNDS,
  serveArgs,
  uuid1,
  verifyOdooPassword,
  workersFor,
} from '@saasodoo/platform/odoo/contract';
import { loadConfig } from '@saasodoo/platform/config';

// Made with passlib 1.7.4: pbkdf2_sha512.using(rounds=…, salt=…).hash(…)
const PASSLIB_VECTORS = [
  {
    plain: 'correct horse',
    rounds: 1000,
    salt: Buffer.from('0123456789abcdef'),
    hash: '$pbkdf2-sha512$1000$MDEyMzQ1Njc4OWFiY2RlZg$OM0FAoIqCVK1sWtxDiffVlBejtLa.ks4TP71JiecwuSZCG8iLbnlIEPOMoVX.i2B2wkSxjQ8CRGR9OkNGuIPMQ',
  },
  // A salt whose base64 has '+' (written '.') and a non-ASCII password (UTF-8).
  {
    plain: 'Pässwörd ✓',
    rounds: 2000,
    salt: Buffer.from([251, 255, 190, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]),
    hash: '$pbkdf2-sha512$2000$./..AAECAwQFBgcICQoLDA$IwZl9hLZn1GZORFhoMRA22Lz2w0gl7zL1u6qSmektn2CjsLbADggS2oc3Xoeu6Xf2Zwkws3rfEaTTFcy.MD3Yg',
  },
];

const db = { host: '127.0.0.1', port: 5432, name: 'odoo_a_b', user: 'odoo_b', password: 'secret-pw' };

describe('Odoo passwords (passlib pbkdf2_sha512)', () => {
  it.each(PASSLIB_VECTORS)('hashes $plain exactly as passlib does', async (v) => {
    expect(await odooPasswordHash(v.plain, { rounds: v.rounds, salt: v.salt })).toBe(v.hash);
    expect(await verifyOdooPassword(v.plain, v.hash)).toBe(true);
    expect(await verifyOdooPassword(`${v.plain}x`, v.hash)).toBe(false);
  });

  it("uses Odoo's rounds and a 16-byte random salt by default", async () => {
    const h = await odooPasswordHash('pw');
    const [, scheme, rounds, salt, sum] = h.split('$');
    expect([scheme, Number(rounds), ab64Decode(salt).length, ab64Decode(sum).length]).toEqual(['pbkdf2-sha512', ODOO_PBKDF2_ROUNDS, 16, 64]);
    expect(await odooPasswordHash('pw')).not.toBe(h);
  }, 60_000); // two hashes at Odoo's 600 000 rounds, on a shared machine

  it('adapted base64 round-trips and never pads', () => {
    const b = Buffer.from([0xfb, 0xff, 0xbe, 0x01]);
    expect(ab64Encode(b)).toBe('./..AQ');
    expect(ab64Decode(ab64Encode(b))).toEqual(b);
  });

  it('refuses what is not a pbkdf2-sha512 hash', async () => {
    expect(await verifyOdooPassword('admin', 'admin')).toBe(false);
    expect(await verifyOdooPassword('x', '$argon2id$v=19$m=19456,t=2,p=1$abc$def')).toBe(false);
  });
});

describe('command lines per version', () => {
  it('17 and 18 load no demo data unless asked; 19 only with --with-demo', () => {
    expect(demoArgs('17', false)).toEqual(['--without-demo=all']);
    expect(demoArgs('18', true)).toEqual([]);
    expect(demoArgs('19', false)).toEqual([]);
    expect(demoArgs('19', true)).toEqual(['--with-demo']);
    expect(() => demoArgs('16', false)).toThrow(/unsupported/);
  });

  it('init: -d -i base --stop-after-init, the language when not en_US, never a password', () => {
    expect(initArgs({ version: '17', database: db }, '/c')).toEqual(['-c', '/c', '-d', 'odoo_a_b', '-i', 'base', '--stop-after-init', '--without-demo=all']);
    expect(initArgs({ version: '19', database: db, demo: true, lang: 'fr_FR' }, '/c')).toEqual([
      '-c',
      '/c',
      '-d',
      'odoo_a_b',
      '-i',
      'base',
      '--stop-after-init',
      '--with-demo',
      '--load-language=fr_FR',
    ]);
    for (const v of KNOWN_ODOO_VERSIONS) expect(initArgs({ version: v, database: db }, '/c').join(' ')).not.toContain(db.password);
  });

  it('serve: -d alone (no --db-filter, so Odoo never lists databases in postgres), no database list, proxy mode', () => {
    const args = serveArgs({ version: '18', database: db }, '/c');
    expect(args).toEqual(['-c', '/c', '-d', 'odoo_a_b', '--no-database-list', '--proxy-mode']);
  });

  it('neutralize: the odoo-bin command first, then -c and -d (odoo/cli/neutralize.py), for every known version', () => {
    for (const version of KNOWN_ODOO_VERSIONS) expect(neutralizeArgs({ version, database: db }, '/c')).toEqual(['neutralize', '-c', '/c', '-d', 'odoo_a_b']);
    expect(() => neutralizeArgs({ version: '15', database: db }, '/c')).toThrow(/unsupported Odoo version/);
  });

  it('odoo.conf carries the connection, the master password hash and the plan workers', () => {
    const text = configFile({ version: '17', database: db }, { dataDir: '/var/lib/odoo', masterPasswordHash: '$pbkdf2-sha512$1$a$b', workers: workersFor(2), memoryMiB: 4096 });
    expect(text).toMatch(/^\[options\]\n/);
    expect(text).toContain('db_password = secret-pw\n');
    expect(text).toContain('admin_passwd = $pbkdf2-sha512$1$a$b\n');
    expect(text).toContain('data_dir = /var/lib/odoo\n');
    expect(text).toContain('list_db = false\n');
    expect(text).toContain('workers = 5\n');
    expect(text).toContain('gevent_port = 8072\n');
    expect(() => configFile({ version: '17', database: { ...db, password: 'a\nadmin_passwd = x' } }, { dataDir: '/d', masterPasswordHash: 'h' })).toThrow(/line breaks/);
  });
});

describe('configure SQL', () => {
  it('finds the admin user and main company by XML id, parameterised, and freezes web.base.url', () => {
    const st = configureStatements({
      login: "o'brien@example.com",
      passwordHash: '$pbkdf2-sha512$1$a$b',
      userName: 'Pat',
      email: "o'brien@example.com",
      companyName: 'Shop',
      baseUrl: 'http://shop.localhost:8080',
    });
    const sql = st.map((s) => s.text).join('\n');
    expect(sql).toContain("name = 'user_admin'");
    expect(sql).toContain("name = 'main_company'");
    expect(sql).not.toContain("o'brien");
    expect(st.flatMap((s) => s.values)).toEqual(expect.arrayContaining(['web.base.url', 'http://shop.localhost:8080', 'web.base.url.freeze', 'True']));
  });
});

describe('the ODOO_VERSIONS setting', () => {
  it('defaults to 17, 18, 19 and refuses a version the contract does not know', () => {
    expect(loadConfig({}).ODOO_VERSIONS).toEqual(['17', '18', '19']);
    expect(loadConfig({ ODOO_VERSIONS: '18, 19' }).ODOO_VERSIONS).toEqual(['18', '19']);
    expect(() => loadConfig({ ODOO_VERSIONS: '16,17' })).toThrow(/ODOO_VERSIONS/);
  });
});

describe('a copy of a template database, as exp_duplicate_database makes it', () => {
  it('CREATE DATABASE … TEMPLATE owned by the tenant role, names quoted', () => {
    expect(copyDatabaseSql('a"b', 'role', 'tpl')).toBe('CREATE DATABASE "a""b" OWNER "role" TEMPLATE "tpl"');
  });

  it('uuid1: version 1, RFC 4122 variant, a random (multicast) node, its time from the clock', () => {
    const u = uuid1(Date.UTC(2026, 0, 1));
    expect(u).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-1[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(parseInt(u.slice(24, 26), 16) & 1).toBe(1);
    const [lo, mid, hi] = u.split('-');
    const t = BigInt(`0x${hi.slice(1)}${mid}${lo}`);
    expect(Number((t - 0x01b21dd213814000n) / 10000n) - Date.UTC(2026, 0, 1)).toBeLessThan(2);
    expect(uuid1()).not.toBe(uuid1());
  });

  it('a new secret, uuid, creation date and localhost URL each time; licence keys and the URL freeze removed', () => {
    const a = freshCopyStatements({ now: new Date('2026-12-07T01:02:03Z') });
    const b = freshCopyStatements();
    const values = (st: typeof a) => Object.fromEntries(st.filter((x) => x.values.length === 2).map((x) => x.values as [string, string]));
    expect(values(a)['database.create_date']).toBe('2026-12-07 01:02:03');
    expect(values(a)['web.base.url']).toBe('http://localhost:8069');
    expect(values(a)['database.secret']).not.toBe(values(b)['database.secret']);
    expect(values(a)['database.uuid']).not.toBe(values(b)['database.uuid']);
    const del = a.find((x) => x.text.startsWith('DELETE'))!;
    expect(del.values[0]).toEqual([...LICENCE_PARAMETERS]);
    expect(LICENCE_PARAMETERS).toContain('database.enterprise_code');
    expect(LICENCE_PARAMETERS).toContain('database.expiration_date');
    expect(del.text).toContain('web.base.url.freeze');
  });
});
