/**
 * Open redirect (issue 15.2): `/login?next=/%09/evil.example/x` answered
 * `303 location: /\t/evil.example/x`, and browsers, which drop tabs and
 * newlines and read `\` as `/`, went to evil.example. The portal's only
 * redirect to a user-supplied target is `next` on /login (after a login, and
 * for a visitor who already has a session); every other redirect goes to a
 * fixed page or to the request's own path. Each Location is resolved here
 * with the WHATWG URL parser, as the browser resolves it, against the real
 * portal's origin.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestUser, type TestUser } from '../../helpers/auth.ts';
import { postLogin, setCookies, startPortal, type Portal } from './portal.ts';

let p: Portal;
let user: TestUser;
let cookie: string;

/** Targets that lead off the portal however they are written: each must give way to the default page. */
const OFFSITE = [
  '/\t/evil.example/x',
  '/\n/evil.example/x',
  '/\r\n/evil.example/x',
  '\t//evil.example/x',
  ' //evil.example/x',
  '//evil.example/x',
  '///evil.example/x',
  '/\\evil.example/x',
  '\\\\evil.example/x',
  '/\\/evil.example/x',
  '\\/evil.example/x',
  '/\t\\evil.example/x',
  'https://evil.example/x',
  'HTTPS://EVIL.EXAMPLE/x',
  'https:\\\\evil.example',
  '//evil.example@localhost/x',
  'javascript:alert(document.domain)',
  'data:text/html,<script>alert(1)</script>',
  '/.//evil.example/x',
  '/..//evil.example/x',
  '/a/..//evil.example/x',
  '/%2e//evil.example/x',
];

/**
 * Targets that look odd but stay on the portal: encoded slashes are path
 * characters, not a host, and a scheme the portal's own without `//` is a
 * relative reference (`http:evil.example/x` is the path /evil.example/x).
 */
const ONSITE = ['http:evil.example/x', 'http:/evil.example/x', '/%2F%2Fevil.example', '/%5Cevil.example', '/%09/evil.example', '/%252F%252Fevil.example', 'instances'];

function location(res: Response): string {
  expect(res.status).toBe(303);
  const loc = res.headers.get('location');
  expect(loc).toEqual(expect.stringMatching(/^\S+$/));
  return loc!;
}

/** Where a browser on the portal ends up with this Location. */
const resolved = (loc: string) => new URL(loc, `${p.origin}/login`);

/** GET /login?next=… with a session: the page sends a logged-in visitor on at once. */
async function nextWithSession(next: string): Promise<string> {
  const res = await fetch(`${p.url}/login?${new URLSearchParams({ next })}`, { redirect: 'manual', headers: { cookie } });
  return location(res);
}

beforeAll(async () => {
  p = await startPortal();
  user = await createTestUser();
  const res = await postLogin(p, { email: user.email, password: user.password });
  expect(location(res)).toBe('/instances');
  const session = setCookies(res).find((c) => c.value);
  expect(session).toBeDefined();
  cookie = `${session!.name}=${session!.value}`;
});

afterAll(async () => {
  await p?.platform.stop();
});

describe('open redirect: next on /login', () => {
  it.each(OFFSITE)('a visitor with a session and next=%j goes to /instances', async (next) => {
    expect(await nextWithSession(next)).toBe('/instances');
  });

  it.each(ONSITE)('next=%j stays on the portal', async (next) => {
    const to = resolved(await nextWithSession(next));
    expect(to.origin).toBe(p.origin);
    expect(to.pathname.startsWith('//')).toBe(false);
  });

  it('keeps a legitimate target with its query and hash, also written as an absolute URL of the portal', async () => {
    expect(await nextWithSession('/instances?x=1#y')).toBe('/instances?x=1#y');
    expect(await nextWithSession(`${p.origin}/account?tab=sessions#top`)).toBe('/account?tab=sessions#top');
  });

  it('the login form itself follows only same-origin targets (plain form post and SvelteKit enhanced)', async () => {
    for (const next of ['/\t/evil.example/x', '/\\evil.example', 'https://evil.example/']) {
      expect(location(await postLogin(p, { email: user.email, password: user.password, next }))).toBe('/instances');
      const enhanced = await postLogin(p, { email: user.email, password: user.password, next, enhanced: true });
      expect(enhanced.status).toBe(200);
      expect(await enhanced.json()).toMatchObject({ type: 'redirect', status: 303, location: '/instances' });
    }
    expect(location(await postLogin(p, { email: user.email, password: user.password, next: '/instances?x=1#y' }))).toBe('/instances?x=1#y');
    const enhanced = await postLogin(p, { email: user.email, password: user.password, next: '/instances?x=1#y', enhanced: true });
    expect(await enhanced.json()).toMatchObject({ type: 'redirect', location: '/instances?x=1#y' });
  });

  it('a private page sends an anonymous visitor to login with its own path as next, and that path survives', async () => {
    const res = await fetch(`${p.url}/instances?x=1`, { redirect: 'manual' });
    const loc = resolved(location(res));
    expect(loc.origin).toBe(p.origin);
    expect(loc.pathname).toBe('/login');
    expect(loc.searchParams.get('next')).toBe('/instances?x=1');
    expect(await nextWithSession(loc.searchParams.get('next')!)).toBe('/instances?x=1');
  });
});
