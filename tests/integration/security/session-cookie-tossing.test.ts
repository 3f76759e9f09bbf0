/**
 * Session cookie tossing (issue 15.9): tenants' Odoo pages live on sibling
 * subdomains of the portal (acme.example.com next to portal.example.com), and
 * a page there can set a cookie for the parent domain that the browser then
 * sends to the portal, planting or overwriting its session. Outside
 * localhost the portal's cookie is now `__Host-` prefixed and Secure (a
 * browser accepts such a cookie only from that exact host over HTTPS, never
 * with a Domain attribute) and the portal reads no other name. On
 * http://localhost (`npm start`) it stays a plain cookie.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestUser, type TestUser } from '../../helpers/auth.ts';
import { postLogin, setCookies, startPortal, type Portal } from './portal.ts';

const PUBLIC_URL = 'https://portal.example.test';

/** GET /login with these cookies: 303 on to /instances for a session, 200 (the form) for an anonymous visitor. */
async function loginPage(p: Portal, cookie: string): Promise<number> {
  const res = await fetch(`${p.url}/login`, { redirect: 'manual', headers: { cookie } });
  await res.body?.cancel();
  return res.status;
}

describe('behind HTTPS (PUBLIC_URL https://portal.example.test)', () => {
  let p: Portal;
  let user: TestUser;
  beforeAll(async () => {
    p = await startPortal({ PUBLIC_URL });
    user = await createTestUser();
  });
  afterAll(async () => {
    await p?.platform.stop();
  });

  it('login sets a __Host- cookie: Secure, HttpOnly, Path=/, SameSite=Lax, no Domain', async () => {
    const res = await postLogin(p, { email: user.email, password: user.password });
    expect(res.status).toBe(303);
    const cookies = setCookies(res);
    expect(cookies.map((c) => c.name)).toEqual(['__Host-saasodoo_session']);
    const attrs = cookies[0].attributes.map((a) => a.toLowerCase());
    expect(attrs).toEqual(expect.arrayContaining(['secure', 'httponly', 'path=/', 'samesite=lax']));
    expect(attrs.some((a) => a.startsWith('domain='))).toBe(false);
  });

  it('reads only the __Host- cookie: the same session under the plain name (as a sibling subdomain could plant it) is ignored', async () => {
    const res = await postLogin(p, { email: user.email, password: user.password });
    const sealed = setCookies(res).find((c) => c.name === '__Host-saasodoo_session')!.value;
    expect(await loginPage(p, `__Host-saasodoo_session=${sealed}`)).toBe(303);
    expect(await loginPage(p, `saasodoo_session=${sealed}`)).toBe(200);
  });

  it('logout clears the __Host- cookie with the same attributes (a browser only deletes it that way)', async () => {
    const login = await postLogin(p, { email: user.email, password: user.password });
    const sealed = setCookies(login).find((c) => c.name === '__Host-saasodoo_session')!.value;
    const res = await fetch(`${p.url}/logout`, {
      method: 'POST',
      redirect: 'manual',
      headers: { origin: p.origin, cookie: `__Host-saasodoo_session=${sealed}`, accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded' },
      body: '',
    });
    expect(res.status).toBe(303);
    const cleared = setCookies(res).find((c) => c.name === '__Host-saasodoo_session');
    expect(cleared?.value).toBe('');
    expect(cleared?.attributes.map((a) => a.toLowerCase())).toEqual(expect.arrayContaining(['secure', 'path=/', 'max-age=0']));
  });
});

describe('on http://localhost (npm start)', () => {
  let p: Portal;
  beforeAll(async () => {
    p = await startPortal();
  });
  afterAll(async () => {
    await p?.platform.stop();
  });

  it('keeps a plain HttpOnly cookie that browsers store over plain HTTP, and reads it', async () => {
    expect(new URL(p.origin).hostname).toBe('localhost');
    const user = await createTestUser();
    const res = await postLogin(p, { email: user.email, password: user.password });
    expect(res.status).toBe(303);
    const cookies = setCookies(res);
    expect(cookies.map((c) => c.name)).toEqual(['saasodoo_session']);
    const attrs = cookies[0].attributes.map((a) => a.toLowerCase());
    expect(attrs).toEqual(expect.arrayContaining(['httponly', 'path=/', 'samesite=lax']));
    expect(attrs).not.toContain('secure');
    expect(await loginPage(p, `saasodoo_session=${cookies[0].value}`)).toBe(303);
  });
});
