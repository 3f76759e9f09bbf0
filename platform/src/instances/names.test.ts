/** The naming rules of README.md 3: subdomains customers pick, names derived from ids, and the URLs built from them. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resetConfig } from '../config.ts';
import { instanceDbNames, instanceUrl, odooBaseUrl, shortId, subdomainProblem } from './names.ts';

const INSTANCE = '0A1B2C3D-4E5F-4789-8ABC-DEF012345678';
const CUSTOMER = 'ffeeddcc-bbaa-4999-8888-777766665555';

describe('subdomainProblem', () => {
  it('takes 3 and 50 characters, not 2 or 51', () => {
    expect(subdomainProblem('abc')).toBeUndefined();
    expect(subdomainProblem('a'.repeat(50))).toBeUndefined();
    expect(subdomainProblem('ab')).toBe('must be 3 to 50 characters');
    expect(subdomainProblem('a'.repeat(51))).toBe('must be 3 to 50 characters');
  });

  it('says the first thing wrong: length, then characters, then hyphens, then reserved words', () => {
    expect(subdomainProblem('A-')).toBe('must be 3 to 50 characters');
    expect(subdomainProblem('-Shop')).toBe('only lowercase letters, digits and hyphens');
    expect(subdomainProblem('shop-')).toBe('must not start or end with a hyphen');
    expect(subdomainProblem('www')).toBe('is reserved');
    expect(subdomainProblem('tpl-0123abcd')).toMatch(/^is reserved/); // the platform's template instances
    expect(subdomainProblem('my-tpl-shop')).toBeUndefined();
  });

  it('refuses what is not plain ASCII (look-alike letters would route elsewhere)', () => {
    // The first has a Cyrillic "о".
    for (const s of ['shоp', 'café', 'sh op', 'shop\n']) expect(subdomainProblem(s), JSON.stringify(s)).toBe('only lowercase letters, digits and hyphens');
  });
});

describe('names derived from ids', () => {
  it('shortId drops hyphens and case', () => {
    expect(shortId(INSTANCE, 12)).toBe('0a1b2c3d4e5f');
    expect(shortId(INSTANCE, 40)).toBe('0a1b2c3d4e5f47898abcdef012345678');
  });

  it('the role follows the instance alone; the database also names the customer; both fit PostgreSQL (63 bytes)', () => {
    const a = instanceDbNames(INSTANCE, CUSTOMER);
    const b = instanceDbNames(INSTANCE, '11111111-2222-4333-8444-555555555555');
    expect(a.role).toBe(b.role);
    expect(a.database).not.toBe(b.database);
    expect(a.database.endsWith('odoo_ffeeddcc_0a1b2c3d4e5f')).toBe(true);
    for (const n of [a.role, a.database]) {
      expect(n).toMatch(/^[a-z_][a-z0-9_]*$/);
      expect(Buffer.byteLength(n)).toBeLessThanOrEqual(63);
    }
  });
});

describe('URLs', () => {
  const saved = { ...process.env };
  beforeAll(() => {
    Object.assign(process.env, { BASE_DOMAIN: 'odoo.example.com', INSTANCE_URL_SCHEME: 'https' });
    resetConfig();
  });
  afterAll(() => {
    process.env = saved;
    resetConfig();
  });

  it('an instance lives at its subdomain of BASE_DOMAIN', () => {
    expect(instanceUrl('acme')).toBe('https://acme.odoo.example.com');
  });

  it('Odoo calls itself by its primary custom domain once one is verified, else by its subdomain', () => {
    expect(odooBaseUrl({ subdomain: 'acme', custom_domains: [] })).toBe('https://acme.odoo.example.com');
    expect(odooBaseUrl({ subdomain: 'acme', custom_domains: ['erp.acme.test', 'shop.acme.test'] })).toBe('https://erp.acme.test');
  });

  it('locally (BASE_DOMAIN localhost) the gateway port is part of the address', () => {
    process.env.BASE_DOMAIN = 'localhost';
    process.env.GATEWAY_PORT = '18080';
    resetConfig();
    expect(instanceUrl('acme')).toBe('https://acme.localhost:18080');
  });
});
